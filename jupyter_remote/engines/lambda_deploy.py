"""Deploy a ``%%s3batch`` Lambda package by content hash (contract section C).

The function is named after the package hash (``jupyter-remote-<hash12>``), so an unchanged cell
finds its function already there: ``GetFunction`` shows the same ``CodeSha256`` and nothing is
created or updated. A published version (never ``$LATEST``) is what the job invokes, so a later
update can never change a running job's code.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .aws_calls import error_code
from .iam import retry_while_role_propagates
from .lambda_package import ZIPPED_LIMIT

CODE_TAG = "jupyter-remote:code"  # the staged zip's S3 URI (read back by s3control_server)
_CONFIG_KEYS = ("Role", "Timeout", "MemorySize", "Handler", "Runtime")


@dataclass(frozen=True)
class Deployed:
    """Where the job's function is: its name, the version ARN to invoke, whether we created it."""

    name: str
    version_arn: str
    created: bool


def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256``: base64 of the zip's SHA-256."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _same_config(config: dict[str, Any], wanted: dict[str, Any]) -> bool:
    if any(config.get(k) != wanted.get(k) for k in _CONFIG_KEYS):
        return False
    have = (config.get("Environment") or {}).get("Variables") or {}
    return have == ((wanted.get("Environment") or {}).get("Variables") or {})


def _published(lam: Any, name: str, sha: str) -> str | None:
    """The newest published version of ``name`` with code ``sha``, if any."""
    marker = None
    best: tuple[int, str] | None = None
    while True:
        page = lam.list_versions_by_function(
            FunctionName=name, **({"Marker": marker} if marker else {})
        )
        for version in page.get("Versions", []):
            if version["Version"] != "$LATEST" and version.get("CodeSha256") == sha:
                number = int(version["Version"])
                if best is None or number > best[0]:
                    best = (number, version["FunctionArn"])
        marker = page.get("NextMarker")
        if not marker:
            return best[1] if best else None


def deploy(
    lam: Any,
    request: dict[str, Any],
    zip_bytes: bytes,
    *,
    sleep: Callable[[float], None],
    role_fresh: bool,
) -> Deployed:
    """Make ``request``'s function exist with this code; return the version ARN to invoke.

    ``request`` is the CreateFunction request (its ``Code`` points at the staged zip); the zip
    itself goes inline when Lambda accepts that (≤ 50 MB), else through the staging bucket.
    """
    from botocore.exceptions import ClientError

    name = request["FunctionName"]
    sha = code_sha256(zip_bytes)
    try:
        existing = lam.get_function(FunctionName=name)["Configuration"]
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        existing = None
    created = False
    if existing is None:
        create = dict(request, Publish=False)
        staged = request.get("Code") or {}
        if "S3Bucket" in staged:
            create["Tags"] = {CODE_TAG: f"s3://{staged['S3Bucket']}/{staged['S3Key']}"}
        if len(zip_bytes) <= ZIPPED_LIMIT:
            create["Code"] = {"ZipFile": zip_bytes}

        def call() -> Any:
            return lam.create_function(**create)

        try:
            retry_while_role_propagates(call, sleep=sleep) if role_fresh else call()
            created = True
        except ClientError as exc:
            if error_code(exc) != "ResourceConflictException":  # a concurrent run created it
                raise
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
    elif existing.get("CodeSha256") != sha:
        # Same name means same package hash; a differing zip is a build that is not
        # byte-reproducible, which must still replace the code.
        code = (
            {"ZipFile": zip_bytes}
            if len(zip_bytes) <= ZIPPED_LIMIT
            else {k: v for k, v in request["Code"].items()}
        )
        lam.update_function_code(FunctionName=name, **code)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    elif not _same_config(existing, request):
        lam.update_function_configuration(
            FunctionName=name,
            **{k: request[k] for k in (*_CONFIG_KEYS, "Environment") if k in request},
        )
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    else:
        arn = _published(lam, name, sha)
        if arn:
            return Deployed(name, arn, created=False)
    version = lam.publish_version(FunctionName=name, CodeSha256=sha)
    return Deployed(name, version["FunctionArn"], created=created)
