"""Which local S3 Batch job runs next: Ready jobs queue by Priority for one Active slot.

EMULATOR CHOICE (aws-contracts.md A.5, "Priority"): AWS schedules higher priorities first on a
best-effort basis. The local engine runs one job Active at a time for this user (all kernels share
the slot through a file lock); Ready jobs wait, highest ``Priority`` first, then oldest. A running
job is not preempted (no Pausing/Paused), and UpdateJobPriority is not emulated.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from ..procs import pid_alive

CONFIRM_FILE = "confirm-requested"
MAX_PRIORITY = 2_147_483_647
POLL_SECONDS = 0.2


def wait_for_file(folder: Path, names: Iterable[str], *, limit: float) -> str | None:
    """Wait until one of ``names`` exists in ``folder``; return it, or None after ``limit`` s."""
    deadline = time.monotonic() + limit
    names = tuple(names)
    while time.monotonic() < deadline:
        for name in names:
            if (folder / name).exists():
                return name
        time.sleep(POLL_SECONDS)
    return None


class JobQueue:
    """A job's place in the queue; a context manager that releases the slot on exit."""

    def __init__(self, job_id: str, priority: int, folder: Path | None = None) -> None:
        from .local import jobs_dir

        self.folder = folder or jobs_dir() / "s3batch-queue"
        self.folder.mkdir(parents=True, exist_ok=True)
        # Names sort highest priority first, then oldest.
        self.entry = self.folder / f"{MAX_PRIORITY - priority:010d}-{time.time_ns():020d}-{job_id}"
        self._lock: Any = None

    def __enter__(self) -> JobQueue:
        self.entry.write_text(str(os.getpid()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.entry.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()

    def _first(self) -> str | None:
        for name in sorted(os.listdir(self.folder)):
            if name.endswith(".lock"):
                continue
            path = self.folder / name
            try:
                pid = int(path.read_text() or 0)
            except (OSError, ValueError):
                continue
            if pid and not pid_alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # a supervisor that died while queued
                continue
            return name
        return None

    def wait_turn(self, cancelled: Callable[[], bool]) -> bool:
        """Block until this job is first in line and holds the slot; False if cancelled."""
        import filelock

        lock = filelock.FileLock(str(self.folder / "active.lock"))
        while not cancelled():
            if self._first() == self.entry.name:
                try:
                    lock.acquire(timeout=0)
                except filelock.Timeout:
                    pass
                else:
                    self._lock = lock
                    self.entry.unlink(missing_ok=True)
                    return True
            time.sleep(POLL_SECONDS)
        return False
