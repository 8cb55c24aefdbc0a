"""S3 Batch completion reports in AWS's layout (aws-contracts.md A.7): write, publish, read.

Objects, with ``P`` the report prefix::

    P/job-<JobId>/manifest.json            index: Format, ReportCreationDate, Results, ReportSchema
    P/job-<JobId>/results/<40 hex>.csv     one file per outcome (succeeded, failed)

CSV rows have no header and RFC-4180 quoting, in the order every AWS example shows:
``Bucket, Key, VersionId, TaskStatus, HTTPStatusCode, ErrorCode, ResultMessage``. The index still
carries AWS's literal ``ReportSchema`` string (which names ErrorCode first); the reader tells the
two columns apart by content, as the contract advises.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

from .s3batch_manifest import iter_lines

REPORT_FORMAT = "Report_CSV_20180820"
REPORT_SCHEMA = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
CSV_COLUMNS = (
    "Bucket",
    "Key",
    "VersionId",
    "TaskStatus",
    "HTTPStatusCode",
    "ErrorCode",
    "ResultMessage",
)
TABLE_COLUMNS = ("bucket", "key", "version", "status", "result", "error")
_CHUNK = 1024 * 1024


def report_base(prefix: str, job_id: str) -> str:
    """``<prefix>/job-<id>`` (or ``job-<id>`` without a prefix)."""
    prefix = prefix.strip("/")
    return f"{prefix}/job-{job_id}" if prefix else f"job-{job_id}"


class ReportWriter:
    """Appends finished tasks to one local CSV per outcome, as they finish (never all in memory)."""

    def __init__(self, folder: Path, scope: str = "AllTasks") -> None:
        self.folder = folder
        self.scope = scope
        self._files: dict[str, tuple[IO[str], Any]] = {}

    def add(
        self,
        bucket: str,
        key: str,
        version: str | None,
        succeeded: bool,
        error_code: str,
        message: str,
        http_status: int = 200,
    ) -> None:
        """Record one task's final outcome (succeeded tasks are dropped for FailedTasksOnly)."""
        status = "succeeded" if succeeded else "failed"
        if succeeded and self.scope == "FailedTasksOnly":
            return
        if status not in self._files:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / f"{status}.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115
            # EMULATOR CHOICE (aws-contracts.md E.4): "\n" line ends; AWS's files are not shown.
            self._files[status] = (handle, csv.writer(handle, lineterminator="\n"))
        # EMULATOR CHOICE (aws-contracts.md E.4): the key as the manifest wrote it (URL-encoded).
        row = [bucket, key, version or "", status, str(http_status), error_code, message]
        self._files[status][1].writerow(row)

    def close(self) -> list[tuple[str, Path]]:
        """Close the files; return ``(status, path)`` of each, succeeded first."""
        for handle, _ in self._files.values():
            handle.close()
        order = ("succeeded", "failed")
        return [(s, self.folder / f"{s}.csv") for s in order if s in self._files]


def _digests(path: Path) -> tuple[str, str]:
    sha1, md5 = hashlib.sha1(), hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha1.update(chunk)
            md5.update(chunk)
    return sha1.hexdigest(), md5.hexdigest()


def publish(
    client: Any,
    files: list[tuple[str, Path]],
    *,
    bucket: str,
    prefix: str,
    job_id: str,
    now: dt.datetime | None = None,
) -> str:
    """Upload the results files and ``manifest.json``; return the manifest's key."""
    base = report_base(prefix, job_id)
    results = []
    for status, path in files:
        # EMULATOR CHOICE (aws-contracts.md E.4): the 40-hex name is the file's SHA-1.
        sha1, md5 = _digests(path)
        key = f"{base}/results/{sha1}.csv"
        client.upload_file(str(path), bucket, key)
        results.append(
            {"TaskExecutionStatus": status, "Bucket": bucket, "MD5Checksum": md5, "Key": key}
        )
    # EMULATOR CHOICE (aws-contracts.md E.4): a FailedTasksOnly report of a job without failures
    # is an index with an empty Results list.
    stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    index = {
        "Format": REPORT_FORMAT,
        "ReportCreationDate": stamp.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{stamp.microsecond // 1000:03d}Z",
        "Results": results,
        "ReportSchema": REPORT_SCHEMA,
    }
    key = f"{base}/manifest.json"
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(index).encode())
    return key


def read_index(client: Any, bucket: str, prefix: str, job_id: str) -> dict[str, Any]:
    """The report's ``manifest.json``."""
    key = f"{report_base(prefix, job_id)}/manifest.json"
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def parse_row(cols: list[str]) -> dict[str, str]:
    """Name a report row's columns, placing HTTPStatusCode and ErrorCode by their content."""
    cols = (cols + [""] * 7)[:7]
    bucket, key, version, task_status, fifth, sixth, message = cols
    http, code = (fifth, sixth)
    if not fifth.isdigit() and sixth.isdigit():  # a file in ReportSchema's own order
        http, code = sixth, fifth
    return dict(
        zip(CSV_COLUMNS, (bucket, key, version, task_status, http, code, message), strict=True)
    )


def iter_rows(client: Any, index: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Every row of every results file of a report, streamed."""
    for result in index.get("Results", []):
        body = client.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"]
        for cols in csv.reader(iter_lines(body, keepends=True)):
            if cols:
                yield parse_row(cols)


def table_rows(rows: Iterable[dict[str, str]]) -> Iterator[dict[str, Any]]:
    """Report rows as the user's table: decoded key, result for successes, error otherwise."""
    for row in rows:
        ok = row["TaskStatus"] == "succeeded"
        yield {
            "bucket": row["Bucket"],
            "key": unquote(row["Key"], encoding="utf-8"),
            "version": row["VersionId"] or None,
            "status": "Succeeded" if ok else (row["ErrorCode"] or "Failed"),
            "result": row["ResultMessage"] if ok else None,
            "error": None if ok else row["ResultMessage"],
        }


def to_table(rows: Iterable[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``TABLE_COLUMNS`` when pandas imports, else a list of dicts."""
    try:
        import pandas as pd
    except ImportError:
        return list(rows)
    columns: dict[str, list[Any]] = {name: [] for name in TABLE_COLUMNS}
    for row in rows:
        for name in TABLE_COLUMNS:
            columns[name].append(row[name])
    return pd.DataFrame(columns, columns=list(TABLE_COLUMNS))
