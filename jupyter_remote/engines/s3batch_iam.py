"""IAM for ``%%s3batch`` on AWS: the Lambda execution role and the Batch Operations role.

Contract sections A.8 and C.4. Both roles are created on first use with inline policies whose
resources are named (buckets, the report prefix, the function); a later job whose buckets or
function are new widens the policy by union, never replaces it, so jobs running side by side
keep their grants. The only wildcards are inside ARNs (``bucket/*``, a function's versions,
the functions' log groups), never a bare ``*``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigurationError
from .aws_calls import error_code
from .iam import (
    MAX_INLINE_POLICY_CHARS,
    _iam_error,
    _policy_document,
    ensure_role_exists,
    role_arn,
)

LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
BATCH_PRINCIPAL = "batchoperations.s3.amazonaws.com"
LAMBDA_ROLE = "jupyter-remote-s3batch-lambda"
BATCH_ROLE = "jupyter-remote-s3batch-job"
POLICY_NAME = "jupyter-remote-s3batch"
FUNCTION_PREFIX = "jupyter-remote-"


def _s3(partition: str, resource: str) -> str:
    return f"arn:{partition}:s3:::{resource}"


def _allow(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def lambda_statements(
    buckets: Iterable[str], *, partition: str, region: str, account: str
) -> list[dict[str, Any]]:
    """What the function may do: write its logs, read/write objects of ``buckets``."""
    group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{FUNCTION_PREFIX}*"
    names = sorted(set(buckets))
    return [
        _allow("Logs", ["logs:CreateLogGroup"], [group]),
        _allow("LogEvents", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{group}:*"]),
        _allow(
            "Objects", ["s3:GetObject", "s3:PutObject"], [_s3(partition, f"{b}/*") for b in names]
        ),
        _allow("Buckets", ["s3:ListBucket"], [_s3(partition, b) for b in names]),
    ]


def batch_statements(
    *,
    function_arn: str,
    manifest: str | None,
    report_bucket: str,
    report_prefix: str,
    partition: str,
    source_bucket: str | None = None,
    generated_prefix: str | None = None,
) -> list[dict[str, Any]]:
    """What the job may do: invoke this function, read the manifest, write the report.

    A ManifestGenerator job has no ``manifest``: it lists ``source_bucket`` and writes the list
    it made under ``generated_prefix`` (``bucket/prefix``) instead.
    """
    unqualified = function_arn.rsplit(":", 1)[0] if function_arn.count(":") > 6 else function_arn
    report = f"{report_bucket}/{report_prefix.strip('/')}/*".replace("//", "/")
    statements = [_allow("Invoke", ["lambda:InvokeFunction"], [unqualified, f"{unqualified}:*"])]
    if manifest:
        statements.append(
            _allow("Manifest", ["s3:GetObject", "s3:GetObjectVersion"], [_s3(partition, manifest)])
        )
    if source_bucket:
        statements.append(
            _allow(
                "GenerateList",
                ["s3:ListBucket", "s3:ListBucketVersions"],
                [_s3(partition, source_bucket)],
            )
        )
    if generated_prefix:
        written = _s3(partition, f"{generated_prefix.strip('/')}/*")
        statements.append(_allow("GenerateWrite", ["s3:PutObject"], [written]))
    statements.append(_allow("Report", ["s3:PutObject"], [_s3(partition, report)]))
    return statements


def merge_statements(
    current: list[dict[str, Any]], wanted: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Union of resources per ``Sid``; statements without a Sid in ``wanted`` are kept as given."""
    by_sid = {s.get("Sid"): json.loads(json.dumps(s)) for s in current if s.get("Sid")}
    for statement in wanted:
        have = by_sid.get(statement["Sid"])
        if have is None:
            by_sid[statement["Sid"]] = dict(statement)
            continue
        resources = have.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else list(resources)
        have["Resource"] = sorted(set(resources) | set(statement["Resource"]))
    # An S3 statement with no bucket yet would be an empty Resource, which IAM rejects.
    return [s for s in by_sid.values() if s.get("Resource")]


def ensure_role(
    iam: Any,
    *,
    role_name: str,
    principal: str,
    statements: list[dict[str, Any]],
    account: str,
    partition: str,
    description: str,
) -> tuple[str, bool]:
    """Create ``role_name`` (trusting ``principal``) if missing, widen its policy: arn, changed."""
    from botocore.exceptions import ClientError

    option = "--lambda-role" if principal == LAMBDA_PRINCIPAL else "--batch-role"
    changed = ensure_role_exists(
        iam,
        role_name,
        principal=principal,
        description=description,
        advice=f"Pass {option} with a role that trusts {principal}.",
    )
    try:
        raw = iam.get_role_policy(RoleName=role_name, PolicyName=POLICY_NAME)["PolicyDocument"]
        current = _policy_document(raw).get("Statement", [])
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise _iam_error(exc, "read the policy of", role_name) from exc
        current = []
    merged = merge_statements(current, statements)
    if merged != current:
        document = {"Version": "2012-10-17", "Statement": merged}
        if len(json.dumps(document, separators=(",", ":"))) > MAX_INLINE_POLICY_CHARS:
            raise ConfigurationError(
                f"the inline policy {POLICY_NAME!r} of role {role_name!r} would exceed IAM's "
                f"{MAX_INLINE_POLICY_CHARS} characters (too many buckets over time). Remove it "
                f"(aws iam delete-role-policy --role-name {role_name} --policy-name "
                f"{POLICY_NAME}) to start afresh."
            )
        try:
            iam.put_role_policy(
                RoleName=role_name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(document)
            )
        except ClientError as exc:
            raise _iam_error(exc, "update the policy of", role_name) from exc
        changed = True
    return role_arn(role_name, account=account, partition=partition), changed
