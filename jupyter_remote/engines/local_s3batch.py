"""The local engine's S3 Batch jobs: CreateJob, DescribeJob, UpdateJobStatus, the log.

:class:`~.local.LocalEngine` dispatches here for kind ``s3batch``. :func:`submit` writes the job
folder with status ``New`` and starts ``python -m jupyter_remote.engines.local_s3batch JOBDIR``,
a detached supervisor (:mod:`.local_s3batch_supervisor`) that executes the exact CreateJob
request: manifest from the S3 endpoint, the Lambda package's handler invoked per task in a pool
of worker processes (:mod:`.lambda_pool`), a completion report in AWS's layout. Cancel and
confirm are files the supervisor watches, as ``stop`` is for processing jobs.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ..procs import pid_alive, spawn_detached
from .base import JobHandle, JobStatus, LogTail
from .local_processing import STOP_FILE, now_iso, write_json
from .local_s3batch_queue import CONFIRM_FILE

TERMINAL = frozenset({"Complete", "Failed", "Cancelled"})


def submit(engine: Any, handle: JobHandle, request: dict[str, Any]) -> JobHandle:
    """CreateJob: write the job folder, status ``New``, and start the supervisor."""
    from .local import jobs_dir

    jobdir = jobs_dir() / handle.job_id
    jobdir.mkdir(mode=0o700)
    region = engine.endpoint.region or "us-east-1"
    arn = f"arn:aws:s3:{region}:{request['AccountId']}:job/{handle.job_id}"
    write_json(jobdir / "request.json", request)
    function = {
        "config": handle.data["function"],
        "package_sha256": handle.data["package_sha256"],
        "concurrency": handle.data["concurrency"],
    }
    for name, document in (
        ("endpoint.json", dataclasses.asdict(engine.endpoint)),
        ("function.json", function),
    ):
        (jobdir / name).touch(mode=0o600)  # both hold secrets (credentials, the signing key)
        (jobdir / name).write_text(json.dumps(document))
    status = {
        "JobId": handle.job_id,
        "ConfirmationRequired": bool(request.get("ConfirmationRequired")),
        "JobArn": arn,
        "Status": "New",
        "Operation": request["Operation"],
        "Priority": request["Priority"],
        "ProgressSummary": {
            "TotalNumberOfTasks": 0,
            "NumberOfTasksSucceeded": 0,
            "NumberOfTasksFailed": 0,
            "Timers": {"ElapsedTimeInActiveSeconds": 0},
        },
        "FailureReasons": [],
        "Report": request["Report"],
        "CreationTime": now_iso(),
        "RoleArn": request["RoleArn"],
    }
    for member in ("Manifest", "ManifestGenerator", "Description"):  # echoed when given
        if request.get(member):
            status[member] = request[member]
    write_json(jobdir / "status.json", status)
    pid = spawn_detached("jupyter_remote.engines.local_s3batch", jobdir)
    handle.data.update(jobdir=str(jobdir), pid=pid, arn=arn)
    return handle


def _jobdir(handle: JobHandle) -> Path:
    from .local import jobs_dir

    return Path(handle.data.get("jobdir") or jobs_dir() / handle.job_id)


def progress_text(job: dict[str, Any]) -> str:
    """One line of progress: ``12/50 tasks: 11 succeeded, 1 failed``."""
    summary = job.get("ProgressSummary") or {}
    ok, bad = summary.get("NumberOfTasksSucceeded", 0), summary.get("NumberOfTasksFailed", 0)
    total = summary.get("TotalNumberOfTasks", 0)
    return f"{ok + bad:,}/{total:,} tasks: {ok:,} succeeded, {bad:,} failed"


def describe(engine: Any, handle: JobHandle) -> JobStatus:
    """DescribeJob: read status.json; a dead supervisor with a live status means Failed."""
    jobdir = _jobdir(handle)
    try:
        job = json.loads((jobdir / "status.json").read_text())
    except FileNotFoundError:
        return JobStatus("Failed", True, False, reason=f"no local job folder {jobdir}")
    pid = handle.data.get("pid")
    if job["Status"] not in TERMINAL and pid and not pid_alive(pid):
        job = json.loads((jobdir / "status.json").read_text())
        if job["Status"] not in TERMINAL:
            job.update(
                Status="Failed",
                TerminationDate=now_iso(),
                FailureReasons=[
                    {
                        "FailureCode": "InternalError",
                        "FailureReason": "the local engine's supervisor exited unexpectedly; "
                        f"see {jobdir / 'supervisor.log'}"[:256],
                    }
                ],
            )
            write_json(jobdir / "status.json", job)
    return status_from_job(job)


def status_from_job(job: dict[str, Any]) -> JobStatus:
    """A DescribeJob ``Job`` document as a JobStatus (shared with the AWS ``s3batch`` engine)."""
    state = job["Status"]
    summary = job.get("ProgressSummary") or {}
    phase = {
        "Preparing": "listing the source bucket"
        if job.get("ManifestGenerator")
        else "reading the manifest",
        "Suspended": "awaiting confirmation: job.confirm()",
        "Ready": "waiting for its turn",
    }.get(state, progress_text(job) if state in ("Active", "Completing", "Failing") else "")
    reasons = "; ".join(
        f"{r.get('FailureCode')}: {r.get('FailureReason')}" for r in job.get("FailureReasons", [])
    )
    return JobStatus(
        state=state,
        terminal=state in TERMINAL,
        succeeded=state == "Complete",
        reason=reasons or job.get("StatusUpdateReason", ""),
        phase=phase,
        progress={
            "total": summary.get("TotalNumberOfTasks", 0),
            "succeeded": summary.get("NumberOfTasksSucceeded", 0),
            "failed": summary.get("NumberOfTasksFailed", 0),
            "elapsed": (summary.get("Timers") or {}).get("ElapsedTimeInActiveSeconds", 0),
        },
        raw=job,
    )


def stop(engine: Any, handle: JobHandle) -> None:
    """UpdateJobStatus(Cancelled): the job goes through Cancelling to Cancelled."""
    (_jobdir(handle) / STOP_FILE).touch()


def confirm(engine: Any, handle: JobHandle) -> None:
    """UpdateJobStatus(Ready) for a Suspended job; JobStatusException-like error otherwise."""
    from ..errors import JupyterRemoteError

    # EMULATOR CHOICE (aws-contracts.md A.4 / E.6): Ready is accepted only from Suspended.
    state = describe(engine, handle).state
    if state != "Suspended":
        raise JupyterRemoteError(
            f"job {handle.job_id} is {state}, not Suspended: nothing to confirm"
        )
    (_jobdir(handle) / CONFIRM_FILE).touch()


def logs(engine: Any, handle: JobHandle, cursors: dict[str, int] | None = None) -> list[LogTail]:
    """The function's log (what Lambda would send to CloudWatch)."""
    offset = (cursors or {}).get("lambda", 0)
    return [LogTail("lambda", _jobdir(handle) / "logs" / "lambda.log", offset)]


if __name__ == "__main__":
    from .local_s3batch_supervisor import main

    sys.exit(main(sys.argv))
