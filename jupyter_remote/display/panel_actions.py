"""What the panels' Show all and Download report buttons do (no widgets here)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..engines.base import S3BATCH
from .logtext import clean_line


def find_job(job_id: str, store: Any = None) -> Any:
    """The recorded job ``job_id`` as its own class (an S3 Batch job can be confirmed, ...)."""
    import jupyter_remote

    job = jupyter_remote.attach(job_id, wait=False, store=store)
    if job.handle.kind == S3BATCH:
        try:
            from ..s3batch_job import S3BatchJob
        except ImportError:  # an install without the S3 Batch engine
            return job
        find = getattr(S3BatchJob, "find", None)
        if callable(find):
            return find(job_id, store=store)
    return job


def read_full_log(job: Any, max_lines: int) -> tuple[list[str], str]:
    """The job's whole log from its start (the last ``max_lines`` lines), and a note.

    The note names the log files when lines were left out, so nothing is out of reach.
    """
    tails = job.engine.logs(job.handle)
    several = len(tails) > 1
    lines: list[str] = []
    for tail in tails:
        for line in tail.read(final=True):
            text = clean_line(line)
            lines.append(f"{tail.stream} | {text}" if several else text)
    if len(lines) <= max_lines:
        return lines, ""
    where = ", ".join(str(t.path) for t in tails if getattr(t, "path", None))
    note = f"showing the last {max_lines:,} of {len(lines):,} log lines"
    return lines[-max_lines:], note + (f"; the whole log: {where}" if where else "")


def download_report(job: Any, folder: str | Path | None = None) -> str:
    """Save the job's completion report as ``<job id>-report.csv``; return a line saying where.

    Uses the job's own ``download_report()`` when it has one, else its ``table()``.
    """
    own = getattr(job, "download_report", None)
    if callable(own):
        return f"report: {own()}"
    table = job.table()
    path = Path(folder or Path.cwd()) / f"{job.job_id}-report.csv"
    if hasattr(table, "to_csv"):
        table.to_csv(path, index=False)
        count = len(table)
    else:
        rows = list(table)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            fields = list(rows[0]) if rows else ["bucket", "key", "status", "result", "error"]
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        count = len(rows)
    return f"report saved to {path} ({count:,} task{'s' if count != 1 else ''})"
