"""A submitted ``%%s3batch`` job: progress while it runs, the report table when it ends."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from .api import RemoteJob
from .config import RemoteSettings
from .display import JobDisplay
from .engines.base import JobHandle, JobStatus
from .errors import JobFailedError, JupyterRemoteError
from .jobstore import JobStore

_MAX_LOG_LINES = 50
_FAILURES_SHOWN = 3
_RERUN_OPTIONS = frozenset({"priority", "confirm", "report_scope", "concurrency", "output_var"})
# The handle keys s3batch() writes before submitting (see s3batch.s3batch).
_HANDLE_KEYS = frozenset(
    {"key", "staging", "endpoint", "function", "package_sha256", "concurrency", "buckets", "report"}
)


class _ProgressDisplay:
    """Forwards to a display, thinning progress lines and capping the function's log lines.

    The monitor reports every change of the progress text; a job of an hour would print
    thousands of lines, so a progress line waits until a tenth of the elapsed time has passed.
    """

    def __init__(self, inner: JobDisplay, hint: str = "") -> None:
        self.inner = inner
        self.hint = hint
        self._state = ""
        self._start = self._last = time.monotonic()
        self._lines = 0

    def started(self, handle: JobHandle, title: str) -> None:
        self.inner.started(handle, title)

    def status(self, status: JobStatus) -> None:
        now = time.monotonic()
        if (
            status.state != self._state
            or status.terminal
            or now - self._last >= max(2.0, 0.1 * (now - self._start))
        ):
            self._state, self._last = status.state, now
            self.inner.status(status)

    def log(self, stream: str, line: str) -> None:
        self._lines += 1
        if self._lines <= _MAX_LOG_LINES:
            self.inner.log(stream, line)
        elif self._lines == _MAX_LOG_LINES + 1:
            self.inner.message(f"(more function log lines are not shown{self.hint})")

    def message(self, text: str) -> None:
        self.inner.message(text)

    def finished(self, status: JobStatus) -> None:
        self.inner.finished(status)


class S3BatchJob(RemoteJob):
    """A submitted %%s3batch job: watch it, confirm or cancel it, read its report table."""

    _table: Any = None

    @classmethod
    def find(
        cls, job_id: str, *, store: JobStore | None = None, settings: RemoteSettings | None = None
    ) -> S3BatchJob:
        """The recorded job ``job_id`` (an id prefix will do), from this or another kernel."""
        from .api import _endpoint_for, _engine

        settings = settings or RemoteSettings()
        store = store or JobStore()
        record = store.get(job_id)
        runner = _engine(
            record.engine, _endpoint_for(record, settings), record.handle["staging"], store
        )
        handle = JobHandle(record.engine, record.kind, record.job_id, dict(record.handle))
        return cls(runner, handle, record)

    def __repr__(self) -> str:
        return f"<S3BatchJob {self.job_id} on {self.engine.name}: {self.status().state}>"

    @property
    def output_var(self) -> str | None:
        """The notebook variable the table is stored in, if any."""
        return self.record.writeback.get("output_var") or None

    def confirm(self) -> None:
        """Confirm a job created with ``confirm=True`` (UpdateJobStatus Ready)."""
        confirm = getattr(self.engine, "confirm", None)
        if confirm is None and self.engine.name == "local":
            from .engines import local_s3batch

            confirm = lambda handle: local_s3batch.confirm(self.engine, handle)  # noqa: E731
        if confirm is None:
            raise JupyterRemoteError(f"engine {self.engine.name} cannot confirm jobs")
        confirm(self.handle)

    def priority(self, priority: int) -> int:
        """Change the job's priority (UpdateJobPriority) on an engine that supports it."""
        change = getattr(self.engine, "priority", None)
        if change is None:
            raise JupyterRemoteError(f"engine {self.engine.name} cannot change priorities")
        return int(change(self.handle, priority))

    def report_index(self) -> dict[str, Any]:
        """The completion report's ``manifest.json``."""
        from .s3batch_report import read_index

        report = self.handle.data["report"]
        client = self.engine.storage.client
        # S3 names the report after its own JobId, which on AWS is not ours.
        job_id = self.handle.data.get("aws_job_id") or self.job_id
        return read_index(client, report["bucket"], report["prefix"], job_id)

    def table(self) -> Any:
        """Every reported task: bucket, key, version, status, result, error (a DataFrame).

        A list of dicts when pandas is not installed; empty when the job wrote no report.
        """
        if self._table is not None:
            return self._table
        from botocore.exceptions import ClientError

        from .s3batch_report import iter_rows, table_rows, to_table

        try:
            index = self.report_index()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404", "NotFound"):
                raise
            return to_table([])
        self._table = to_table(table_rows(iter_rows(self.engine.storage.client, index)))
        return self._table

    def failed_rows(self) -> list[dict[str, Any]]:
        """The report rows of the tasks that did not succeed (bucket, key, version, ...)."""
        table = self.table()
        if hasattr(table, "to_dict"):
            return list(table[table.status != "Succeeded"].to_dict("records"))
        return [r for r in table if r["status"] != "Succeeded"]

    def rerun_failed(self, **overrides: Any) -> S3BatchJob:
        """Submit a new job over this job's failed tasks only; return it (not waited for).

        The failed rows of the completion report become a CSV manifest (keys URL-encoded,
        version ids kept) in the staging prefix; the new job runs the same function with the
        same options, except that its table is stored only in ``output_var`` when given (the
        first job's table keeps every task). ``overrides``: ``priority``, ``confirm``,
        ``report_scope``, ``concurrency``, ``output_var``. Follow the new job with ``.wait()``.
        """
        import copy
        import csv
        import io
        import uuid

        from .engines.base import S3BATCH
        from .jobstore import JobRecord
        from .s3batch_manifest import encode_key
        from .s3uri import S3Uri
        from .spec.s3batch import MANIFEST_CSV, validate_create_job_request

        unknown = sorted(set(overrides) - _RERUN_OPTIONS)
        if unknown:
            raise TypeError(f"rerun_failed() got unknown option(s): {', '.join(unknown)}")
        failed = self.failed_rows()
        if not failed:
            raise JupyterRemoteError(f"job {self.job_id} has no failed tasks to re-run")
        request = copy.deepcopy(self.record.request)
        # A ManifestGenerator job re-runs over a manifest of its failed rows like any other.
        request.pop("ManifestGenerator", None)
        spec = (request.get("Manifest") or {}).get("Spec") or {
            "Format": MANIFEST_CSV,
            "Fields": ["Bucket", "Key"],
        }
        fields = list(spec["Fields"])
        if any(row.get("version") for row in failed) and "VersionId" not in fields:
            fields.append("VersionId")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in failed:
            values = {
                "Bucket": row["bucket"],
                "Key": encode_key(row["key"]),
                "VersionId": row.get("version") or "",
            }
            writer.writerow([values[f] for f in fields])
        job_id = str(uuid.uuid4())
        staging = S3Uri.parse(self.record.handle["staging"])
        dest = staging.join("s3batch-manifests", f"{job_id}.csv")
        client = self.engine.storage.client
        put = client.put_object(Bucket=dest.bucket, Key=dest.key, Body=out.getvalue().encode())
        arn_prefix = request["Report"]["Bucket"].split(":::", 1)[0]  # arn:<partition>:s3
        request["Manifest"] = {
            "Spec": dict(spec, Fields=fields),
            "Location": {
                "ObjectArn": f"{arn_prefix}:::{dest.bucket}/{dest.key}",
                "ETag": put["ETag"].strip('"'),
            },
        }
        request["ClientRequestToken"] = job_id
        if "priority" in overrides:
            request["Priority"] = int(overrides["priority"])
        if "confirm" in overrides:
            request["ConfirmationRequired"] = bool(overrides["confirm"])
        if "report_scope" in overrides:
            request["Report"]["ReportScope"] = overrides["report_scope"]
        description = f"jupyter-remote re-run of the failed tasks of {self.job_id}"
        request["Description"] = description[:256]
        validate_create_job_request(request)
        # Only what s3batch() recorded before submitting: the engine's own keys (the AWS job
        # id, a process id) belong to the old job.
        handle = {k: copy.deepcopy(v) for k, v in self.record.handle.items() if k in _HANDLE_KEYS}
        handle["buckets"] = sorted({*handle.get("buckets", []), *(r["bucket"] for r in failed)})
        if "concurrency" in overrides:
            handle["concurrency"] = int(overrides["concurrency"])
        # Not the first job's --output-var: that holds every task, the re-run only the failed.
        writeback = dict(self.record.writeback, output_var=overrides.get("output_var") or "")
        now = time.time()
        record = JobRecord(
            job_id=job_id,
            engine=self.engine.name,
            kind=S3BATCH,
            state="Submitting",
            created=now,
            updated=now,
            request=request,
            handle=handle,
            writeback=writeback,
            cell=self.record.cell,
            notebook=self.record.notebook,
        )
        return S3BatchJob(self.engine, self.engine.submit(record), record)

    def wait(
        self,
        user_ns: MutableMapping[str, Any] | None = None,
        *,
        display: JobDisplay | None = None,
        timeout: float | None = None,
        poll_interval: float = 1.0,
    ) -> Any:
        """Follow the job to its end; store the table in ``output_var``; return the table.

        Raises :class:`JobFailedError` when the job ends Failed or Cancelled (after storing the
        table of the tasks that ran). Ctrl-C stops watching, not the job.
        """
        return super().wait(user_ns, display=display, timeout=timeout, poll_interval=poll_interval)

    def _watch_display(self, display: JobDisplay) -> JobDisplay:
        # A display that coalesces (the widget panel) wants every update; text is thinned.
        if getattr(display, "coalesces", False):
            return display
        tails = self.engine.logs(self.handle)
        path = getattr(tails[0], "path", None) if tails else None
        hint = f"; the whole log is {path}" if path else ""
        return _ProgressDisplay(display, hint)

    def _reattach_hint(self) -> str:
        return (
            f"Re-attach with jupyter_remote.s3batch.S3BatchJob.find({self.job_id!r}).wait(); "
            "cancel it with .stop()."
        )

    def write_back(
        self, status: JobStatus, user_ns: MutableMapping[str, Any], display: JobDisplay
    ) -> Any:
        """Summarize a finished job, store its table, raise if the job itself failed."""
        table = self.table()
        if hasattr(table, "to_dict"):  # a DataFrame: filter there, never one dict per row
            failures = table[table.status != "Succeeded"].head(_FAILURES_SHOWN).to_dict("records")
        else:
            failures = [r for r in table if r["status"] != "Succeeded"]
        progress = status.progress
        display.message(
            f"{progress.get('succeeded', 0):,} succeeded, {progress.get('failed', 0):,} failed "
            f"of {progress.get('total', 0):,} tasks."
        )
        for row in failures[:_FAILURES_SHOWN]:
            display.message(f"  {row['status']}: {row['key']}: {row['error']}")
        if self.output_var:
            user_ns[self.output_var] = table
            display.message(f"table of {len(table):,} task(s) stored in {self.output_var}")
        self.engine.store.update(self.job_id, written_back=True)
        if not status.succeeded:
            raise JobFailedError(self.job_id, status.state, status.reason)
        return table
