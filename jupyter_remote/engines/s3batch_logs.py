"""The error lines of a %%s3batch function's CloudWatch log group (FilterLogEvents, contract D.2).

A job invokes its function thousands of times across many streams; following every line is
neither possible nor useful, so the log panel gets what failed: lines matching
:data:`ERROR_TERMS`. Like :class:`~.base.LogTail` it keeps a cursor (the last event's
timestamp) so a re-attach does not repeat lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .aws_calls import call_with_backoff, error_code, error_message, is_throttling
from .cloudwatch import DENIED

ERROR_TERMS = ("ERROR", "Error", "Traceback", "Exception", "Task timed out")
FILTER_PATTERN = " ".join(f'?"{term}"' for term in ERROR_TERMS)
MAX_PAGES = 20


class LambdaErrorTail:
    """Follows the error lines of one log group; ``stream`` is ``lambda`` as on the local engine."""

    stream = "lambda"

    def __init__(
        self,
        logs: Any,
        group: str,
        *,
        cursor: int | None = None,
        min_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logs = logs
        self.group = group
        self.path = f"CloudWatch log group {group}"  # what S3BatchJob.wait names in its hint
        self.start = cursor or 0
        self.min_interval = min_interval
        self.clock = clock
        self._seen: set[str] = set()
        self._last_read: float | None = None
        self._quiet = False

    @property
    def cursor(self) -> int:
        """Timestamp (ms) from which the next read starts.

        Inclusive, as ``startTime`` is: other streams may log in the same millisecond, so a
        re-attach may repeat the last error line rather than lose one.
        """
        return self.start

    def read(self, *, final: bool = False) -> list[str]:
        """New error lines since the last read (at most every ``min_interval`` seconds)."""
        from botocore.exceptions import ClientError

        now = self.clock()
        if self._quiet or (
            not final and self._last_read is not None and now - self._last_read < self.min_interval
        ):
            return []
        self._last_read = now
        lines: list[str] = []
        token = None
        try:
            for _ in range(MAX_PAGES):
                kwargs: dict[str, Any] = {
                    "logGroupName": self.group,
                    "filterPattern": FILTER_PATTERN,
                    "startTime": self.start,
                }
                if token:
                    kwargs["nextToken"] = token
                page = call_with_backoff(lambda args=kwargs: self.logs.filter_log_events(**args))
                lines.extend(self._take(page.get("events", [])))
                token = page.get("nextToken")
                if not token:
                    break
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException" or is_throttling(exc):
                return lines  # no invocation has logged yet, or try again next poll
            if error_code(exc) in DENIED:
                self._quiet = True
                return [f"[jupyter-remote] cannot read CloudWatch logs: {error_message(exc)}"]
            raise
        return lines

    def _take(self, events: list[dict[str, Any]]) -> list[str]:
        lines = []
        for event in events:
            if event.get("eventId") in self._seen:
                continue
            self._seen.add(event.get("eventId", ""))
            self.start = max(self.start, int(event.get("timestamp", 0)))
            message = str(event.get("message", "")).rstrip("\n")
            # Filter patterns differ between CloudWatch and emulators; apply the terms here too.
            if any(term in message for term in ERROR_TERMS):
                lines.append(message)
        return lines
