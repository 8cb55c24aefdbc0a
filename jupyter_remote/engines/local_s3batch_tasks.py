"""The Active phase of a local S3 Batch job: tasks through the pool, outcomes into the report.

One task per invocation, events as documented (aws-contracts.md A.6), result codes applied as
A.6 says, TemporaryFailure redriven with back-off, the >50 %-after-1,000 threshold (A.5). Rows
are pulled from the manifest only when a worker is free and each finished task goes straight to
the report file, so memory stays flat however long the manifest is.
"""

from __future__ import annotations

import heapq
import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from ..s3batch_manifest import ManifestRow, parse_rows
from ..s3batch_report import ReportWriter
from .lambda_pool import LambdaPool, Outcome

SUCCEEDED, TEMPORARY, PERMANENT = "Succeeded", "TemporaryFailure", "PermanentFailure"
# EMULATOR CHOICE (aws-contracts.md E.2): a TemporaryFailure is redriven 3 times (4 attempts in
# all), after 0.5 s, 1 s and 2 s; then the task fails with ErrorCode TemporaryFailure and the
# last resultString. The contract suggests "3-5 with backoff".
MAX_REDRIVES = 3
BACKOFF_SECONDS = 0.5
THRESHOLD_MIN_TASKS = 1000  # documented (A.5): checked once at least 1,000 tasks have run
STATUS_INTERVAL = 0.5  # seconds between status.json writes while Active


class _Task(NamedTuple):
    row: ManifestRow
    attempt: int
    task_id: str


def interpret(payload: Any, task_id: str) -> tuple[str, str]:
    """The result code and message a LambdaInvoke reply gives one task (aws-contracts.md A.6)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("results", []), list):
        return PERMANENT, "Invalid JSON returned in Lambda payload"
    for result in payload.get("results") or []:
        if isinstance(result, dict) and result.get("taskId") == task_id:
            code = result.get("resultCode")
            if code not in (SUCCEEDED, TEMPORARY, PERMANENT):
                return PERMANENT, f"Invalid resultCode {code!r} in Lambda payload"
            text = result.get("resultString")
            return code, text if isinstance(text, str) else json.dumps(text)
    # EMULATOR CHOICE (aws-contracts.md E.1): treatMissingKeysAs applies to tasks the reply
    # leaves out; PermanentFailure when absent, as every AWS sample sends.
    missing = payload.get("treatMissingKeysAs")
    missing = missing if missing in (SUCCEEDED, TEMPORARY, PERMANENT) else PERMANENT
    return (
        missing,
        f"the Lambda response has no result for this task (treatMissingKeysAs={missing})",
    )


class TaskRunner:
    """Runs one job's tasks and keeps its counters."""

    def __init__(self, *, job_id: str, request: dict[str, Any], report: ReportWriter) -> None:
        self.job_id = job_id
        invoke = (request.get("Operation") or {}).get("LambdaInvoke") or {}
        self.schema = str(invoke.get("InvocationSchemaVersion", "1.0"))
        job: dict[str, Any] = {"id": job_id}
        if self.schema == "2.0" and invoke.get("UserArguments"):
            job["userArguments"] = dict(invoke["UserArguments"])
        self.job_part = job
        self.fields = (request.get("Manifest") or {}).get("Spec", {}).get("Fields") or [
            "Bucket",
            "Key",
        ]
        self.report = report
        self.succeeded = 0
        self.failed = 0

    def event(self, task: _Task) -> dict[str, Any]:
        """The documented event for one task (schema 1.0 or 2.0; the key as in the manifest)."""
        row = task.row
        # EMULATOR CHOICE (aws-contracts.md A.6): s3Key is the manifest's field, not decoded.
        item: dict[str, Any] = {
            "taskId": task.task_id,
            "s3Key": row.key,
            "s3VersionId": row.version,
        }
        if self.schema == "2.0":
            item["s3Bucket"] = row.bucket
        else:
            item["s3BucketArn"] = f"arn:aws:s3:::{row.bucket}"
        return {
            "invocationSchemaVersion": self.schema,
            "invocationId": os.urandom(12).hex(),
            "job": self.job_part,
            "tasks": [item],
        }

    def record(self, row: ManifestRow, ok: bool, code: str, message: str, http: int = 200) -> None:
        """Count one finished task and append it to the report."""
        if ok:
            self.succeeded += 1
        else:
            self.failed += 1
        self.report.add(row.bucket, row.key, row.version, ok, "" if ok else code, message, http)

    def settle(self, outcome: Outcome, retries: list[tuple[float, int, _Task]]) -> None:
        """Apply one invocation's outcome: record it or schedule a redrive."""
        task: _Task = outcome.tag
        if outcome.error is not None:
            # Function errors and timeouts fail the task permanently (A.6), with this text.
            message = "Lambda returned function error: " + json.dumps(outcome.error)
            self.record(task.row, False, PERMANENT, message)
            return
        code, message = interpret(outcome.payload, task.task_id)
        if code == TEMPORARY and task.attempt < MAX_REDRIVES:
            due = time.monotonic() + BACKOFF_SECONDS * 2**task.attempt
            retry = _Task(task.row, task.attempt + 1, task.task_id)
            heapq.heappush(retries, (due, task.row.index, retry))
            return
        self.record(task.row, code == SUCCEEDED, code, message)

    def over_threshold(self) -> bool:
        """More than 50 % failed once at least 1,000 tasks have run (A.5)."""
        run = self.succeeded + self.failed
        # EMULATOR CHOICE (aws-contracts.md A.5): checked after every finished task.
        return run >= THRESHOLD_MIN_TASKS and self.failed * 2 > run

    def run(
        self,
        lines: Iterable[str],
        pool: LambdaPool,
        *,
        cancelled: Callable[[], bool],
        tick: Callable[[], None],
    ) -> str:
        """Invoke every task; return how the job ends (Complete, Failed or Cancelled).

        ``cancelled`` is asked between rounds; ``tick`` is called after each (status writes).
        """
        rows = parse_rows(lines, self.fields)
        retries: list[tuple[float, int, _Task]] = []
        exhausted = False
        while True:
            if cancelled():
                return "Cancelled"
            if self.over_threshold():
                return "Failed"
            now = time.monotonic()
            while pool.has_room() and not self.over_threshold():
                if retries and retries[0][0] <= now:
                    task = heapq.heappop(retries)[2]
                elif not exhausted:
                    row = next(rows, None)
                    if row is None:
                        exhausted = True
                        continue
                    if row.error:
                        # EMULATOR CHOICE (aws-contracts.md E.3): a malformed row is a failed
                        # task (ErrorCode InvalidManifestContent, HTTP 400), not a job failure.
                        self.record(row, False, "InvalidManifestContent", row.error, 400)
                        continue
                    task = _Task(row, 0, f"{row.index:x}-{self.job_id[:8]}")
                else:
                    break
                pool.invoke(task, self.event(task))
            if exhausted and not retries and pool.busy == 0:
                return "Complete"
            waits = [STATUS_INTERVAL]
            if retries:
                waits.append(retries[0][0] - now)
            deadline = pool.next_deadline()
            if deadline is not None:
                waits.append(deadline - now)
            wait = max(min(waits), 0.0)
            if pool.busy == 0:
                time.sleep(wait)
            for outcome in pool.poll(wait):
                self.settle(outcome, retries)
            tick()
