"""Role resolution helpers, the scoped policy, and IAM's eventual consistency (no network)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from offline import offline_client

from jupyter_remote.engines import iam
from jupyter_remote.engines.aws_calls import Identity, call_with_backoff
from jupyter_remote.s3uri import S3Uri

IDENTITY = Identity(account="111122223333", arn="arn:aws:iam::111122223333:user/me")
STAGING = S3Uri("sagemaker-eu-west-1-111122223333", "jupyter-remote/")


def _error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateProcessingJob")


def _request(inputs=(), outputs=(), image="763104351884.dkr.ecr.eu-west-1.amazonaws.com/x:1"):
    return {
        "ProcessingInputs": [
            {"InputName": f"i{n}", "S3Input": {"S3Uri": uri}} for n, uri in enumerate(inputs)
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {"OutputName": f"o{n}", "S3Output": {"S3Uri": uri}} for n, uri in enumerate(outputs)
            ]
        },
        "AppSpecification": {"ImageUri": image},
    }


def test_policy_round_trips_and_merges_without_losing_grants():
    first = iam.grants_for_request(_request(["s3://aaa/raw/"], ["s3://bbb/out/"]), STAGING, "aws")
    second = iam.grants_for_request(_request(["s3://aaa/raw/2024/", "s3://ccc/"]), STAGING, "aws")
    merged = first.merged(second)
    document = iam.processing_policy(merged, partition="aws", region="eu-west-1", account="1" * 12)
    back = iam.grants_from_policy(json.loads(json.dumps(document)))
    assert back.covers(first) and back.covers(second)
    reads = next(s for s in document["Statement"] if s["Sid"] == "ReadInputsAndStaging")
    # s3://aaa/raw/2024/ is inside s3://aaa/raw/: one resource is enough.
    assert reads["Resource"] == [
        "arn:aws:s3:::aaa/raw/*",
        "arn:aws:s3:::ccc/*",
        f"arn:aws:s3:::{STAGING.bucket}/jupyter-remote/*",
    ]
    lists = {
        s["Resource"]: s.get("Condition")
        for s in document["Statement"]
        if s["Sid"].startswith("List")
    }
    assert lists["arn:aws:s3:::ccc"] is None  # the whole bucket was asked for
    assert lists["arn:aws:s3:::aaa"] == {"StringLike": {"s3:prefix": ["raw/*"]}}
    assert not iam.Grants().covers(first)


def test_policy_partition_and_vpc():
    request = {**_request(["s3://aaa/x"]), "NetworkConfig": {"VpcConfig": {"Subnets": ["s"]}}}
    grants = iam.grants_for_request(request, STAGING, "aws-cn")
    document = iam.processing_policy(
        grants, partition="aws-cn", region="cn-north-1", account="1" * 12
    )
    text = json.dumps(document)
    assert "arn:aws:" not in text and "arn:aws-cn:s3:::aaa/x*" in text
    assert any(s["Sid"] == "VpcNetworkInterfaces" for s in document["Statement"])


def test_role_propagation_is_retried_with_bounded_injected_sleeps():
    calls, sleeps = [], []

    def create():
        calls.append(1)
        if len(calls) < 3:
            raise _error("ValidationException", "Could not assume role arn:aws:iam::1:role/x")
        return "created"

    assert (
        iam.retry_while_role_propagates(create, sleep=sleeps.append, delays=(1, 2, 3)) == "created"
    )
    assert sleeps == [1, 2]

    def never():
        raise _error("ValidationException", "Could not assume role arn:aws:iam::1:role/x")

    sleeps.clear()
    with pytest.raises(ClientError):
        iam.retry_while_role_propagates(never, sleep=sleeps.append, delays=(1, 1))
    assert sleeps == [1, 1]

    def other():
        raise _error("ValidationException", "InstanceType ml.x is not available")

    with pytest.raises(ClientError):
        iam.retry_while_role_propagates(other, sleep=pytest.fail)


def test_throttling_backoff_gives_up_after_the_attempts():
    sleeps = []

    def throttled():
        raise _error("ThrottlingException", "Rate exceeded")

    with pytest.raises(ClientError):
        call_with_backoff(throttled, sleep=sleeps.append, attempts=3)
    assert len(sleeps) == 2 and all(0 < s <= 20 for s in sleeps)


def test_studio_role_from_user_profile(tmp_path):
    from botocore.stub import Stubber

    metadata = tmp_path / "resource-metadata.json"
    metadata.write_text(json.dumps({"DomainId": "d-abc", "UserProfileName": "me"}))
    client = offline_client("sagemaker")
    role = "arn:aws:iam::111122223333:role/service-role/AmazonSageMaker-ExecutionRole-1"
    with Stubber(client) as stub:
        stub.add_response(
            "describe_user_profile",
            {"UserSettings": {"ExecutionRole": role}},
            {"DomainId": "d-abc", "UserProfileName": "me"},
        )
        found = iam.studio_execution_role(metadata, sagemaker=client, iam=None, identity=IDENTITY)
    assert found == role


def test_studio_role_from_metadata_and_outside_sagemaker(tmp_path):
    metadata = tmp_path / "resource-metadata.json"
    metadata.write_text(json.dumps({"ExecutionRoleArn": "arn:aws:iam::1:role/r"}))
    assert iam.studio_execution_role(metadata, sagemaker=None, iam=None, identity=IDENTITY) == (
        "arn:aws:iam::1:role/r"
    )
    missing = tmp_path / "nope.json"
    assert iam.studio_execution_role(missing, sagemaker=None, iam=None, identity=IDENTITY) is None
    choice = iam.resolve_role(
        None, iam=None, sagemaker=None, identity=IDENTITY, metadata_path=missing
    )
    assert choice == iam.RoleChoice(
        "arn:aws:iam::111122223333:role/jupyter-remote-processing", "default", managed=True
    )


def test_auto_picks_sagemaker_only_with_credentials_region_and_aws_s3(monkeypatch):
    from jupyter_remote.config import RemoteSettings, aws_credentials_available, choose_engine

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws_credentials_available.cache_clear()
    try:
        settings = RemoteSettings()
        assert choose_engine("", settings, "processing")[0] == "sagemaker"
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        name, why = choose_engine("", settings, "processing")
        assert name == "local" and "http://127.0.0.1:9" in why
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        monkeypatch.delenv("AWS_DEFAULT_REGION")
        name, why = choose_engine("", settings, "processing")
        assert name == "local" and "no region" in why
    finally:
        aws_credentials_available.cache_clear()
