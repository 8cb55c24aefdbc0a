"""The ``s3batch`` engine: the local engine's CreateJob request, run by S3 Batch Operations on AWS.

Submit (contract A, C): IAM roles (:mod:`.s3batch_iam`), the Lambda package deployed by content
hash (:mod:`.lambda_deploy`), the manifest's ETag from ``HeadObject``, then ``CreateJob`` with
the version ARN and a ``ClientRequestToken`` derived from the job, so a retried submit is the
same job. Monitor: ``DescribeJob`` (throttling backs off), ``UpdateJobStatus`` to cancel or
confirm, ``UpdateJobPriority``, and the function's CloudWatch log filtered for errors. The
report is read by :class:`~jupyter_remote.s3batch_job.S3BatchJob` as for the local engine.

Every client comes from :func:`jupyter_remote.storage.make_client`, so boto3's configuration
applies: ``AWS_ENDPOINT_URL_S3_CONTROL`` points S3 Control elsewhere (the local endpoint of
:mod:`.s3control_server` in tests), in which case the account-id host prefix is stripped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ..s3uri import S3Uri
from ..storage import make_client
from .aws_calls import (
    call_with_backoff,
    caller_identity,
    error_code,
    error_message,
    is_throttling,
    jsonable,
)
from .base import S3BATCH, Engine, JobHandle, JobStatus
from .local import LOCAL_ROLE_ARN
from .s3batch_logs import LambdaErrorTail

_ACCOUNT_HOSTS = ("amazonaws.com", "amazonaws.com.cn", "api.aws")


def strip_account_prefix(request: Any, **_: Any) -> None:
    """``before-sign`` handler: drop ``{AccountId}.`` from a non-AWS S3 Control host.

    boto3 prepends the account to the host (the model's hostPrefix) even for an ``endpoint_url``;
    a loopback server has no such names (s3-endpoints.md).
    """
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    if host.endswith(_ACCOUNT_HOSTS):
        return
    label, _, rest = parts.netloc.partition(".")
    if label.isdigit() and len(label) == 12 and rest:
        request.url = parts._replace(netloc=rest).geturl()


class _Sources(NamedTuple):
    """Where a CreateJob request's objects come from, for the roles' policies."""

    manifest: S3Uri | None  # the manifest object (a Manifest job)
    listed: str | None  # the bucket a ManifestGenerator lists
    generated: str | None  # bucket/prefix where the generated list is written

    @property
    def bucket(self) -> str:
        """The bucket the manifest or the generator names."""
        return self.manifest.bucket if self.manifest else str(self.listed)

    @property
    def manifest_path(self) -> str | None:
        """``bucket/key`` of the manifest object, if there is one."""
        return f"{self.manifest.bucket}/{self.manifest.key}" if self.manifest else None


def _sources(request: dict[str, Any]) -> _Sources:
    from ..spec.s3batch import bucket_from_arn

    if "Manifest" in request:
        arn = request["Manifest"]["Location"]["ObjectArn"]
        return _Sources(S3Uri.parse("s3://" + arn.split(":::", 1)[1]), None, None)
    generator = request["ManifestGenerator"]["S3JobManifestGenerator"]
    output = generator.get("ManifestOutputLocation") if generator["EnableManifestOutput"] else None
    generated = None
    if output:
        generated = f"{bucket_from_arn(output['Bucket'])}/{output.get('ManifestPrefix', '')}"
    return _Sources(None, bucket_from_arn(generator["SourceBucket"]), generated)


class S3BatchEngine(Engine):
    """Runs %%s3batch jobs on S3 Batch Operations and AWS Lambda."""

    name = "s3batch"
    kinds = frozenset({S3BATCH})

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        log_poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sleep = sleep
        self.log_poll_interval = log_poll_interval
        self._clients: dict[str, Any] = {}
        self._last_status: dict[str, JobStatus] = {}

    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (S3 Control with its host fix when not AWS)."""
        if service not in self._clients:
            client = make_client(self.endpoint, service)
            if service == "s3control":
                client.meta.events.register(
                    "before-sign.s3-control.*",
                    strip_account_prefix,
                    unique_id="jupyter-remote-strip-account",
                )
            self._clients[service] = client
        return self._clients[service]

    # -- submit -----------------------------------------------------------------------------------
    def _submit(self, handle: JobHandle, request: dict[str, Any]) -> JobHandle:
        from .lambda_deploy import deploy

        identity = caller_identity(self.client("sts"))
        account, partition = identity.account, identity.partition
        region = self.endpoint.region or self.client("lambda").meta.region_name
        function = dict(handle.data["function"])
        job_role_fresh = False
        lambda_role_fresh = False
        sources = _sources(request)
        report = request["Report"]
        report_bucket = report["Bucket"].split(":::", 1)[-1]
        if function.get("Role") in (None, "", LOCAL_ROLE_ARN):
            from .s3batch_iam import LAMBDA_PRINCIPAL, LAMBDA_ROLE, ensure_role, lambda_statements

            buckets = {sources.bucket, report_bucket, *handle.data.get("buckets", [])}
            function["Role"], lambda_role_fresh = ensure_role(
                self.client("iam"),
                role_name=LAMBDA_ROLE,
                principal=LAMBDA_PRINCIPAL,
                statements=lambda_statements(
                    buckets, partition=partition, region=region, account=account
                ),
                account=account,
                partition=partition,
                description="Runs jupyter-remote %%s3batch functions (created on first use)",
            )
        code = function["Code"]
        zip_bytes = self.storage.client.get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])[
            "Body"
        ].read()
        deployed = deploy(
            self.client("lambda"),
            function,
            zip_bytes,
            sleep=self.sleep,
            role_fresh=lambda_role_fresh,
        )
        job = dict(request, AccountId=account)
        job["Operation"] = {
            "LambdaInvoke": dict(
                request["Operation"]["LambdaInvoke"], FunctionArn=deployed.version_arn
            )
        }
        if sources.manifest is not None:
            uri, location = sources.manifest, request["Manifest"]["Location"]
            head = self.storage.client.head_object(Bucket=uri.bucket, Key=uri.key)
            job["Manifest"] = dict(
                request["Manifest"], Location=dict(location, ETag=head["ETag"].strip('"'))
            )
        if request.get("RoleArn") in (None, "", LOCAL_ROLE_ARN):
            from .s3batch_iam import BATCH_PRINCIPAL, BATCH_ROLE, batch_statements, ensure_role

            job["RoleArn"], job_role_fresh = ensure_role(
                self.client("iam"),
                role_name=BATCH_ROLE,
                principal=BATCH_PRINCIPAL,
                statements=batch_statements(
                    function_arn=deployed.version_arn,
                    manifest=sources.manifest_path,
                    source_bucket=sources.listed,
                    generated_prefix=sources.generated,
                    report_bucket=report_bucket,
                    report_prefix=report.get("Prefix", ""),
                    partition=partition,
                ),
                account=account,
                partition=partition,
                description="Runs jupyter-remote %%s3batch jobs (created on first use)",
            )
        # Same job, same token: a submit retried after a lost reply returns the same JobId.
        job["ClientRequestToken"] = handle.job_id
        aws_id = self._create_job(job, fresh=job_role_fresh)
        handle.data.update(
            aws_job_id=aws_id,
            account=account,
            region=region,
            function_name=deployed.name,
            function_arn=deployed.version_arn,
            function_created=deployed.created,
            role_arn=job["RoleArn"],
            lambda_role_arn=function["Role"],
            log_group=f"/aws/lambda/{deployed.name}",
            arn=f"arn:{partition}:s3:{region}:{account}:job/{aws_id}",
            create_job=jsonable(job),
        )
        return handle

    def _create_job(self, job: dict[str, Any], *, fresh: bool) -> str:
        from botocore.exceptions import ClientError

        from .iam import PROPAGATION_DELAYS

        delays = list(PROPAGATION_DELAYS) if fresh else []
        while True:
            try:
                return call_with_backoff(
                    lambda: self.client("s3control").create_job(**job), sleep=self.sleep
                )["JobId"]
            except ClientError as exc:
                # A fresh role may not be assumable yet: S3 answers AccessDenied/BadRequest.
                if not delays or error_code(exc) not in ("AccessDenied", "BadRequestException"):
                    raise
                if "role" not in error_message(exc).lower():
                    raise
                self.sleep(delays.pop(0))

    # -- status -----------------------------------------------------------------------------------
    def _job_args(self, handle: JobHandle) -> dict[str, str]:
        return {"AccountId": handle.data["account"], "JobId": handle.data["aws_job_id"]}

    def describe(self, handle: JobHandle) -> JobStatus:
        """DescribeJob as a JobStatus; persistent throttling reports the last known status."""
        from botocore.exceptions import ClientError

        from .local_s3batch import status_from_job

        try:
            raw = call_with_backoff(
                lambda: self.client("s3control").describe_job(**self._job_args(handle)),
                sleep=self.sleep,
            )
        except ClientError as exc:
            if is_throttling(exc):
                last = self._last_status.get(handle.job_id)
                return last or JobStatus("Active", phase="throttled by AWS")
            if error_code(exc) in ("NotFoundException", "NoSuchJob", "NoSuchJobException"):
                return JobStatus("Failed", True, False, reason=f"no such job: {error_message(exc)}")
            raise
        status = status_from_job(jsonable(raw["Job"]))
        self._last_status[handle.job_id] = status
        return status

    def _update_status(self, handle: JobHandle, requested: str, reason: str) -> dict[str, Any]:
        return self.client("s3control").update_job_status(
            **self._job_args(handle), RequestedJobStatus=requested, StatusUpdateReason=reason
        )

    def stop(self, handle: JobHandle) -> None:
        """UpdateJobStatus(Cancelled); a job that already ended is left as it is."""
        from botocore.exceptions import ClientError

        try:
            self._update_status(handle, "Cancelled", "cancelled from jupyter-remote")
        except ClientError as exc:
            if error_code(exc) == "JobStatusException" and self.describe(handle).terminal:
                return
            raise

    def confirm(self, handle: JobHandle) -> None:
        """UpdateJobStatus(Ready) for a job created with ConfirmationRequired."""
        from botocore.exceptions import ClientError

        from ..errors import JupyterRemoteError

        try:
            self._update_status(handle, "Ready", "confirmed from jupyter-remote")
        except ClientError as exc:
            if error_code(exc) == "JobStatusException":
                raise JupyterRemoteError(f"cannot confirm: {error_message(exc)}") from exc
            raise

    def priority(self, handle: JobHandle, priority: int) -> int:
        """UpdateJobPriority; returns the priority S3 reports."""
        response = self.client("s3control").update_job_priority(
            **self._job_args(handle), Priority=priority
        )
        return int(response["Priority"])

    # -- logs -------------------------------------------------------------------------------------
    def logs(  # type: ignore[override]
        self, handle: JobHandle, cursors: dict[str, Any] | None = None
    ) -> list[LambdaErrorTail]:
        """The function's error lines (CloudWatch FilterLogEvents), resuming at ``cursors``."""
        cursor = (cursors or {}).get("lambda")
        return [
            LambdaErrorTail(
                self.client("logs"),
                handle.data.get("log_group", ""),
                cursor=cursor if isinstance(cursor, int) else None,
                min_interval=self.log_poll_interval,
            )
        ]
