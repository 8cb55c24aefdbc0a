"""CreateJob requests: botocore-valid, serializable as boto3 sends them, within the contract."""

from __future__ import annotations

import pytest

from jupyter_remote.errors import ConfigurationError
from jupyter_remote.s3uri import S3Uri
from jupyter_remote.spec import s3batch as spec

ACCOUNT = "123456789012"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:jupyter-remote-0123456789ab:1"


def build(**overrides):
    kwargs = dict(
        account_id=ACCOUNT,
        function_arn=ARN,
        manifest=spec.ManifestLocation(S3Uri("photos", "manifests/m.csv"), "abc123"),
        report_bucket="staging",
        report_prefix="jupyter-remote/s3batch-reports/",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/batch",
        client_request_token="0b0c1d0e-0000-4000-8000-000000000000",
    )
    kwargs.update(overrides)
    return spec.build_create_job_request(**kwargs)


def test_request_shape_follows_the_contract():
    request = build(user_arguments={"mode": "fast"}, tags={"team": "data"})
    assert request["ConfirmationRequired"] is False  # always explicit
    invoke = request["Operation"]["LambdaInvoke"]
    assert invoke == {
        "FunctionArn": ARN,
        "InvocationSchemaVersion": "2.0",
        "UserArguments": {"mode": "fast"},
    }
    assert request["Manifest"] == {
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {"ObjectArn": "arn:aws:s3:::photos/manifests/m.csv", "ETag": "abc123"},
    }
    assert request["Report"] == {
        "Bucket": "arn:aws:s3:::staging",
        "Format": "Report_CSV_20180820",
        "Enabled": True,
        "ReportScope": "AllTasks",
        "Prefix": "jupyter-remote/s3batch-reports",
    }
    assert request["Tags"] == [{"Key": "team", "Value": "data"}]


def test_request_serializes_as_boto3_would_send_it():
    import botocore.session
    from botocore.serialize import create_serializer

    model = botocore.session.get_session().get_service_model("s3control")
    operation = model.operation_model("CreateJob")
    wire = create_serializer("rest-xml").serialize_to_request(build(), operation)
    assert wire["method"] == "POST" and wire["url_path"] == "/v20180820/jobs"
    assert wire["headers"]["x-amz-account-id"] == ACCOUNT
    assert b"<InvocationSchemaVersion>2.0</InvocationSchemaVersion>" in wire["body"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"account_id": "12345"}, "AccountId"),
        ({"priority": 2_147_483_648}, "--priority"),
        ({"priority": -1}, "Priority"),
        ({"role_arn": "batch-role"}, "RoleArn"),
        ({"schema": "1.0", "user_arguments": {"k": "v"}}, "require InvocationSchemaVersion 2.0"),
        ({"schema": "3.0"}, "must be one of 1.0, 2.0"),
        ({"user_arguments": {f"k{i}": "v" for i in range(11)}}, "at most 10 entries"),
        ({"user_arguments": {"k" * 65: "v"}}, "at most 64 characters"),
        ({"user_arguments": {"k": "v" * 1025}}, "at most 1024 characters"),
        ({"report_scope": "Some"}, "is not one of AllTasks, FailedTasksOnly"),
        ({"tags": {f"t{i}": "v" for i in range(51)}}, "at most 50 tags"),
        ({"tags": {"bad!": "v"}}, "does not match"),
        ({"function_arn": "not a function!"}, "FunctionArn"),
        ({"client_request_token": "t" * 65}, "ClientRequestToken"),
        (
            {"manifest": spec.ManifestLocation(S3Uri("b", "m.csv"), "e", ("Key", "Key"))},
            "Bucket exactly once",
        ),
    ],
)
def test_limits_botocore_does_not_check_are_enforced(overrides, message):
    with pytest.raises(ConfigurationError, match="CreateJob") as info:
        build(**overrides)
    assert message in str(info.value)


def test_unicode_letters_are_valid_in_tags():
    assert build(tags={"équipe": "données 1"})["Tags"][0]["Key"] == "équipe"


def test_exactly_one_manifest_source():
    request = build()
    request["ManifestGenerator"] = {
        "S3JobManifestGenerator": {"SourceBucket": "arn:aws:s3:::b", "EnableManifestOutput": False}
    }
    with pytest.raises(ConfigurationError, match="exactly one of Manifest or ManifestGenerator"):
        spec.validate_create_job_request(request)


def test_parse_user_args():
    assert spec.parse_user_args(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ConfigurationError, match="KEY=VALUE"):
        spec.parse_user_args(["novalue"])
    with pytest.raises(ConfigurationError, match="twice"):
        spec.parse_user_args(["a=1", "a=2"])


def test_arn_helpers():
    assert spec.parse_object_arn("arn:aws:s3:::b/k/with/slash") == S3Uri("b", "k/with/slash")
    assert spec.bucket_from_arn(spec.bucket_arn("b")) == "b"
