"""Bring a job's results home: verify, write back into the namespace, re-raise remote errors."""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from .errors import RemoteExecutionError
from .s3uri import S3Uri
from .snapshot import load_signed
from .storage import Storage

PRIMARY_HOST = "algo-1"


def fetch_results(
    storage: Storage, results_uri: str, key: bytes, host: str = PRIMARY_HOST
) -> dict[str, Any] | None:
    """Download and verify one host's results payload; None if the job wrote none."""
    from botocore.exceptions import ClientError

    prefix = S3Uri.parse(results_uri)
    with tempfile.TemporaryDirectory(prefix="jupyter-remote-results-") as tmp:
        try:
            index = storage.get_json(prefix.join(f"results-{host}.json"))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        local = storage.download(prefix.join(f"results-{host}.bin"), Path(tmp) / "results.bin")
        return load_signed(local, key=key, purpose="results", signature=index.get("signature"))


def apply_results(results: dict[str, Any], user_ns: MutableMapping[str, Any]) -> list[str]:
    """Write assigned/changed names into ``user_ns`` and delete deleted ones; return the names."""
    written = []
    for name, value in results.get("values", {}).items():
        user_ns[name] = value
        written.append(name)
    for name, module_name in results.get("imports", {}).items():
        try:
            user_ns[name] = importlib.import_module(module_name)
            written.append(name)
        except ImportError:
            results.setdefault("skipped", {})[name] = f"module {module_name} is not installed here"
    for name in results.get("deleted", []):
        user_ns.pop(name, None)
    return written


def _lookup_type(module: str, qualname: str) -> type | None:
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj if isinstance(obj, type) and issubclass(obj, BaseException) else None


def remote_exception(error: dict[str, Any], job_id: str) -> BaseException:
    """An exception of the remote error's own type that also is a RemoteExecutionError.

    ``except ZeroDivisionError`` and ``except RemoteExecutionError`` both catch it; IPython shows
    the remote traceback through ``_render_traceback_``.
    """
    original: BaseException | None = error.get("exception")
    cls = type(original) if original is not None else _lookup_type(error["module"], error["type"])
    args = original.args if original is not None else (error["message"],)
    exc: BaseException
    try:
        if cls is None or issubclass(cls, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise TypeError("not re-raised as its own type")
        combined = type(
            cls.__name__,
            (cls, RemoteExecutionError),
            {"__module__": cls.__module__, "__qualname__": cls.__qualname__},
        )
        exc = combined.__new__(combined, *args)
        exc.args = args
        if original is not None:
            exc.__dict__.update(original.__dict__)
    except TypeError:
        exc = RemoteExecutionError(f"{error['type']}: {error['message']}")
    exc.remote_traceback = error["traceback"]  # type: ignore[attr-defined]
    exc.job_id = job_id  # type: ignore[attr-defined]
    if hasattr(exc, "add_note"):
        exc.add_note(f"Remote traceback (job {job_id}):\n{error['traceback'].rstrip()}")
    return exc
