"""A pool of emulated Lambda execution environments (worker processes) for the local engine.

Each worker runs :mod:`.lambda_worker` and takes one invocation at a time. Unlike a
``ProcessPoolExecutor``, one worker can be killed without breaking the others: a timed-out
invocation kills its worker (as Lambda discards the environment) and a worker that dies
(``os._exit``, a segfault) fails only the invocation it was running; either way a fresh worker,
with a fresh cold start, takes its place when the next task arrives.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

WORKER = Path(__file__).resolve().with_name("lambda_worker.py")


def lambda_environment(
    config: dict[str, Any], *, task_root: Path, invoked_arn: str, stream: str
) -> dict[str, str]:
    """The variables Lambda sets for a function, plus the function's own ``Environment``."""
    name, memory = config["FunctionName"], int(config.get("MemorySize", 128))
    context = {
        "function_name": name,
        "function_version": "1",
        "invoked_function_arn": invoked_arn,
        "memory_limit_in_mb": memory,
        "log_group_name": f"/aws/lambda/{name}",
        "log_stream_name": stream,
    }
    env = dict((config.get("Environment") or {}).get("Variables") or {})
    env.update(
        AWS_LAMBDA_FUNCTION_NAME=name,
        AWS_LAMBDA_FUNCTION_VERSION="1",
        # EMULATOR CHOICE (aws-contracts.md C.1): MemorySize is reported, not enforced.
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory),
        AWS_LAMBDA_LOG_GROUP_NAME=context["log_group_name"],
        AWS_LAMBDA_LOG_STREAM_NAME=stream,
        AWS_EXECUTION_ENV=f"AWS_Lambda_{config.get('Runtime', '')}",
        LAMBDA_TASK_ROOT=str(task_root),
        _HANDLER=config["Handler"],
        PYTHONUNBUFFERED="1",
        JUPYTER_REMOTE_LAMBDA_CONTEXT=json.dumps(context),
    )
    return env


@dataclass
class Outcome:
    """How one invocation ended: a reply payload, or a function error object."""

    tag: Any
    request_id: str
    payload: Any = None
    error: dict[str, Any] | None = None
    duration: float = 0.0


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    conn: Connection
    tag: Any = None
    request_id: str = ""
    started: float = 0.0
    deadline: float = 0.0
    busy: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class LambdaPool:
    """Up to ``size`` workers serving invocations of one function with a per-call ``timeout``."""

    def __init__(
        self,
        *,
        size: int,
        task_root: Path,
        handler: str,
        env: dict[str, str],
        log_path: Path,
        timeout: float,
    ) -> None:
        self.size = max(1, size)
        self.task_root = task_root
        self.handler = handler
        self.env = env
        self.log_path = log_path
        self.timeout = timeout
        self._workers: list[_Worker] = []
        self._counter = 0

    # -- workers ------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent, child = multiprocessing.Pipe(duplex=True)
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-u",
                    str(WORKER),
                    str(child.fileno()),
                    str(self.task_root),
                    self.handler,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(child.fileno(),),
                cwd=self.task_root,
                env=self.env,
                start_new_session=True,  # so a kill takes what the handler started, too
            )
        child.close()
        worker = _Worker(proc, parent)
        self._workers.append(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        worker.conn.close()
        # Only while unreaped: a reaped pid (and so its group id) may already belong to another.
        if worker.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()

    @property
    def busy(self) -> int:
        """Invocations in flight."""
        return sum(1 for w in self._workers if w.busy)

    def has_room(self) -> bool:
        """Whether another invocation can start now."""
        return self.busy < self.size

    def next_deadline(self) -> float | None:
        """The earliest monotonic deadline of the invocations in flight."""
        return min((w.deadline for w in self._workers if w.busy), default=None)

    # -- invocations --------------------------------------------------------------------------
    def invoke(self, tag: Any, event: dict[str, Any]) -> str:
        """Start one invocation; ``tag`` comes back in its :class:`Outcome`. Returns the id.

        EMULATOR CHOICE (aws-contracts.md C.1): a worker's cold start (restoring the payload,
        running the cell) happens inside its first invocation and counts against that
        invocation's timeout; Lambda gives init code up to 10 s of its own.
        """
        idle = next((w for w in self._workers if not w.busy), None)
        worker = idle if idle is not None else self._spawn()
        self._counter += 1
        request_id = f"{os.getpid():x}-{self._counter:08x}-{os.urandom(4).hex()}"
        now = time.monotonic()
        message = {"id": request_id, "event": event, "deadline": time.time() + self.timeout}
        worker.tag, worker.request_id, worker.started = tag, request_id, now
        worker.deadline, worker.busy = now + self.timeout, True
        # A worker that died while idle fails the send; poll() then reports its crash.
        with contextlib.suppress(OSError):
            worker.conn.send_bytes(json.dumps(message).encode())
        return request_id

    def poll(self, timeout: float) -> Iterator[Outcome]:
        """Yield invocations that ended within ``timeout`` seconds (replies, crashes, timeouts)."""
        busy = {w.conn: w for w in self._workers if w.busy}
        if not busy:
            return
        ready = wait(list(busy), timeout=max(timeout, 0.0))
        now = time.monotonic()
        for conn in ready:
            worker = busy[conn]
            try:
                reply = json.loads(conn.recv_bytes())
            except (EOFError, OSError, ValueError):
                yield self._crashed(worker, now)
                continue
            worker.busy = False
            outcome = Outcome(worker.tag, worker.request_id, duration=now - worker.started)
            if reply.get("ok"):
                outcome.payload = reply.get("payload")
            else:
                outcome.error = reply.get("error") or {"errorMessage": "unknown error"}
            yield outcome
        for worker in [w for w in self._workers if w.busy and w.deadline <= now]:
            # EMULATOR CHOICE (aws-contracts.md E.15): the newer runtimes' timeout payload.
            self._discard(worker)
            yield Outcome(
                worker.tag,
                worker.request_id,
                error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {worker.request_id} Error: Task timed out "
                    f"after {self.timeout:.2f} seconds",
                },
                duration=now - worker.started,
            )

    def _crashed(self, worker: _Worker, now: float) -> Outcome:
        try:
            code = worker.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:  # closed its end of the pipe but lives on
            code = -signal.SIGKILL
        self._discard(worker)
        how = f"exit status {code}"
        if code < 0:
            with contextlib.suppress(ValueError):
                how = f"signal: {signal.Signals(-code).name.lower()[3:]}"
        # EMULATOR CHOICE (aws-contracts.md E.15): Lambda's Runtime.ExitError payload.
        return Outcome(
            worker.tag,
            worker.request_id,
            error={
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {worker.request_id} Error: Runtime exited with "
                f"error: {how}",
            },
            duration=now - worker.started,
        )

    def abandon(self) -> list[Any]:
        """Kill every worker with an invocation in flight; return their tags."""
        tags = [w.tag for w in self._workers if w.busy]
        for worker in [w for w in self._workers if w.busy]:
            self._discard(worker)
        return tags

    def close(self) -> None:
        """Stop every worker (closing its connection ends it; stragglers are killed)."""
        for worker in self._workers:
            worker.conn.close()
        deadline = time.monotonic() + 2.0
        for worker in list(self._workers):
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            self._discard(worker)
