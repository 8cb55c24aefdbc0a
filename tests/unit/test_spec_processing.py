"""CreateProcessingJob requests: botocore-valid and within the contract's limits."""

from __future__ import annotations

import pytest

from jupyter_remote.errors import ConfigurationError
from jupyter_remote.spec import processing as spec

ROLE = "arn:aws:iam::123456789012:role/jupyter-remote-processing"


def build(**overrides):
    kwargs = dict(
        job_name=spec.make_job_name(),
        image_uri="763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3-cpu-py311",
        role_arn=ROLE,
        instance_type="ml.m5.xlarge",
        instance_count=1,
        volume_size=30,
        max_runtime=3600,
        code_manifest_uri="s3://staging/jobs/x/code.manifest.json",
        entrypoint=["python3", "/opt/ml/processing/input/code/a/processing_bootstrap.py"],
        results_uri="s3://staging/jobs/x/results/",
    )
    kwargs.update(overrides)
    return spec.build_processing_request(**kwargs)


def test_request_shape_follows_the_contract():
    req = build(
        inputs=[spec.Channel("raw", "s3://demo/raw/", "ShardedByS3Key")],
        outputs=[spec.Channel("out", "s3://demo/out/")],
        environment={"A": "1"},
    )
    code, raw = req["ProcessingInputs"]
    assert code["S3Input"]["S3DataType"] == "ManifestFile"
    assert code["S3Input"]["LocalPath"] == "/opt/ml/processing/input/code"
    assert raw["S3Input"]["LocalPath"] == "/opt/ml/processing/input/raw"
    assert raw["S3Input"]["S3DataDistributionType"] == "ShardedByS3Key"
    outs = {o["OutputName"]: o for o in req["ProcessingOutputConfig"]["Outputs"]}
    assert outs["out"]["S3Output"]["LocalPath"] == "/opt/ml/processing/output/out"
    assert outs[spec.RESULTS_OUTPUT]["S3Output"]["S3UploadMode"] == "EndOfJob"


def test_job_names_match_the_regex_and_are_unique():
    names = {spec.make_job_name() for _ in range(50)}
    assert len(names) == 50
    assert all(spec.JOB_NAME_RE.match(n) and len(n) <= 63 for n in names)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"instance_type": "ml.m5.xlarg"}, "Did you mean ml.m5.xlarge"),
        ({"volume_size": 20000}, "between 1 and 16384"),
        ({"max_runtime": 777601}, "between 1 and 777600"),
        ({"instance_count": 101}, "between 1 and 100"),
        ({"job_name": "bad_name"}, "letters, digits or hyphens"),
        ({"role_arn": "arn:aws:iam::123:role/x"}, "not an IAM role ARN"),
        ({"environment": {"K": "v" * 257}}, "256 characters"),
        ({"environment": {f"K{i}": "v" for i in range(101)}}, "at most 100"),
        (
            {"outputs": [spec.Channel(f"o{i}", f"s3://b/o{i}/") for i in range(10)]},
            "at most 10 outputs",
        ),
        ({"image_uri": 123}, "Invalid type"),  # botocore's own validator
    ],
)
def test_invalid_requests_are_refused(overrides, message):
    with pytest.raises(ConfigurationError, match=message):
        build(**overrides)


def test_channel_parse_errors():
    with pytest.raises(ConfigurationError, match="names no bucket"):
        spec.Channel.parse("raw=s3:///x", kind="input")
    with pytest.raises(ConfigurationError, match="must start with s3://"):
        spec.Channel.parse("raw=/local/path", kind="input")
    assert spec.Channel.parse("raw=s3://demo/raw/", kind="input").uri == "s3://demo/raw/"
