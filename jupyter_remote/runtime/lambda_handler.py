"""The Lambda handler of a ``%%s3batch`` cell: S3 Batch Operations ``LambdaInvoke`` tasks.

Standard library + cloudpickle only: this file ships inside the Lambda package as
``jupyter_remote/runtime/lambda_handler.py`` (next to ``payload.py``), so the function's handler
is ``jupyter_remote.runtime.lambda_handler.handler`` and the exception classes below have the same
import path in the notebook and in the function (a notebook helper that raises
``TemporaryFailure`` travels by reference and still means the same class).

On the first invocation in a process (a cold start) the handler reads the job document
(``$JUPYTER_REMOTE_LAMBDA_JOB``, default ``<task root>/jupyter_remote_job/job.json``), checks the
Python version, verifies the signed payload with the key in ``$JUPYTER_REMOTE_SIGNING_KEY`` and
runs the cell source once. Every invocation then either

- calls the cell's ``process(bucket, key, **user_arguments)`` once per task and maps the outcome
  to the documented response (aws-contracts.md A.6): a return value is ``Succeeded`` with its
  JSON as ``resultString``; :class:`TemporaryFailure` / :class:`PermanentFailure` set that
  result code with the exception's message; any other exception is ``PermanentFailure`` with
  ``"<type>: <message>"``; or
- when the cell defines no ``process``, passes the event to the cell's own
  ``handler(event, context)`` and returns its reply unchanged.
"""

from __future__ import annotations

import inspect
import json
import linecache
import os
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import unquote

if __package__:
    from . import payload
else:  # pragma: no cover - run from a flat folder
    import payload  # type: ignore[no-redef]

JOB_ENV = "JUPYTER_REMOTE_LAMBDA_JOB"
KEY_ENV = "JUPYTER_REMOTE_SIGNING_KEY"
CELL_MODULE = "jupyter_remote_cell"
SUCCEEDED = "Succeeded"
TEMPORARY = "TemporaryFailure"
PERMANENT = "PermanentFailure"
RESULT_CODES = (SUCCEEDED, TEMPORARY, PERMANENT)
# The synchronous Invoke response limit (aws-contracts.md C.1). The contract documents no limit
# of its own for resultString, so result strings are cut to keep the whole reply under this.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
_ENVELOPE_BYTES = 1024
TRUNCATED_MARK = " ...[truncated]"


class TemporaryFailure(Exception):
    """Raise in ``process`` to report ``TemporaryFailure``: S3 Batch retries the task."""


class PermanentFailure(Exception):
    """Raise in ``process`` to report ``PermanentFailure`` with this message."""


class _Cell:
    """The cell after its cold start: its namespace and the function to call."""

    def __init__(self, namespace: dict[str, Any], entry: str) -> None:
        self.namespace = namespace
        self.entry = entry
        self.function = namespace.get(entry)
        if not callable(self.function):
            raise RuntimeError(
                "the %%s3batch cell must define process(bucket, key) or handler(event, context); "
                f"after running it, {entry!r} is {type(self.function).__name__}"
            )
        self.takes_version = False
        if entry == "process":
            try:
                params = inspect.signature(self.function).parameters
                self.takes_version = "version_id" in params
            except (TypeError, ValueError):
                pass


_CELL: _Cell | None = None


