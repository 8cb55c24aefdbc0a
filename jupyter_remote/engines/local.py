"""The local engine: runs the very request AWS would receive, on this machine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..paths import data_dir
from ..procs import pid_alive, spawn_detached
from . import local_s3batch
from .base import PROCESSING, S3BATCH, Engine, JobHandle, JobStatus, LogTail
from .local_processing import STOP_FILE, now_iso, write_json

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/jupyter-remote-local"
LOCAL_ACCOUNT = "000000000000"


def jobs_dir() -> Path:
    """Where local job sandboxes live."""
    path = data_dir() / "local-jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


class LocalEngine(Engine):
    """Runs processing jobs as local processes (one per instance) under a supervisor."""

    name = "local"
    kinds = frozenset({PROCESSING, S3BATCH})

    def jobdir(self, handle: JobHandle) -> Path:
        """The job's sandbox folder."""
        return Path(handle.data.get("jobdir") or jobs_dir() / handle.job_id)

    def _submit(self, handle: JobHandle, request: dict[str, Any]) -> JobHandle:
        if handle.kind == S3BATCH:
            return local_s3batch.submit(self, handle, request)
        jobdir = jobs_dir() / handle.job_id
        jobdir.mkdir(mode=0o700)
        region = self.endpoint.region or "us-east-1"
        arn = f"arn:aws:sagemaker:{region}:{LOCAL_ACCOUNT}:processing-job/{handle.job_id.lower()}"
        write_json(jobdir / "request.json", request)
        endpoint = jobdir / "endpoint.json"
        endpoint.touch(mode=0o600)
        endpoint.write_text(json.dumps(dataclasses.asdict(self.endpoint)))
        status = {
            **{k: v for k, v in request.items() if k != "Environment"},
            "ProcessingJobArn": arn,
            "ProcessingJobStatus": "InProgress",
            "CreationTime": now_iso(),
            "LastModifiedTime": now_iso(),
            "Phase": "Starting",
        }
        write_json(jobdir / "status.json", status)
        pid = spawn_detached("jupyter_remote.engines.local_processing", jobdir)
        handle.data.update(jobdir=str(jobdir), pid=pid, arn=arn)
        return handle

    def describe(self, handle: JobHandle) -> JobStatus:
        """Read status.json; a dead supervisor with a live status means the job failed."""
        if handle.kind == S3BATCH:
            return local_s3batch.describe(self, handle)
        jobdir = self.jobdir(handle)
        try:
            raw = json.loads((jobdir / "status.json").read_text())
        except FileNotFoundError:
            return JobStatus("Failed", True, False, reason=f"no local job folder {jobdir}")
        state = raw["ProcessingJobStatus"]
        pid = handle.data.get("pid")
        if state not in TERMINAL and pid and not pid_alive(pid):
            # Re-read: the supervisor may have finished between the two reads.
            raw = json.loads((jobdir / "status.json").read_text())
            state = raw["ProcessingJobStatus"]
            if state not in TERMINAL:
                raw.update(
                    ProcessingJobStatus="Failed",
                    FailureReason="InternalServerError: the local engine's supervisor exited "
                    f"unexpectedly; see {jobdir / 'supervisor.log'}",
                )
                write_json(jobdir / "status.json", raw)
                state = "Failed"
        return JobStatus(
            state=state,
            terminal=state in TERMINAL,
            succeeded=state == "Completed",
            reason=raw.get("FailureReason", ""),
            exit_message=raw.get("ExitMessage", ""),
            phase=raw.get("Phase", ""),
            raw=raw,
        )

    def stop(self, handle: JobHandle) -> None:
        """Ask the supervisor to stop the containers (SIGTERM, grace, SIGKILL)."""
        if handle.kind == S3BATCH:
            return local_s3batch.stop(self, handle)
        (self.jobdir(handle) / STOP_FILE).touch()

    def logs(self, handle: JobHandle, cursors: dict[str, int] | None = None) -> list[LogTail]:
        """One tail per instance log, ``algo-1`` first."""
        if handle.kind == S3BATCH:
            return local_s3batch.logs(self, handle, cursors)
        cursors = cursors or {}
        count = handle.data.get("instance_count", 1)
        logs = self.jobdir(handle) / "logs"
        return [
            LogTail(f"algo-{i}", logs / f"algo-{i}.log", cursors.get(f"algo-{i}", 0))
            for i in range(1, count + 1)
        ]
