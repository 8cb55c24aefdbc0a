"""The ``sagemaker`` engine: the request the local engine executes, sent to SageMaker Processing.

``CreateProcessingJob`` with the prepared request (contract section B.2), ``DescribeProcessingJob``
mapped to :class:`JobStatus`, ``StopProcessingJob``, and CloudWatch log tails (section D). Every
client comes from :func:`jupyter_remote.storage.make_client`, so boto3's own configuration
applies untouched: profiles, regions and the ``AWS_ENDPOINT_URL*`` variables (moto in tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from ..storage import make_client
from .aws_calls import call_with_backoff, error_code, error_message, is_throttling, jsonable
from .base import PROCESSING, Engine, JobHandle, JobStatus
from .cloudwatch import PROCESSING_LOG_GROUP, CloudWatchLogTail, LogStreamFinder
from .iam import retry_while_role_propagates

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
_CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def console_links(region: str, job_name: str, partition: str = "aws") -> dict[str, str]:
    """AWS console URLs of the job and of its log streams."""
    host = f"https://{region}.{_CONSOLE_HOSTS.get(partition, _CONSOLE_HOSTS['aws'])}"
    group = PROCESSING_LOG_GROUP.replace("/", "$252F")
    return {
        "job": f"{host}/sagemaker/home?region={region}#/processing-jobs/{job_name}",
        "logs": f"{host}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{group}"
        f"$3FlogStreamNameFilter$3D{job_name}$252F",
    }


class SageMakerEngine(Engine):
    """Runs processing jobs on Amazon SageMaker Processing."""

    name = "sagemaker"
    kinds = frozenset({PROCESSING})

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        log_poll_interval: float = 2.0,
        stream_discovery_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sleep = sleep
        self.clock = clock
        self.log_poll_interval = log_poll_interval
        self.stream_discovery_interval = stream_discovery_interval
        self._clients: dict[str, Any] = {}
        self._last_status: dict[str, JobStatus] = {}

    def client(self, service: str) -> Any:
        """The boto3 client of this engine for ``service`` (created once, on first use)."""
        if service not in self._clients:
            self._clients[service] = make_client(self.endpoint, service)
        return self._clients[service]

    @property
    def sagemaker(self) -> Any:
        """The SageMaker client."""
        return self.client("sagemaker")

    @property
    def logs_client(self) -> Any:
        """The CloudWatch Logs client."""
        return self.client("logs")

    # -- submit -----------------------------------------------------------------------------------
    def _submit(self, handle: JobHandle, request: dict[str, Any]) -> JobHandle:
        from botocore.exceptions import ClientError

        def create() -> dict[str, Any]:
            return self.sagemaker.create_processing_job(**request)

        try:
            if handle.data.get("role_fresh"):
                response = retry_while_role_propagates(create, sleep=self.sleep)
            else:
                response = create()
        except ClientError as exc:
            response = self._adopt_if_ours(exc, handle.job_id, request)
        arn = response["ProcessingJobArn"]
        partition = arn.split(":")[1] if arn.startswith("arn:") else "aws"
        region = self.endpoint.region or self.sagemaker.meta.region_name
        handle.data.update(
            arn=arn,
            region=region,
            log_group=PROCESSING_LOG_GROUP,
            links=console_links(region, handle.job_id, partition),
        )
        return handle

    def _adopt_if_ours(
        self, exc: BaseException, job_name: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        """A retried create whose first attempt went through reports the name as in use."""
        if error_code(exc) == "ResourceInUse":
            existing = self.sagemaker.describe_processing_job(ProcessingJobName=job_name)
            if (
                existing.get("RoleArn") == request["RoleArn"]
                and existing.get("AppSpecification") == request["AppSpecification"]
            ):
                return {"ProcessingJobArn": existing["ProcessingJobArn"]}
        if error_code(exc) == "ValidationException":
            raise ConfigurationError(f"SageMaker rejected the job: {error_message(exc)}") from exc
        raise exc

    # -- status -----------------------------------------------------------------------------------
    def describe(self, handle: JobHandle) -> JobStatus:
        """DescribeProcessingJob as a JobStatus.

        Throttling backs off and, if it persists, reports the last known status, so the watcher
        keeps watching instead of failing.
        """
        from botocore.exceptions import ClientError

        def call() -> dict[str, Any]:
            return self.sagemaker.describe_processing_job(ProcessingJobName=handle.job_id)

        try:
            raw = call_with_backoff(call, sleep=self.sleep)
        except ClientError as exc:
            if is_throttling(exc):
                last = self._last_status.get(handle.job_id)
                return last or JobStatus("InProgress", phase="throttled by AWS")
            if error_code(exc) == "ValidationException" and "find" in error_message(exc).lower():
                return JobStatus(
                    "Failed",
                    terminal=True,
                    reason=f"SageMaker has no processing job {handle.job_id} in "
                    f"{self.endpoint.region or 'this region'}: {error_message(exc)}",
                )
            raise
        state = raw["ProcessingJobStatus"]
        if state == "InProgress":
            phase = "Running" if raw.get("ProcessingStartTime") else "Starting"
        else:
            phase = "Stopping" if state == "Stopping" else ""
        status = JobStatus(
            state=state,
            terminal=state in TERMINAL,
            succeeded=state == "Completed",
            reason=raw.get("FailureReason", ""),
            exit_message=raw.get("ExitMessage", ""),
            phase=phase,
            raw=jsonable(raw),
        )
        self._last_status[handle.job_id] = status
        return status

    def stop(self, handle: JobHandle) -> None:
        """StopProcessingJob (the job moves to Stopping, then Stopped); a finished job is left."""
        from botocore.exceptions import ClientError

        try:
            self.sagemaker.stop_processing_job(ProcessingJobName=handle.job_id)
        except ClientError as exc:
            if error_code(exc) == "ValidationException" and self.describe(handle).terminal:
                return
            raise

    # -- logs -------------------------------------------------------------------------------------
    def logs(  # type: ignore[override]
        self, handle: JobHandle, cursors: dict[str, Any] | None = None
    ) -> list[CloudWatchLogTail]:
        """One CloudWatch tail per instance (``algo-1`` ... ``algo-N``), resuming at ``cursors``."""
        cursors = cursors or {}
        finder = LogStreamFinder(
            self.logs_client,
            handle.job_id,
            interval=self.stream_discovery_interval,
            clock=self.clock,
        )
        count = int(handle.data.get("instance_count", 1))
        tails = []
        for i in range(1, count + 1):
            cursor = cursors.get(f"algo-{i}")
            tails.append(
                CloudWatchLogTail(
                    f"algo-{i}",
                    logs=self.logs_client,
                    finder=finder,
                    cursor=cursor if isinstance(cursor, str) else None,
                    min_interval=self.log_poll_interval,
                    clock=self.clock,
                    sleep=self.sleep,
                )
            )
        return tails
