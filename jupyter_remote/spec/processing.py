"""Build the SageMaker ``CreateProcessingJob`` request for a cell.

The same dict is what the local engine executes and what the sagemaker engine sends, so every
limit of the contract (aws-contracts.md section B.2) is checked here, before anything is uploaded:
botocore validates types and required members; this module adds the lengths, patterns, enums and
counts that botocore's validator does not check.
"""

from __future__ import annotations

import difflib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..s3uri import S3Uri
from .validation import enum_values, validate_with_botocore

CODE_INPUT = "jupyter-remote-code"
RESULTS_OUTPUT = "jupyter-remote-results"
CODE_DIR = "/opt/ml/processing/input/code"
RESULTS_DIR = "/opt/ml/processing/output/jupyter-remote"
PROCESSING_ROOT = "/opt/ml/processing/"
SIGNING_KEY_ENV = "JUPYTER_REMOTE_SIGNING_KEY"

JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ENV_KEY_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ROLE_RE = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
_CHANNEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,62}$")
_VPC_ID_RE = re.compile(r"^[-0-9a-zA-Z]{1,32}$")
MAX_CHANNELS = 10
MAX_RUNTIME = 777600
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
UPLOAD_MODES = ("EndOfJob", "Continuous")


@dataclass(frozen=True)
class Channel:
    """A user input or output: a name, an S3 URI and how it moves."""

    name: str
    uri: str
    mode: str = ""  # input: FullyReplicated | ShardedByS3Key; output: EndOfJob | Continuous

    @classmethod
    def parse(cls, text: str, *, kind: str) -> Channel:
        """Parse ``NAME=s3://bucket/prefix`` as given on the magic line."""
        name, sep, uri = text.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"--{kind} {text!r}: expected NAME=s3://bucket/prefix")
        if not _CHANNEL_NAME_RE.match(name):
            raise ConfigurationError(
                f"--{kind} {text!r}: name {name!r} must be letters, digits, '-' or '_' "
                "(it becomes a folder name under /opt/ml/processing/)"
            )
        S3Uri.parse(uri, what=f"--{kind} {name}")
        return cls(name, uri)

    def local_path(self, kind: str) -> str:
        """Where the channel lives inside the container."""
        return f"{PROCESSING_ROOT}{kind}/{self.name}"


def make_job_name(prefix: str = "jupyter-remote") -> str:
    """A unique, valid job name: ``<prefix>-YYYYmmdd-HHMMSS-<6 hex>`` (at most 63 characters)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = f"{prefix[:40].rstrip('-')}-{stamp}-{secrets.token_hex(3)}"
    if not JOB_NAME_RE.match(name):
        raise ConfigurationError(f"job name {name!r} is not valid: use letters, digits and '-'")
    return name


def instance_types() -> list[str]:
    """Every processing instance type botocore's model allows."""
    return enum_values(
        "sagemaker",
        "CreateProcessingJob",
        "ProcessingResources",
        "ClusterConfig",
        "InstanceType",
    )


