"""Build the S3 Control ``CreateJob`` request (LambdaInvoke) for a ``%%s3batch`` cell.

The same dict is what the local engine executes and what the AWS engine sends, so every limit of
the contract (aws-contracts.md section A.2) is checked here, before anything is uploaded:
botocore validates types, required members and minimums; this module adds what botocore's
validator leaves out (maximum lengths and counts, patterns, enums, ranges) by walking the same
service model, then the rules the model only states in prose (one of Manifest/ManifestGenerator,
UserArguments needing schema 2.0, the manifest's fields, 50 unique tags...).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..s3uri import S3Uri
from .lambda_function import DEFAULT_MEMORY, DEFAULT_TIMEOUT  # noqa: F401  (defaults, below)
from .pairs import parse_pairs
from .validation import input_shape, validate_with_botocore

# Defaults of %%s3batch / s3batch(), here so the magic can show them without importing the API.
DEFAULT_CONCURRENCY = 4
DEFAULT_PRIORITY = 10
# Schema 2.0 by default: it carries the bucket name and --user-arg values (1.0 carries neither),
# and AWS requires it for directory buckets. 1.0 stays available with --schema 1.0.
DEFAULT_SCHEMA = "2.0"
MANIFEST_CSV = "S3BatchOperations_CSV_20180820"
REPORT_FORMAT = "Report_CSV_20180820"
SCHEMAS = ("1.0", "2.0")
REPORT_SCOPES = ("AllTasks", "FailedTasksOnly")
MANIFEST_FIELDS = ("Ignore", "Bucket", "Key", "VersionId")
MAX_PRIORITY = 2_147_483_647
MAX_TAGS = 50
MAX_USER_ARGUMENTS = 10
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
# Options named after the request members they set, so errors point at what to change.
_OPTION = {
    "Priority": "--priority",
    "UserArguments": "--user-arg",
    "InvocationSchemaVersion": "--schema",
    "ReportScope": "--report-scope",
    "Tags": "--tag",
}


@dataclass(frozen=True)
class ManifestLocation:
    """A CSV manifest object: where it is, its ETag and what its columns hold."""

    uri: S3Uri
    etag: str
    fields: tuple[str, ...] = ("Bucket", "Key")
    version_id: str | None = None


def bucket_arn(bucket: str) -> str:
    """``arn:aws:s3:::bucket``."""
    return f"arn:aws:s3:::{bucket}"


def object_arn(uri: S3Uri) -> str:
    """``arn:aws:s3:::bucket/key``."""
    return f"arn:aws:s3:::{uri.bucket}/{uri.key}"


def bucket_from_arn(arn: str) -> str:
    """The bucket name of a bucket ARN (``arn:aws:s3:::name``)."""
    return arn.split(":::", 1)[-1] if ":::" in arn else arn.rsplit(":", 1)[-1]


def parse_object_arn(arn: str) -> S3Uri:
    """The bucket and key of an object ARN (``arn:aws:s3:::bucket/key``)."""
    bucket, _, key = bucket_from_arn(arn).partition("/")
    return S3Uri(bucket, key)


def parse_user_args(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``k=v`` pairs given with ``--user-arg``."""
    return parse_pairs(pairs, "--user-arg")


def parse_tags(pairs: Iterable[str]) -> dict[str, str]:
    """Parse and check ``K=V`` pairs given with ``--tag`` (contract A.2: S3Tag, 50 per job).

    Checked here, not only in the request, so that a bad tag fails before anything is uploaded.
    """
    return check_tags(parse_pairs(pairs, "--tag").items())


