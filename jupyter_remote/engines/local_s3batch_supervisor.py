"""The supervisor of one local S3 Batch job: the lifecycle around the tasks.

Run (through :mod:`.local_s3batch`) as ``python -m jupyter_remote.engines.local_s3batch JOBDIR``,
in its own session so the job outlives the kernel. JOBDIR holds ``request.json`` (the exact
CreateJob request), ``endpoint.json`` (where S3 is) and ``function.json`` (the CreateFunction
request of the Lambda package, the package hash and the pool size); this process keeps
``status.json`` a DescribeJob ``Job`` document (``Status``, ``ProgressSummary``,
``FailureReasons``...) and the function's log in ``logs/lambda.log``. The lifecycle is
aws-contracts.md A.5 and A.9: New → Preparing → (Suspended until confirmed) → Ready → Active →
Complete | Failed | Cancelled, through Completing, Failing or Cancelling.

Where the contract is UNCONFIRMED, each choice is marked ``EMULATOR CHOICE (aws-contracts.md E.n)``
where it is made.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any

from ..s3batch_manifest import count_rows, iter_lines
from ..s3batch_report import ReportWriter, publish
from ..spec.s3batch import MANIFEST_CSV, bucket_from_arn, parse_object_arn
from ..storage import Endpoint, make_client
from .lambda_pool import LambdaPool, lambda_environment
from .local_processing import STOP_FILE, now_iso, write_json
from .local_s3batch_queue import CONFIRM_FILE, JobQueue, wait_for_file
from .local_s3batch_tasks import STATUS_INTERVAL, TaskRunner

SUSPENDED_LIMIT = 30 * 86400  # documented: a job Suspended for more than 30 days fails
UNCONFIRMED_CAUSE = (
    "The job was created with ConfirmationRequired; it waits for UpdateJobStatus Ready"
)


class JobFailure(Exception):
    """A job-level failure: becomes a ``FailureReasons`` entry and the job ends Failed."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class Supervisor:
    """Runs one S3 Batch job from its JOBDIR."""

    def __init__(self, jobdir: Path) -> None:
        self.jobdir = jobdir
        self.request = json.loads((jobdir / "request.json").read_text())
        self.endpoint = Endpoint(**json.loads((jobdir / "endpoint.json").read_text()))
        self.function = json.loads((jobdir / "function.json").read_text())
        self.status: dict[str, Any] = json.loads((jobdir / "status.json").read_text())
        self.client = make_client(self.endpoint)
        self.job_id: str = self.status["JobId"]
        self.invoke = (self.request.get("Operation") or {}).get("LambdaInvoke") or {}
        self.active_since: float | None = None
        self.active_before = 0.0
        self._last_write = 0.0
        (jobdir / "logs").mkdir(exist_ok=True)
        scope = (self.request.get("Report") or {}).get("ReportScope", "AllTasks")
        self.report = ReportWriter(jobdir / "report", scope)
        self.tasks = TaskRunner(job_id=self.job_id, request=self.request, report=self.report)

    # -- status -------------------------------------------------------------------------------
    def progress(self) -> dict[str, Any]:
        """The live ProgressSummary."""
        elapsed = self.active_before
        if self.active_since is not None:
            elapsed += time.monotonic() - self.active_since
        summary = dict(self.status.get("ProgressSummary") or {})
        summary.update(
            NumberOfTasksSucceeded=self.tasks.succeeded,
            NumberOfTasksFailed=self.tasks.failed,
            Timers={"ElapsedTimeInActiveSeconds": int(elapsed)},
        )
        return summary

    def set_status(self, **fields: Any) -> None:
        """Merge ``fields`` (and the live counters) into status.json."""
        self.status.update(fields)
        self.status["ProgressSummary"] = self.progress()
        write_json(self.jobdir / "status.json", self.status)
        self._last_write = time.monotonic()

    def tick(self) -> None:
        """Keep status.json's counters live (every STATUS_INTERVAL seconds)."""
        if time.monotonic() - self._last_write >= STATUS_INTERVAL:
            self.set_status()

    def stop_requested(self) -> bool:
        """Whether UpdateJobStatus(Cancelled) was asked for."""
        return (self.jobdir / STOP_FILE).exists()

    # -- preparing ----------------------------------------------------------------------------
    def manifest_body(self) -> Any:
        """Open the manifest object, checking its ETag against the request's."""
        from botocore.exceptions import ClientError

        location = self.request["Manifest"]["Location"]
        uri = parse_object_arn(location["ObjectArn"])
        kwargs: dict[str, Any] = {"Bucket": uri.bucket, "Key": uri.key}
        if location.get("ObjectVersionId"):
            kwargs["VersionId"] = location["ObjectVersionId"]
        try:
            response = self.client.get_object(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            # EMULATOR CHOICE (aws-contracts.md E.3): FailureCode strings.
            if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound", "NoSuchVersion"):
                raise JobFailure("ManifestNotFound", f"the manifest {uri} does not exist") from exc
            raise JobFailure(
                code or "AccessDenied", f"cannot read the manifest {uri}: {exc}"
            ) from exc
        # EMULATOR CHOICE (aws-contracts.md E.7): quotes stripped on both sides, then compared.
        actual, expected = response["ETag"].strip('"'), location["ETag"].strip('"')
        if actual != expected:
            response["Body"].close()
            raise JobFailure(
                "ManifestETagMismatch",
                f"the manifest's ETag is {actual}, the job expected {expected}: it changed after "
                "the job was created",
            )
        return response["Body"]

    @property
    def generated(self) -> Path | None:
        """Where a ManifestGenerator job keeps its generated rows (None for a Manifest job)."""
        return self.jobdir / "generated.csv" if "ManifestGenerator" in self.request else None

    def open_manifest(self) -> Any:
        """The manifest's rows as a byte stream: the generated list, or the manifest object."""
        if self.generated is not None:
            return open(self.generated, "rb")
        return self.manifest_body()

    def check_request(self) -> None:
        """Refuse what the local engine cannot run, as a job failure with the reason."""
        if not self.invoke:
            raise JobFailure("UnsupportedOperation", "the local engine runs LambdaInvoke jobs only")
        fmt = (self.request.get("Manifest") or {}).get("Spec", {}).get("Format", MANIFEST_CSV)
        if fmt != MANIFEST_CSV:
            raise JobFailure(
                "UnsupportedManifest", f"the local engine reads {MANIFEST_CSV} manifests, not {fmt}"
            )
        name = self.invoke["FunctionArn"].split(":function:", 1)[-1].split(":", 1)[0]
        if name != self.function["config"]["FunctionName"]:
            raise JobFailure(
                "FunctionNotFound", f"Function not found: {self.invoke['FunctionArn']}"
            )

    def task_root(self) -> Path:
        """The function's unpacked package (Lambda's /var/task), cached by package hash."""
        from ..paths import data_dir

        code = self.function["config"]["Code"]
        sha = self.function["package_sha256"]
        root = data_dir() / "local-lambda" / sha
        if root.is_dir():
            return root
        root.parent.mkdir(parents=True, exist_ok=True)
        zip_path = self.jobdir / "package.zip"
        self.client.download_file(code["S3Bucket"], code["S3Key"], str(zip_path))
        tmp = root.with_name(f".{sha}.{os.getpid()}")
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)
        try:
            os.replace(tmp, root)
        except OSError:  # another job unpacked the same package first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        zip_path.unlink()
        return root

    def pool(self, root: Path) -> LambdaPool:
        """The worker pool, each worker with the environment a Lambda function sees."""
        config = self.function["config"]
        env = dict(os.environ)
        env.update(self.endpoint.job_env)
        if self.endpoint.url:
            env["AWS_ENDPOINT_URL_S3"] = self.endpoint.url
        env.update(
            lambda_environment(
                config,
                task_root=root,
                invoked_arn=self.request["Operation"]["LambdaInvoke"]["FunctionArn"],
                stream=f"local/{self.job_id}",
            )
        )
        return LambdaPool(
            size=int(self.function.get("concurrency", 4)),
            task_root=root,
            handler=config["Handler"],
            env=env,
            log_path=self.jobdir / "logs" / "lambda.log",
            timeout=float(config.get("Timeout", 3)),
        )

    # -- lifecycle ----------------------------------------------------------------------------
    def prepare(self) -> int:
        """Preparing: check the request, read (or generate) the manifest, count the tasks."""
        self.check_request()
        if self.generated is not None:
            return self.generate(self.generated)
        body = self.manifest_body()
        try:
            return count_rows(iter_lines(body))
        finally:
            body.close()

    def generate(self, dest: Path) -> int:
        """Run the ManifestGenerator into ``dest``; publish it when asked; the task count."""
        from ..s3batch_generator import GeneratorError, generate, publish_generated

        generator = self.request["ManifestGenerator"]
        try:
            count = generate(self.client, generator, dest)
            descriptor = publish_generated(self.client, generator, dest, job_id=self.job_id)
        except GeneratorError as exc:
            raise JobFailure(exc.code, exc.reason) from exc
        if descriptor:
            self.set_status(GeneratedManifestDescriptor=descriptor)
        return count

    def await_confirmation(self) -> bool:
        """Suspended until UpdateJobStatus(Ready); False when cancelled instead."""
        self.set_status(
            Status="Suspended", SuspendedDate=now_iso(), SuspendedCause=UNCONFIRMED_CAUSE
        )
        found = wait_for_file(self.jobdir, (CONFIRM_FILE, STOP_FILE), limit=SUSPENDED_LIMIT)
        if found is None:
            raise JobFailure(
                "ConfirmationTimeout", "the job stayed Suspended for more than 30 days"
            )
        return found == CONFIRM_FILE

    def finish(self, state: str, failure: JobFailure | None = None) -> None:
        """Go through Completing/Failing/Cancelling, write the report, end in ``state``."""
        passing = {"Complete": "Completing", "Failed": "Failing", "Cancelled": "Cancelling"}[state]
        if self.active_since is not None:
            self.active_before += time.monotonic() - self.active_since
            self.active_since = None
        fields: dict[str, Any] = {}
        if failure is not None:
            fields["FailureReasons"] = [
                {"FailureCode": failure.code[:64], "FailureReason": failure.reason[:256]}
            ]
        self.set_status(Status=passing, **fields)
        files = self.report.close()
        report = self.request.get("Report") or {}
        # Written for Complete, Failed and Cancelled jobs once a task has run (A.5).
        if report.get("Enabled") and self.tasks.succeeded + self.tasks.failed > 0:
            bucket = bucket_from_arn(report["Bucket"])
            publish(
                self.client,
                files,
                bucket=bucket,
                prefix=report.get("Prefix", ""),
                job_id=self.job_id,
            )
        self.set_status(Status=state, TerminationDate=now_iso())

    def active(self) -> str:
        """Active: run every task; return Complete, Failed (threshold) or Cancelled."""
        pool = self.pool(self.task_root())
        try:
            body = self.open_manifest()  # read again, streamed; an object's ETag again checked
            try:
                state = self.tasks.run(
                    iter_lines(body), pool, cancelled=self.stop_requested, tick=self.tick
                )
            finally:
                body.close()
            if state != "Complete":
                # EMULATOR CHOICE (aws-contracts.md A.5): on Cancelling/Failing the invocations
                # in flight are abandoned (workers killed), not reported.
                pool.abandon()
            return state
        finally:
            pool.close()

    def run(self) -> None:
        """Run the job to a terminal status."""
        self.set_status(Status="Preparing")
        try:
            total = self.prepare()
        except JobFailure as failure:
            self.finish("Failed", failure)
            return
        summary = dict(self.status["ProgressSummary"], TotalNumberOfTasks=total)
        self.set_status(ProgressSummary=summary)
        # EMULATOR CHOICE (aws-contracts.md E.5): an absent ConfirmationRequired means false.
        if self.stop_requested() or (
            self.request.get("ConfirmationRequired") and not self.await_confirmation()
        ):
            self.finish("Cancelled")
            return
        self.set_status(Status="Ready")
        with JobQueue(self.job_id, int(self.request.get("Priority", 0))) as queue:
            if not queue.wait_turn(self.stop_requested):
                self.finish("Cancelled")
                return
            self.active_since = time.monotonic()
            self.set_status(Status="Active")
            try:
                state = self.active()
            except JobFailure as failure:  # the manifest changed since Preparing, say
                self.finish("Failed", failure)
                return
        failure = None
        if state == "Failed":
            run = self.tasks.succeeded + self.tasks.failed
            # EMULATOR CHOICE (aws-contracts.md E.3): the threshold failure's code and text.
            failure = JobFailure(
                "TaskFailureThresholdExceeded",
                f"{self.tasks.failed} of the {run} tasks run so far failed: more than 50 % "
                "after at least 1,000 tasks; the job was stopped",
            )
        self.finish(state, failure)


def main(argv: list[str]) -> int:
    """Entry point: run the job in ``argv[1]``; always leave a terminal status behind."""
    jobdir = Path(argv[1])
    try:
        supervisor = Supervisor(jobdir)
        supervisor.run()
    except Exception as exc:
        traceback.print_exc()
        status = json.loads((jobdir / "status.json").read_text())
        status.update(
            Status="Failed",
            FailureReasons=[
                {
                    "FailureCode": "InternalError",
                    "FailureReason": f"the local engine failed: {type(exc).__name__}: {exc}"[:256],
                }
            ],
            TerminationDate=now_iso(),
        )
        write_json(jobdir / "status.json", status)
        return 1
    return 0
