"""One emulated Lambda execution environment of the local S3 Batch engine.

Standard library only, run as a script (``python -u lambda_worker.py FD TASK_ROOT HANDLER``) by
:mod:`.lambda_pool`: the script's own folder is replaced on ``sys.path`` by the unpacked package
(Lambda's ``/var/task``), so the handler and its imports resolve as they do on Lambda. The
handler is imported the way the Lambda Python runtime does (``module.path.function``, with
``/`` read as ``.``). Requests arrive on a ``multiprocessing`` connection (fd ``FD``) as JSON
``{"id", "event", "deadline"}``; the reply is ``{"ok": true, "payload": ...}`` or
``{"ok": false, "error": {"errorMessage", "errorType", "stackTrace"}}``, the error object
the Python runtime returns for an unhandled exception. stdout and stderr are the function's log.
A handler that never returns or kills the process is dealt with by the pool (timeout, crash).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

CONTEXT_ENV = "JUPYTER_REMOTE_LAMBDA_CONTEXT"


class Context:
    """The ``context`` object a Python Lambda handler receives."""

    def __init__(self, static: dict[str, Any], request_id: str, deadline: float) -> None:
        self.function_name = static.get("function_name", "")
        self.function_version = static.get("function_version", "$LATEST")
        self.invoked_function_arn = static.get("invoked_function_arn", "")
        self.memory_limit_in_mb = int(static.get("memory_limit_in_mb", 128))
        self.log_group_name = static.get("log_group_name", "")
        self.log_stream_name = static.get("log_stream_name", "")
        self.aws_request_id = request_id
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out."""
        return max(int((self._deadline - time.time()) * 1000), 0)


def error_object(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The Python runtime's error payload for an exception."""
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def load_handler(name: str) -> Any:
    """Import ``module.path.function`` (``/`` allowed), as the Lambda Python runtime does."""
    module_name, _, function = name.rpartition(".")
    module = importlib.import_module(module_name.replace("/", "."))
    return getattr(module, function)


def main(argv: list[str]) -> int:
    """Serve invocations until the pool closes the connection."""
    conn = Connection(int(argv[1]))
    sys.path[0] = argv[2]
    static = json.loads(os.environ.get(CONTEXT_ENV, "{}"))
    try:
        handler: Any = load_handler(argv[3])
        init_error = None
    except Exception as exc:
        handler = None
        init_error = error_object(exc, "Runtime.ImportModuleError")
        init_error["errorMessage"] = f"Unable to import module {argv[3]!r}: {exc}"
        traceback.print_exc()
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return 0
        if init_error is not None:
            reply: dict[str, Any] = {"ok": False, "error": init_error}
        else:
            context = Context(static, request["id"], request["deadline"])
            try:
                reply = {"ok": True, "payload": handler(request["event"], context)}
            except Exception as exc:
                print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
                traceback.print_exc()
                reply = {"ok": False, "error": error_object(exc)}
        try:
            data = json.dumps(reply)
        except (TypeError, ValueError) as exc:
            error = error_object(exc, "Runtime.MarshalError")
            error["errorMessage"] = f"Unable to marshal response: {exc}"
            data = json.dumps({"ok": False, "error": error})
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send_bytes(data.encode())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
