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

from ..spec.lambda_function import ZIPPED_LIMIT
from .aws_calls import error_code
from .iam import retry_while_role_propagates

CODE_TAG = "jupyter-remote:code"  # the staged zip's S3 URI (read back by s3control_server)
_CONFIG_KEYS = ("Role", "Timeout", "MemorySize", "Handler", "Runtime")
# What UpdateFunctionConfiguration sets when a request's settings differ from the function's.
_UPDATE_KEYS = (*_CONFIG_KEYS, "Environment", "EphemeralStorage", "Layers")


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
    """Whether GetFunction's ``config`` already has the settings of the request ``wanted``."""
    if any(config.get(k) != wanted.get(k) for k in _CONFIG_KEYS):
        return False
    have = (config.get("Environment") or {}).get("Variables") or {}
    if have != ((wanted.get("Environment") or {}).get("Variables") or {}):
        return False
    # Lambda reports the default 512 MB even for a function created without the member.
    storage = (config.get("EphemeralStorage") or {}).get("Size", 512)
    if storage != (wanted.get("EphemeralStorage") or {}).get("Size", 512):
        return False
    layers = [layer["Arn"] for layer in config.get("Layers") or []]
    return layers == list(wanted.get("Layers") or [])


def _update_configuration(lam: Any, name: str, request: dict[str, Any]) -> None:
    """UpdateFunctionConfiguration to ``request``'s settings, then wait until it is applied.

    A concurrent run may be updating the same function (ResourceConflictException): wait for
    its update to finish, then apply ours once more.
    """
    from botocore.exceptions import ClientError

    fields = {k: request[k] for k in _UPDATE_KEYS if k in request}
    fields.setdefault("Layers", [])  # a request without layers removes the function's
    for attempt in range(2):
        try:
            lam.update_function_configuration(FunctionName=name, **fields)
            break
        except ClientError as exc:
            if error_code(exc) != "ResourceConflictException" or attempt:
                raise
            lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)


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
    else:
        changed = False
        if existing.get("CodeSha256") != sha:
            # Same name means same package hash; a differing zip is a build that is not
            # byte-reproducible, which must still replace the code.
            code = {"ZipFile": zip_bytes} if len(zip_bytes) <= ZIPPED_LIMIT else request["Code"]
            lam.update_function_code(FunctionName=name, **code)
            lam.get_waiter("function_updated_v2").wait(FunctionName=name)
            changed = True
        if not _same_config(existing, request):
            _update_configuration(lam, name, request)
            changed = True
        arn = None if changed else _published(lam, name, sha)
        if arn:
            return Deployed(name, arn, created=False)
    version = lam.publish_version(FunctionName=name, CodeSha256=sha)
    return Deployed(name, version["FunctionArn"], created=created)