def job_path() -> Path:
    """Where the job document is (next to the ``jupyter_remote`` folder unless overridden)."""
    override = os.environ.get(JOB_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "jupyter_remote_job" / "job.json"


def cold_start() -> _Cell:
    """Verify and load the payload, run the cell once; return the loaded cell."""
    path = job_path()
    job = json.loads(path.read_text(encoding="utf-8"))
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if job["python"] != here:
        raise RuntimeError(
            f"Python version mismatch: the notebook runs Python {job['python']} but this "
            f"function runs Python {here}; pickled code cannot move between them"
        )
    key = os.environ.get(KEY_ENV, "")
    if not key:
        raise RuntimeError(f"{KEY_ENV} is not set: cannot verify the cell's payload")
    folder = path.parent
    namespace, _ = payload.load(
        folder / job["payload"]["path"],
        key=bytes.fromhex(key),
        purpose="payload",
        signature=job["payload"]["signature"],
    )
    for name, module_name in job.get("imports", {}).items():
        namespace[name] = __import__(module_name, fromlist=["_"])
    source = (folder / job["cell"]).read_text(encoding="utf-8")
    module = types.ModuleType(CELL_MODULE)
    module.__dict__.update(namespace)
    # Registered so dataclasses, pickling and tracebacks of cell-defined code find the module.
    sys.modules[CELL_MODULE] = module
    linecache.cache["<cell>"] = (len(source), None, source.splitlines(True), "<cell>")
    exec(compile(source, "<cell>", "exec"), module.__dict__)
    return _Cell(module.__dict__, job.get("entry", "process"))


def _loaded() -> _Cell:
    global _CELL
    if _CELL is None:
        # Not cached on failure: like Lambda, the next invocation tries the cold start again.
        _CELL = cold_start()
    return _CELL


def reset() -> None:
    """Forget the loaded cell (the next invocation is a cold start again)."""
    global _CELL
    _CELL = None


def bucket_of(task: dict[str, Any]) -> str:
    """The task's bucket name: ``s3Bucket`` (schema 2.0) or from ``s3BucketArn`` (1.0)."""
    if task.get("s3Bucket"):
        return str(task["s3Bucket"])
    arn = str(task.get("s3BucketArn") or "")
    # Real bucket ARNs are arn:aws:s3:::bucket; the AWS samples parse them the same way.
    return arn.split(":::", 1)[-1] if ":::" in arn else arn.rsplit(":", 1)[-1]


def decode_key(key: str) -> str:
    """URL-decode a manifest key as the AWS samples do (``unquote``, UTF-8; ``+`` stays ``+``)."""
    return unquote(key, encoding="utf-8")


def truncate(text: str, budget: int) -> str:
    """Cut ``text`` so its JSON encoding takes at most ``budget`` bytes (marked when cut)."""
    if len(json.dumps(text).encode("utf-8")) <= budget:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits together with the mark
        mid = (low + high + 1) // 2
        if len(json.dumps(text[:mid] + TRUNCATED_MARK).encode("utf-8")) <= budget:
            low = mid
        else:
            high = mid - 1
    return text[:low] + TRUNCATED_MARK


def result_string(value: Any) -> str:
    """The JSON text of a return value (objects JSON cannot encode are written with ``str``)."""
    return json.dumps(value, default=str, ensure_ascii=False)


def _run_task(cell: _Cell, task: dict[str, Any], user_args: dict[str, str]) -> tuple[str, str]:
    bucket = bucket_of(task)
    key = decode_key(str(task.get("s3Key", "")))
    kwargs: dict[str, Any] = dict(user_args)
    if cell.takes_version:
        kwargs["version_id"] = task.get("s3VersionId")
    try:
        value = cell.function(bucket, key, **kwargs)
    except TemporaryFailure as exc:
        return TEMPORARY, str(exc) or TEMPORARY
    except PermanentFailure as exc:
        return PERMANENT, str(exc) or PERMANENT
    except Exception as exc:
        # The report keeps one line; the traceback goes to the log (CloudWatch on AWS), where
        # the s3batch engine's error tail finds it.
        import traceback

        print(
            f"[ERROR] {key}: " + "".join(traceback.format_exception(exc)).rstrip(),
            file=sys.stderr,
            flush=True,
        )
        return PERMANENT, f"{type(exc).__name__}: {exc}"
    return SUCCEEDED, result_string(value)


def handler(event: dict[str, Any], context: Any) -> Any:
    """The Lambda entry point (``jupyter_remote.runtime.lambda_handler.handler``)."""
    cell = _loaded()
    if cell.entry != "process":
        return cell.function(event, context)
    schema = str(event.get("invocationSchemaVersion", "1.0"))
    job = event.get("job") or {}
    # userArguments exist only in schema 2.0 (aws-contracts.md A.2.1 / A.6).
    user_args = dict(job.get("userArguments") or {}) if schema == "2.0" else {}
    tasks = event.get("tasks") or []
    budget = (MAX_RESPONSE_BYTES - _ENVELOPE_BYTES) // max(len(tasks), 1) - 128
    results = []
    for task in tasks:
        code, text = _run_task(cell, task, user_args)
        results.append(
            {
                "taskId": task.get("taskId"),
                "resultCode": code,
                "resultString": truncate(text, budget),
            }
        )
    return {
        "invocationSchemaVersion": schema,
        "treatMissingKeysAs": PERMANENT,
        "invocationId": event.get("invocationId"),
        "results": results,
    }
