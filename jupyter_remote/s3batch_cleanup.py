"""``jupyter_remote.s3batch.cleanup()``: remove the Lambda functions ``%%s3batch`` deployed.

Functions are named after their package (``jupyter-remote-<hash12>``), so every changed cell
leaves its predecessor behind. Each function's CloudWatch log group goes with it unless asked to
stay. Functions that jobs recorded as unfinished still use are kept.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .config import RemoteSettings, choose_engine, resolve_endpoint
from .display import JobDisplay, make_display
from .engines.base import S3BATCH
from .jobstore import JobStore

__all__ = ["cleanup"]

_FUNCTION_NAME = re.compile(r"^jupyter-remote-[0-9a-f]{12}$")


def _last_modified(value: Any) -> datetime:
    """Lambda's ``LastModified`` (``2024-01-02T03:04:05.678+0000``) as an aware datetime."""
    if isinstance(value, datetime):
        return value
    text = str(value)
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    parsed = datetime.fromisoformat(text)
    # Lambda's times are UTC; a naive one could not be compared with the cutoff.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def cleanup(
    *,
    older_than_days: float | None = None,
    dry_run: bool = False,
    keep_logs: bool = False,
    engine: str = "",
    settings: RemoteSettings | None = None,
    display: JobDisplay | None = None,
    store: JobStore | None = None,
) -> list[str]:
    """Delete the Lambda functions ``%%s3batch`` deployed (``jupyter-remote-<hash12>``).

    Functions are named after their package, so every changed cell leaves its predecessor
    behind; this lists them (ListFunctions) and deletes each one (DeleteFunction, all its
    versions) and its log group ``/aws/lambda/<name>`` (unless ``keep_logs``).
    ``older_than_days`` keeps functions modified more recently than that; ``dry_run`` only
    lists. Functions of jobs the job store records as not finished are kept. Returns the names
    deleted (or, with ``dry_run``, that would be). The local engine deploys nothing: there it
    returns ``[]``.
    """
    from .storage import make_client

    settings = settings or RemoteSettings()
    display = display or make_display(widgets=False)
    engine_name, _ = choose_engine(engine, settings, S3BATCH)
    if engine_name == "local":
        return []
    endpoint = resolve_endpoint(settings)
    lam = make_client(endpoint, "lambda")
    cutoff = (
        datetime.now(timezone.utc) - timedelta(days=older_than_days)
        if older_than_days is not None
        else None
    )
    # A job still running a deleted function would fail its remaining tasks. The store may
    # think a job unfollowed since submit still runs; keeping its function is the safe error.
    in_use = {
        record.handle.get("function_name")
        for record in (store or JobStore()).list(engine="s3batch", active_only=True)
    }
    names = []
    for page in lam.get_paginator("list_functions").paginate():
        for function in page.get("Functions", []):
            name = function["FunctionName"]
            if not _FUNCTION_NAME.match(name):
                continue
            if cutoff is not None and _last_modified(function["LastModified"]) > cutoff:
                continue
            if name in in_use:
                display.message(f"kept {name}: a recorded job that has not finished uses it")
                continue
            names.append(name)
    for name in names:
        if dry_run:
            display.message(f"would delete {name}")
            continue
        from botocore.exceptions import ClientError

        from .engines.aws_calls import error_code

        try:
            lam.delete_function(FunctionName=name)
        except ClientError as exc:
            # Another kernel's cleanup got there first: the function is gone either way.
            if error_code(exc) != "ResourceNotFoundException":
                raise
        if not keep_logs:
            _delete_log_group(make_client(endpoint, "logs"), f"/aws/lambda/{name}")
        display.message(f"deleted {name}")
    return names


def _delete_log_group(logs: Any, group: str) -> None:
    """Delete a function's log group; one that never existed (never invoked) is fine."""
    from botocore.exceptions import ClientError

    from .engines.aws_calls import error_code

    try:
        logs.delete_log_group(logGroupName=group)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
