"""Plain-text job display for terminals, nbconvert and ``--no-widgets``."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from ..engines.base import JobHandle, JobStatus


class TextDisplay:
    """Prints status transitions and log lines as they happen."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._job = ""
        self._last = ("", "")
        self._started = time.monotonic()
        self._streams: set[str] = set()

    @property
    def out(self) -> TextIO:
        """Where to print (sys.stdout at call time, so IPython's capture sees it)."""
        return self._stream or sys.stdout

    def started(self, handle: JobHandle, title: str) -> None:
        """Print the job's title line."""
        self._job = handle.job_id
        self._started = time.monotonic()
        print(title, file=self.out, flush=True)

    def status(self, status: JobStatus) -> None:
        """Print a line when the state or phase changes."""
        key = (status.state, status.phase)
        if key == self._last:
            return
        self._last = key
        elapsed = time.monotonic() - self._started
        phase = f" ({status.phase})" if status.phase and not status.terminal else ""
        print(
            f"[{self._job}] {status.state}{phase} after {elapsed:.1f} s", file=self.out, flush=True
        )

    def log(self, stream: str, line: str) -> None:
        """Print a log line; prefix the stream when a job has several."""
        self._streams.add(stream)
        prefix = f"{stream} | " if len(self._streams) > 1 or stream != "algo-1" else ""
        print(f"{prefix}{line}", file=self.out, flush=True)

    def message(self, text: str) -> None:
        """Print one of our own lines."""
        print(text, file=self.out, flush=True)

    def finished(self, status: JobStatus) -> None:
        """Print the outcome."""
        reason = f": {status.reason}" if status.reason else ""
        print(f"[{self._job}] {status.state}{reason}", file=self.out, flush=True)


def jobs_table(records: Iterable[Any], *, now: float | None = None) -> str:
    """The job store's records as the text table ``%remote_jobs`` prints."""
    now = time.time() if now is None else now
    rows = [f"{'job':<48} {'engine':<9} {'state':<11} {'age':>8}  written back"]
    for rec in records:
        rows.append(
            f"{rec.job_id:<48} {rec.engine:<9} {rec.state:<11} {now - rec.created:>7.0f}s  "
            f"{'yes' if rec.written_back else 'no'}"
        )
    return "\n".join(rows) if len(rows) > 1 else "No jobs recorded yet."