def check_instance_type(instance_type: str) -> None:
    """Raise a clear error for a type SageMaker Processing does not offer."""
    allowed = instance_types()
    if instance_type in allowed:
        return
    close = difflib.get_close_matches(instance_type, allowed, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else " Example: ml.m5.xlarge."
    raise ConfigurationError(
        f"--instance-type {instance_type!r} is not a SageMaker Processing instance type.{hint}"
    )


def network_config(
    *,
    isolation: bool = False,
    subnets: list[str] = (),  # type: ignore[assignment]
    security_groups: list[str] = (),  # type: ignore[assignment]
) -> dict[str, Any] | None:
    """``NetworkConfig`` from ``--network-isolation``, ``--subnet`` and ``--security-group``."""
    subnets, security_groups = list(subnets), list(security_groups)
    if bool(subnets) != bool(security_groups):
        raise ConfigurationError(
            "a VPC needs both --subnet and --security-group (SageMaker's VpcConfig requires "
            "at least one of each)"
        )
    network: dict[str, Any] = {}
    if isolation:
        network["EnableNetworkIsolation"] = True
    if subnets:
        _check_ids("--subnet", subnets, 16)
        _check_ids("--security-group", security_groups, 5)
        network["VpcConfig"] = {"SecurityGroupIds": security_groups, "Subnets": subnets}
    return network or None


def _check_ids(option: str, ids: list[str], most: int) -> None:
    if len(ids) > most:
        raise ConfigurationError(f"{option}: at most {most} allowed, got {len(ids)}")
    for value in ids:
        if not _VPC_ID_RE.match(value):
            raise ConfigurationError(
                f"{option} {value!r}: expected an id such as subnet-0abc... / sg-0abc... "
                "(letters, digits and '-', at most 32 characters)"
            )


def _s3_input(channel: Channel) -> dict[str, Any]:
    return {
        "InputName": channel.name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": channel.uri,
            "LocalPath": channel.local_path("input"),
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": channel.mode or "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def _s3_output(name: str, uri: str, local_path: str, mode: str = "") -> dict[str, Any]:
    return {
        "OutputName": name,
        "AppManaged": False,
        "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": mode or "EndOfJob"},
    }


def build_processing_request(
    *,
    job_name: str,
    image_uri: str,
    role_arn: str,
    instance_type: str,
    instance_count: int,
    volume_size: int,
    max_runtime: int,
    code_manifest_uri: str,
    entrypoint: list[str],
    results_uri: str,
    inputs: list[Channel] = (),  # type: ignore[assignment]
    outputs: list[Channel] = (),  # type: ignore[assignment]
    environment: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    network: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a validated ``CreateProcessingJob`` request dict."""
    code = {
        "InputName": CODE_INPUT,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": code_manifest_uri,
            "LocalPath": CODE_DIR,
            "S3DataType": "ManifestFile",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }
    out = [_s3_output(c.name, c.uri, c.local_path("output"), c.mode) for c in outputs]
    out.append(_s3_output(RESULTS_OUTPUT, results_uri, RESULTS_DIR))
    request: dict[str, Any] = {
        "ProcessingJobName": job_name,
        "ProcessingInputs": [code, *(_s3_input(c) for c in inputs)],
        "ProcessingOutputConfig": {"Outputs": out},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": instance_count,
                "InstanceType": instance_type,
                "VolumeSizeInGB": volume_size,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        "AppSpecification": {"ImageUri": image_uri, "ContainerEntrypoint": entrypoint},
        "Environment": dict(environment or {}),
        "RoleArn": role_arn,
    }
    if network:
        request["NetworkConfig"] = network
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    validate_processing_request(request)
    return request


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigurationError(f"{what} must be between {low} and {high}, got {value}")


def validate_processing_request(request: dict[str, Any]) -> None:
    """Check a request against the limits of contract section B.2, then botocore's model.

    Our checks come first: their messages name the magic's option and the allowed range.
    """
    name = request["ProcessingJobName"]
    if not JOB_NAME_RE.match(name):
        raise ConfigurationError(
            f"job name {name!r} must be 1-63 letters, digits or hyphens, starting and ending "
            "with a letter or digit"
        )
    cluster = request["ProcessingResources"]["ClusterConfig"]
    check_instance_type(cluster["InstanceType"])
    _check_range("--instance-count", cluster["InstanceCount"], 1, 100)
    _check_range("--volume-size (GB)", cluster["VolumeSizeInGB"], 1, 16384)
    _check_range(
        "--max-runtime (seconds)",
        request["StoppingCondition"]["MaxRuntimeInSeconds"],
        1,
        MAX_RUNTIME,
    )
    inputs = request.get("ProcessingInputs", [])
    outputs = request["ProcessingOutputConfig"]["Outputs"]
    for what, items in (("inputs", inputs), ("outputs", outputs)):
        if len(items) > MAX_CHANNELS:
            raise ConfigurationError(
                f"SageMaker Processing allows at most {MAX_CHANNELS} {what} per job (including "
                f"jupyter-remote's own one); this job has {len(items)}"
            )
    names = [i["InputName"] for i in inputs] + [o["OutputName"] for o in outputs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigurationError(f"input/output names must be unique: {sorted(duplicates)}")
    for item in inputs:
        s3 = item.get("S3Input") or {}
        path = s3.get("LocalPath", "")
        if not path.startswith(PROCESSING_ROOT):
            raise ConfigurationError(
                f"input {item['InputName']}: LocalPath must be under /opt/ml/processing/"
            )
        if s3.get("S3DataDistributionType") not in DISTRIBUTIONS:
            raise ConfigurationError(f"input {item['InputName']}: bad distribution")
    for item in outputs:
        s3 = item.get("S3Output") or {}
        if not s3.get("LocalPath", "").startswith(PROCESSING_ROOT):
            raise ConfigurationError(
                f"output {item['OutputName']}: LocalPath must be under /opt/ml/processing/"
            )
        if s3.get("S3UploadMode") not in UPLOAD_MODES:
            raise ConfigurationError(f"output {item['OutputName']}: bad upload mode")
    env = request.get("Environment", {})
    if len(env) > 100:
        raise ConfigurationError(f"at most 100 environment variables, got {len(env)}")
    for key, value in env.items():
        if not _ENV_KEY_RE.match(key) or len(key) > 256:
            raise ConfigurationError(f"--env {key!r}: names must match [a-zA-Z_][a-zA-Z0-9_]*")
        if len(value) > 256:
            raise ConfigurationError(f"--env {key}: values are limited to 256 characters")
    if not _ROLE_RE.match(request["RoleArn"]):
        raise ConfigurationError(f"role {request['RoleArn']!r} is not an IAM role ARN")
    entry = request["AppSpecification"].get("ContainerEntrypoint", [])
    if not 1 <= len(entry) <= 100 or any(len(a) > 256 for a in entry):
        raise ConfigurationError("ContainerEntrypoint must hold 1-100 strings of <= 256 characters")
    if len(request.get("Tags", [])) > 50:
        raise ConfigurationError("at most 50 tags")
    validate_with_botocore("sagemaker", "CreateProcessingJob", request)
