"""Follow CloudWatch Logs streams: one tail per instance, forward tokens, found by prefix.

SageMaker writes each processing instance's output to ``/aws/sagemaker/ProcessingJobs`` in a
stream named ``<job>/algo-<N>-<epoch seconds>`` (aws-contracts.md B.4), created when the
container first writes, so streams are discovered while the job runs (DescribeLogStreams with the
``<job>/`` prefix, shared by all tails and rate-limited).

Reading follows contract D.1: ``GetLogEvents`` with ``startFromHead=True`` and the previous
``nextForwardToken``; the stream is exhausted (for now) when the service hands back the token we
sent. The token is the tail's :attr:`~CloudWatchLogTail.cursor` (a string, JSON-friendly), so a
re-attach resumes where the last watcher stopped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from .aws_calls import call_with_backoff, error_code, error_message, is_throttling

PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
MAX_PAGES_PER_READ = 20  # keeps one poll short; the next poll continues from the token
MAX_PAGES_FINAL = 10_000  # a safety stop for the final drain of a huge log
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


class LogStreamFinder:
    """Maps ``algo-N`` to its stream ``<job>/algo-N-<epoch>``.

    CloudWatch is asked at most every ``interval`` seconds: DescribeLogStreams is limited to 25
    calls per second per account, shared with every other watcher.
    """

    def __init__(
        self,
        logs: Any,
        job_name: str,
        *,
        group: str = PROCESSING_LOG_GROUP,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logs = logs
        self.job_name = job_name
        self.group = group
        self.interval = interval
        self.clock = clock
        self.streams: dict[str, str] = {}
        self._checked: float | None = None
        self._pattern = re.compile(rf"^{re.escape(job_name)}/(algo-\d+)-\d+$")

    def find(self, host: str, *, force: bool = False) -> str | None:
        """The stream of ``host``, or None while the container has written nothing."""
        if host not in self.streams:
            due = self._checked is None or self.clock() - self._checked >= self.interval
            if force or due:
                self.refresh()
        return self.streams.get(host)

    def refresh(self) -> None:
        """List the job's streams (every page) and remember the first one of each host."""
        self._checked = self.clock()
        kwargs = {"logGroupName": self.group, "logStreamNamePrefix": f"{self.job_name}/"}
        try:
            for page in self.logs.get_paginator("describe_log_streams").paginate(**kwargs):
                for stream in page.get("logStreams", []):
                    match = self._pattern.match(stream["logStreamName"])
                    if match:
                        self.streams.setdefault(match[1], stream["logStreamName"])
        except Exception as exc:
            # No log group yet (the account's first job) or throttled: try again next time.
            if error_code(exc) != "ResourceNotFoundException" and not is_throttling(exc):
                raise


class CloudWatchLogTail:
    """Follows one instance's stream; ``stream`` is the host name (``algo-1``), like locally."""

    def __init__(
        self,
        host: str,
        *,
        logs: Any,
        finder: LogStreamFinder,
        cursor: str | None = None,
        min_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stream = host
        self.logs = logs
        self.finder = finder
        self.token = cursor or None
        self.min_interval = min_interval
        self.clock = clock
        self.sleep = sleep
        self._last_read: float | None = None
        self._denied = False

    @property
    def log_stream(self) -> str | None:
        """The CloudWatch stream name, once the container has written to it."""
        return self.finder.streams.get(self.stream)

    @property
    def cursor(self) -> str | None:
        """The forward token after the last event returned (None before the first read)."""
        return self.token

    def read(self, *, final: bool = False) -> list[str]:
        """New lines since the last read; with ``final``, drain until the token repeats.

        Without permission to read the logs, one line says so and the job is watched without them.
        """
        if self._denied:
            return []
        try:
            return self._read(final=final)
        except Exception as exc:
            if error_code(exc) not in DENIED:
                raise
            self._denied = True
            return [f"[jupyter-remote] cannot read CloudWatch logs: {error_message(exc)}"]

    def _read(self, *, final: bool) -> list[str]:
        now = self.clock()
        if not final and self._last_read is not None and now - self._last_read < self.min_interval:
            return []
        self._last_read = now
        name = self.finder.find(self.stream, force=final)
        if name is None:
            return []
        lines: list[str] = []
        for _ in range(MAX_PAGES_FINAL if final else MAX_PAGES_PER_READ):
            try:
                page = self._page(name, final=final)
            except Exception as exc:
                if is_throttling(exc) and not final:
                    break  # the next poll continues from the same token
                if error_code(exc) == "InvalidParameterException" and self.token:
                    self.token = None  # tokens expire after 24 h: repeat lines, never lose them
                    continue
                raise
            for event in page.get("events", []):
                lines.extend(event["message"].rstrip("\n").split("\n"))
            token = page["nextForwardToken"]
            if token == self.token:
                break  # the service hands back the token we sent: nothing more for now
            self.token = token
        return [line.rstrip("\r") for line in lines]

    def _page(self, name: str, *, final: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "logGroupName": self.finder.group,
            "logStreamName": name,
            "startFromHead": True,
        }
        if self.token:
            kwargs["nextToken"] = self.token

        def call() -> dict[str, Any]:
            return self.logs.get_log_events(**kwargs)

        return call_with_backoff(call, sleep=self.sleep) if final else call()
