"""Follow a job until it ends: status polling and log tails, fed to a display."""

from __future__ import annotations

import time
from collections.abc import Callable

from .display import JobDisplay
from .engines.base import Engine, JobHandle, JobStatus
from .errors import JobTimeoutError
from .jobstore import JobStore

Clock = Callable[[], float]
_CURSOR_SAVE_SECONDS = 5.0


def watch(
    engine: Engine,
    handle: JobHandle,
    display: JobDisplay,
    *,
    store: JobStore | None = None,
    timeout: float | None = None,
    poll_interval: float = 1.0,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> JobStatus:
    """Poll until the job is terminal; stream its logs; return the final status.

    Polls quickly at first (a short job should not wait a whole interval) and backs off to
    ``poll_interval``. Log cursors are saved in the job store, so a re-attach continues where
    this watcher stopped. Ctrl-C propagates (the job keeps running); ``timeout`` raises
    :class:`JobTimeoutError` and also leaves the job running.
    """
    cursors = dict(handle.data.get("log_cursors", {}))
    tails = engine.logs(handle, cursors)
    start = saved = clock()
    delay = 0.1
    last_state = None
    try:
        while True:
            status = engine.describe(handle)
            for tail in tails:
                for line in tail.read(final=status.terminal):
                    display.log(tail.stream, line)
            if (status.state, status.phase) != last_state:
                last_state = (status.state, status.phase)
                display.status(status)
                if store is not None:
                    store.update(handle.job_id, state=status.state, reason=status.reason)
            if status.terminal:
                return status
            if store is not None and clock() - saved > _CURSOR_SAVE_SECONDS:
                # A killed kernel never reaches the finally below: keep the cursors current so
                # a re-attach from a new kernel resumes close to where this one stopped.
                _save_cursors(store, handle, tails)
                saved = clock()
            if timeout is not None and clock() - start > timeout:
                raise JobTimeoutError(
                    f"job {handle.job_id} is still {status.state} after {timeout:.0f} s; it keeps "
                    f"running: jupyter_remote.attach({handle.job_id!r}) waits for it again"
                )
            sleep(delay)
            delay = min(poll_interval, delay * 1.5)
    finally:
        _save_cursors(store, handle, tails)


def _save_cursors(store: JobStore | None, handle: JobHandle, tails: list) -> None:
    handle.data["log_cursors"] = {t.stream: t.cursor for t in tails}
    if store is not None:
        store.update(handle.job_id, handle=handle.data)