def check_tags(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Check job tags (unique keys, lengths, characters, at most 50); return them as a dict."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        if key in tags:
            raise ConfigurationError(f"--tag {key!r} is given twice (tag keys are unique)")
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise ConfigurationError(f"--tag {key!r}: keys are 1-128 characters and values 0-256")
        bad = sorted({c for c in key + value if not _tag_char(c)})
        if bad:
            raise ConfigurationError(
                f"--tag {key!r}: {''.join(bad)!r} not allowed (letters, digits, spaces and "
                f"{''.join(sorted(_TAG_PUNCTUATION))} only)"
            )
        tags[key] = value
    if len(tags) > MAX_TAGS:
        raise ConfigurationError(f"at most {MAX_TAGS} --tag options per job, got {len(tags)}")
    return tags


def build_create_job_request(
    *,
    account_id: str,
    function_arn: str,
    manifest: ManifestLocation | None,
    report_bucket: str,
    report_prefix: str,
    role_arn: str,
    client_request_token: str,
    report_scope: str = "AllTasks",
    priority: int = 10,
    confirmation_required: bool = False,
    schema: str = "2.0",
    user_arguments: dict[str, str] | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    manifest_generator: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a validated ``CreateJob`` request dict for a LambdaInvoke job.

    The objects come from ``manifest`` or, with ``manifest`` None, from ``manifest_generator``
    (a ``JobManifestGenerator``, see :func:`jupyter_remote.s3batch_generator.generator_request`).
    """
    invoke: dict[str, Any] = {"FunctionArn": function_arn, "InvocationSchemaVersion": schema}
    if user_arguments:
        invoke["UserArguments"] = dict(user_arguments)
    report: dict[str, Any] = {
        "Bucket": bucket_arn(report_bucket),
        "Format": REPORT_FORMAT,
        "Enabled": True,
        "ReportScope": report_scope,
    }
    if report_prefix.strip("/"):
        report["Prefix"] = report_prefix.strip("/")
    request: dict[str, Any] = {
        "AccountId": account_id,
        # Always explicit: the default when it is omitted is UNCONFIRMED (aws-contracts.md E.5).
        "ConfirmationRequired": bool(confirmation_required),
        "Operation": {"LambdaInvoke": invoke},
        "Report": report,
        "ClientRequestToken": client_request_token,
        "Priority": priority,
        "RoleArn": role_arn,
    }
    if manifest is not None:
        location: dict[str, Any] = {"ObjectArn": object_arn(manifest.uri), "ETag": manifest.etag}
        if manifest.version_id:
            location["ObjectVersionId"] = manifest.version_id
        request["Manifest"] = {
            "Spec": {"Format": MANIFEST_CSV, "Fields": list(manifest.fields)},
            "Location": location,
        }
    if manifest_generator is not None:
        request["ManifestGenerator"] = manifest_generator
    if description:
        request["Description"] = description[:256]
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    validate_create_job_request(request)
    return request


def _pattern_ok(pattern: str, value: str) -> bool:
    if "\\p{" in pattern:  # Java's Unicode classes; only the tag pattern uses them
        return all(_tag_char(c) for c in value)
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:  # a pattern Python cannot read is left to the service
        return True


def _tag_char(char: str) -> bool:
    return char in _TAG_PUNCTUATION or unicodedata.category(char)[0] in "LZN"


def model_limits(shape: Any, value: Any, path: str = "") -> list[str]:
    """Constraint violations botocore's validator does not report (max, pattern, enum)."""
    errors: list[str] = []
    meta = shape.metadata
    where = path or shape.name
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                errors += model_limits(member, value[name], f"{path}.{name}" if path else name)
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{where}: at most {meta['max']} items, got {len(value)}")
        for i, item in enumerate(value):
            errors += model_limits(shape.member, item, f"{where}[{i}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{where}: at most {meta['max']} entries, got {len(value)}")
        for key, item in value.items():
            errors += model_limits(shape.key, key, f"{where} key {key!r}")
            errors += model_limits(shape.value, item, f"{where}[{key!r}]")
    elif shape.type_name == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{where}: at most {meta['max']} characters, got {len(value)}")
        if "pattern" in meta and not _pattern_ok(meta["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {meta['pattern']}")
        if getattr(shape, "enum", None) and value not in shape.enum:
            errors.append(f"{where}: {value!r} is not one of {', '.join(shape.enum)}")
    elif shape.type_name in ("integer", "long") and isinstance(value, int):
        top = meta.get("max")
        if top is not None and value > top:
            errors.append(f"{where}: at most {top}, got {value}")
    return errors


def _contract_rules(request: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    if ("Manifest" in request) == ("ManifestGenerator" in request):
        errors.append("give exactly one of Manifest or ManifestGenerator")
    operation = request.get("Operation") or {}
    if len(operation) != 1:
        errors.append(f"Operation must set exactly one operation, got {sorted(operation)}")
    invoke = operation.get("LambdaInvoke")
    if invoke is not None:
        schema = invoke.get("InvocationSchemaVersion", "1.0")
        if schema not in SCHEMAS:
            errors.append(f"InvocationSchemaVersion {schema!r} must be one of {', '.join(SCHEMAS)}")
        if "UserArguments" in invoke and schema != "2.0":
            errors.append("UserArguments (--user-arg) require InvocationSchemaVersion 2.0")
    spec = (request.get("Manifest") or {}).get("Spec") or {}
    if spec.get("Format") == MANIFEST_CSV:
        fields = list(spec.get("Fields") or [])
        unknown = [f for f in fields if f not in MANIFEST_FIELDS]
        if unknown:
            errors.append(f"Manifest fields {unknown} are not among {', '.join(MANIFEST_FIELDS)}")
        for needed in ("Bucket", "Key"):
            if fields.count(needed) != 1:
                errors.append(f"Manifest fields must name {needed} exactly once, got {fields}")
        if fields.count("VersionId") > 1:
            errors.append("Manifest fields name VersionId more than once")
    report = request.get("Report") or {}
    if report.get("Enabled"):
        missing = [k for k in ("Bucket", "Format") if k not in report]
        if missing:
            errors.append(f"an enabled Report needs {', '.join(missing)}")
    tags = request.get("Tags") or []
    if len(tags) > MAX_TAGS:
        errors.append(f"at most {MAX_TAGS} tags per job, got {len(tags)}")
    keys = [t.get("Key") for t in tags]
    if len(set(keys)) != len(keys):
        errors.append("tag keys must be unique")
    return errors


def validate_create_job_request(request: dict[str, Any]) -> None:
    """Check a request against botocore's model and the limits of contract section A.2."""
    validate_with_botocore("s3control", "CreateJob", request)
    errors = model_limits(input_shape("s3control", "CreateJob"), request)
    errors += _contract_rules(request)
    if errors:
        lines = []
        for error in errors:
            member = error.split(":", 1)[0].rsplit(".", 1)[-1].split("[", 1)[0].split(" ", 1)[0]
            option = _OPTION.get(member)
            lines.append(f"  {error}" + (f" ({option})" if option else ""))
        raise ConfigurationError("s3control CreateJob request is invalid:\n" + "\n".join(lines))
