"""Pieces of the ``s3batch`` engine that need no server: host fix, policies, XML, cost."""

from __future__ import annotations

import json
from types import SimpleNamespace


def test_strip_account_prefix_only_for_non_aws_hosts():
    from jupyter_remote.engines.s3batch_aws import strip_account_prefix

    local = SimpleNamespace(url="http://123456789012.127.0.0.1:5000/v20180820/jobs?x=1")
    strip_account_prefix(local)
    assert local.url == "http://127.0.0.1:5000/v20180820/jobs?x=1"
    aws = SimpleNamespace(url="https://123456789012.s3-control.us-east-1.amazonaws.com/v")
    strip_account_prefix(aws)
    assert aws.url.startswith("https://123456789012.s3-control")


def test_policies_name_resources_and_merge_by_union():
    from jupyter_remote.engines.s3batch_iam import (
        batch_statements,
        lambda_statements,
        merge_statements,
    )

    first = lambda_statements(["a"], partition="aws", region="us-east-1", account="1" * 12)
    second = lambda_statements(["b"], partition="aws", region="us-east-1", account="1" * 12)
    merged = {s["Sid"]: s for s in merge_statements(first, second)}
    assert merged["Objects"]["Resource"] == ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"]
    job = batch_statements(
        function_arn="arn:aws:lambda:us-east-1:111111111111:function:jupyter-remote-abc:3",
        manifest="m/x.csv",
        report_bucket="r",
        report_prefix="p/",
        partition="aws",
    )
    text = json.dumps(job)
    assert '"*"' not in text
    invoke = job[0]["Resource"]
    assert invoke == [
        "arn:aws:lambda:us-east-1:111111111111:function:jupyter-remote-abc",
        "arn:aws:lambda:us-east-1:111111111111:function:jupyter-remote-abc:*",
    ]
    assert job[2]["Resource"] == ["arn:aws:s3:::r/p/*"]


def test_describe_job_xml_parses_with_botocore():
    from botocore.parsers import RestXMLParser

    from jupyter_remote.engines import s3control_xml as xml

    shape = xml.service_model().operation_model("DescribeJob").output_shape
    job = {
        "JobId": "abcde",
        "Status": "Active",
        "Priority": 7,
        "ConfirmationRequired": False,
        "CreationTime": "2026-11-22T05:00:00.000Z",
        "ProgressSummary": {"TotalNumberOfTasks": 3, "Timers": {"ElapsedTimeInActiveSeconds": 2}},
        "FailureReasons": [{"FailureCode": "X", "FailureReason": "y"}],
        "Operation": {"LambdaInvoke": {"FunctionArn": "f", "UserArguments": {"k": "v"}}},
        "NotInTheModel": "dropped",
    }
    body = xml.to_xml(shape.name, {"Job": job}, shape)
    parsed = RestXMLParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)["Job"]
    assert parsed["Priority"] == 7 and parsed["ConfirmationRequired"] is False
    assert parsed["ProgressSummary"]["Timers"]["ElapsedTimeInActiveSeconds"] == 2
    assert parsed["FailureReasons"] == [{"FailureCode": "X", "FailureReason": "y"}]
    assert parsed["Operation"]["LambdaInvoke"]["UserArguments"] == {"k": "v"}
    assert "NotInTheModel" not in parsed


def test_cost_estimate():
    from jupyter_remote.s3batch_cost import describe, estimate

    cost = estimate(1_000_000, memory_mb=512, expected_seconds=2)
    assert cost["lambda_gb_seconds"] == 1_000_000.0
    assert cost["usd"]["s3batch_objects"] == 1.0
    assert cost["total_usd"] == round(0.25 + 1.0 + 0.2 + 1_000_000 * 0.0000166667, 4)
    assert cost["usd"]["lambda_ephemeral_storage"] == 0  # 512 MB of /tmp is free
    assert "$" in describe(cost)
    bigger = estimate(1_000_000, memory_mb=512, expected_seconds=2, ephemeral_mb=1536)
    # 2,000,000 s with 1 GB beyond the free 512 MB.
    assert bigger["usd"]["lambda_ephemeral_storage"] == round(2_000_000 * 0.0000000309, 6)
