"""The local S3 Batch engine served as an S3 Control endpoint (the job operations) on 127.0.0.1.

moto has no S3 Control jobs (s3-endpoints.md), so this serves CreateJob, DescribeJob, ListJobs,
UpdateJobPriority, UpdateJobStatus and Get/Put/DeleteJobTagging over HTTP in rest-xml exactly as
boto3 sends them (aws-contracts.md A.1-A.5). What it knows of each job is kept in a JSON file per
job (``<state_dir>/<JobId>.json``), so a restarted endpoint still describes, lists, cancels and
deduplicates the jobs it created; the jobs themselves run in detached supervisors either way. A job
runs on the local S3 Batch machinery (:func:`.local_s3batch.submit` and its supervisor); the
function's code is whatever the Lambda endpoint returns for ``GetFunction`` (its
``Code.Location``), so any S3 Batch tool, and the ``s3batch`` engine unchanged, can be pointed at
it.

Not a security boundary: requests are not signature-checked, which is why it binds to loopback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..storage import Endpoint, make_client
from . import local_s3batch
from . import s3control_xml as xml
from .base import JobHandle
from .lambda_deploy import CODE_TAG, code_sha256

_ACCOUNT = re.compile(r"^\d{12}$")
_JOB_PATH = re.compile(r"^/v20180820/jobs/([^/]+)(?:/(priority|status|tagging))?$")
LIST_DAYS = 90  # finished jobs ListJobs still shows (s3ug/batch-ops-list-jobs.md)
_NON_TERMINAL = {"New", "Preparing", "Suspended", "Ready", "Active", "Paused", "Pausing"}
# EMULATOR CHOICE: the model gives no HTTP status codes for these errors (aws-contracts.md A.1).
_STATUS = {
    "BadRequestException": 400,
    "InvalidRequestException": 400,
    "InvalidNextTokenException": 400,
    "NotFoundException": 404,
    "IdempotencyException": 409,
    "JobStatusException": 409,
    "TooManyRequestsException": 429,
    "InternalServiceException": 500,
}


class S3ControlError(Exception):
    """An error response: one of the model's exception codes and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class S3ControlBackend:
    """The job operations, on local S3 Batch jobs (thread-safe; one JSON file per job)."""

    def __init__(
        self,
        *,
        endpoint: Endpoint,
        lambda_client: Any = None,
        logs_client: Any = None,
        concurrency: int = 4,
        state_dir: Path | None = None,
    ) -> None:
        from ..paths import data_dir

        self.endpoint = endpoint
        self.lambda_client = lambda_client or make_client(endpoint, "lambda")
        self.logs_client = logs_client or make_client(endpoint, "logs")
        self.concurrency = concurrency
        self.region = endpoint.region or "us-east-1"
        self.state_dir = state_dir or data_dir() / "s3control-endpoint"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._jobs: dict[str, JobHandle] = {}
        self._extra: dict[str, dict[str, Any]] = {}  # Priority / StatusUpdateReason overrides
        self._tags: dict[str, list[dict[str, str]]] = {}
        self._tokens: dict[tuple[str, str], tuple[str, str]] = {}
        self._engine = SimpleNamespace(endpoint=endpoint)
        self._load()

    # -- state ------------------------------------------------------------------------------------
    def _load(self) -> None:
        """Read back the jobs an earlier endpoint process created."""
        for path in sorted(self.state_dir.glob("*.json")):
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a file cut short by a crash: that job is forgotten, not the others
            job_id = state["handle"]["job_id"]
            self._jobs[job_id] = JobHandle.from_dict(state["handle"])
            self._extra[job_id] = state.get("extra", {})
            self._tags[job_id] = state.get("tags", [])
            account, token = state["token"]
            self._tokens[(account, token)] = (state["canonical"], job_id)

    def _save(self, job_id: str) -> None:
        """Write one job's state (atomically: a reader never sees half a file)."""
        from .local_processing import write_json

        token = next(key for key, (_, jid) in self._tokens.items() if jid == job_id)
        write_json(
            self.state_dir / f"{job_id}.json",
            {
                "handle": self._jobs[job_id].to_dict(),
                "extra": self._extra.get(job_id, {}),
                "tags": self._tags.get(job_id, []),
                "token": list(token),
                "canonical": self._tokens[token][0],
            },
        )

    # -- CreateJob --------------------------------------------------------------------------------
    def create_job(self, request: dict[str, Any]) -> str:
        """Validate, deduplicate by ClientRequestToken, fetch the function, start the job."""
        from ..errors import ConfigurationError
        from ..spec.validation import validate_with_botocore

        try:
            validate_with_botocore("s3control", "CreateJob", request)
        except ConfigurationError as exc:
            raise S3ControlError("BadRequestException", str(exc)[:1000]) from exc
        if "Manifest" in request and "ManifestGenerator" in request:
            raise S3ControlError(
                "BadRequestException", "Manifest and ManifestGenerator are mutually exclusive"
            )
        canonical = json.dumps(request, sort_keys=True)
        key = (request["AccountId"], request["ClientRequestToken"])
        with self._lock:
            seen = self._tokens.get(key)
            if seen is not None:
                # UNCONFIRMED (aws-contracts.md A.2): a replay returns the same job; the same
                # token with another request is an IdempotencyException.
                if seen[0] == canonical:
                    return seen[1]
                raise S3ControlError(
                    "IdempotencyException",
                    "ClientRequestToken was already used with different parameters",
                )
            invoke = (request.get("Operation") or {}).get("LambdaInvoke")
            if not invoke:
                raise S3ControlError(
                    "BadRequestException", "this endpoint runs LambdaInvoke jobs only"
                )
            config, sha = self._fetch_function(invoke["FunctionArn"])
            job_id = str(uuid.uuid4())
            handle = JobHandle(
                "local",
                "s3batch",
                job_id,
                {"function": config, "package_sha256": sha, "concurrency": self.concurrency},
            )
            local_s3batch.submit(self._engine, handle, request)
            self._jobs[job_id] = handle
            threading.Thread(
                target=self._forward_logs, args=(handle,), name=f"logs-{job_id}", daemon=True
            ).start()
            self._extra[job_id] = {}
            self._tags[job_id] = list(request.get("Tags") or [])
            self._tokens[key] = (canonical, job_id)
            self._save(job_id)
        return job_id

    def _fetch_function(self, arn: str) -> tuple[dict[str, Any], str]:
        """GetFunction → (the function's configuration, sha256 of its zip), zip unpacked."""
        from botocore.exceptions import ClientError

        try:
            response = self.lambda_client.get_function(FunctionName=arn)
        except ClientError as exc:
            # EMULATOR CHOICE: an unknown function is refused at CreateJob (AWS fails the job).
            raise S3ControlError("BadRequestException", f"Function not found: {arn}") from exc
        conf = response["Configuration"]
        if conf.get("Layers"):
            # Layers would be unpacked under /opt; their content is only reachable on AWS
            # (moto's Content.Location is not a URL), so such a function cannot run here.
            raise S3ControlError(
                "BadRequestException",
                f"{arn} uses Lambda layers, which this local endpoint cannot fetch or run",
            )
        data = self._function_zip(response)
        if data is None or code_sha256(data) != conf.get("CodeSha256"):
            raise S3ControlError(
                "BadRequestException", f"cannot fetch the code of {arn} (CodeSha256 differs)"
            )
        sha = hashlib.sha256(data).hexdigest()
        _unpack(data, sha)
        config = {
            "FunctionName": conf["FunctionName"],
            "Runtime": conf.get("Runtime", ""),
            "Handler": conf["Handler"],
            "Timeout": conf.get("Timeout", 3),
            "MemorySize": conf.get("MemorySize", 128),
            "EphemeralStorage": conf.get("EphemeralStorage") or {"Size": 512},
            "Environment": {"Variables": (conf.get("Environment") or {}).get("Variables", {})},
            # The supervisor finds the package unpacked by hash; this location is never read.
            "Code": {"S3Bucket": "", "S3Key": ""},
        }
        return config, sha

    def _function_zip(self, response: dict[str, Any]) -> bytes | None:
        """The function's zip: from its code tag's staged object, else ``Code.Location``.

        EMULATOR CHOICE: moto's ``Code.Location`` is not a fetchable URL (and an AWS one is only
        reachable on AWS), so the staged zip named by the function's ``jupyter-remote:code`` tag
        is tried first; the caller checks either against ``CodeSha256``.
        """
        from ..s3uri import S3Uri

        staged = (response.get("Tags") or {}).get(CODE_TAG)
        if staged:
            uri = S3Uri.parse(staged)
            client = make_client(self.endpoint)
            return client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()
        location = (response.get("Code") or {}).get("Location", "")
        if not location.startswith(("http://", "https://")):
            return None
        with urllib.request.urlopen(location, timeout=60) as reply:
            return reply.read()

    def _forward_logs(self, handle: JobHandle) -> None:
        """Copy the job's function log to CloudWatch ``/aws/lambda/<name>``, as Lambda would.

        Best effort: the job's outcome never depends on it, so a Logs failure ends the copy.
        """
        import time

        from .base import LogTail

        group = f"/aws/lambda/{handle.data['function']['FunctionName']}"
        stream = f"{time.strftime('%Y/%m/%d')}/[local]{handle.job_id}"
        tail = LogTail("lambda", Path(handle.data["jobdir"]) / "logs" / "lambda.log")
        try:
            for create in (
                lambda: self.logs_client.create_log_group(logGroupName=group),
                lambda: self.logs_client.create_log_stream(
                    logGroupName=group, logStreamName=stream
                ),
            ):
                with contextlib.suppress(
                    self.logs_client.exceptions.ResourceAlreadyExistsException
                ):
                    create()
            while True:
                done = local_s3batch.describe(self._engine, handle).terminal
                lines = [line for line in tail.read(final=done) if line]
                for start in range(0, len(lines), 1000):  # PutLogEvents' batch limit
                    now = int(time.time() * 1000)
                    self.logs_client.put_log_events(
                        logGroupName=group,
                        logStreamName=stream,
                        logEvents=[
                            {"timestamp": now, "message": line}
                            for line in lines[start : start + 1000]
                        ],
                    )
                if done:
                    return
                time.sleep(0.5)
        except Exception:
            return

    # -- reading ----------------------------------------------------------------------------------
    def _handle(self, job_id: str) -> JobHandle:
        handle = self._jobs.get(job_id)
        if handle is None:
            raise S3ControlError("NotFoundException", f"No such job: {job_id}")
        return handle

    def describe_job(self, job_id: str) -> dict[str, Any]:
        """DescribeJob's ``Job`` (the supervisor's status.json with our overrides)."""
        handle = self._handle(job_id)
        job = dict(local_s3batch.describe(self._engine, handle).raw)
        job.update(self._extra.get(job_id, {}))
        return job

    def list_jobs(
        self, statuses: list[str], token: str | None, max_results: int | None
    ) -> dict[str, Any]:
        """ListJobs, newest first (UNCONFIRMED order, aws-contracts.md A.4).

        Like AWS, it lists unfinished jobs and those that ended within the last 90 days
        (DescribeJob still finds older ones).
        """
        from datetime import datetime, timedelta, timezone

        cutoff = datetime.now(timezone.utc) - timedelta(days=LIST_DAYS)
        jobs = [
            job
            for job in (self.describe_job(job_id) for job_id in list(self._jobs))
            if not job.get("TerminationDate")
            or datetime.fromisoformat(str(job["TerminationDate"])) >= cutoff
        ]
        if statuses:
            jobs = [j for j in jobs if j["Status"] in statuses]
        jobs.sort(key=lambda j: j.get("CreationTime", ""), reverse=True)
        try:
            start = int(token or 0)
        except ValueError:
            raise S3ControlError("InvalidNextTokenException", "invalid NextToken") from None
        size = max_results if max_results else 1000
        page = jobs[start : start + size]
        result: dict[str, Any] = {
            "Jobs": [
                {
                    "JobId": j["JobId"],
                    "Description": j.get("Description"),
                    "Operation": "LambdaInvoke",
                    "Priority": j["Priority"],
                    "Status": j["Status"],
                    "CreationTime": j.get("CreationTime"),
                    "TerminationDate": j.get("TerminationDate"),
                    "ProgressSummary": j.get("ProgressSummary"),
                }
                for j in page
            ]
        }
        if start + size < len(jobs):
            result["NextToken"] = str(start + size)
        return result

    # -- updates ----------------------------------------------------------------------------------
    def update_priority(self, job_id: str, priority: int) -> dict[str, Any]:
        """UpdateJobPriority (recorded; the local engine runs jobs side by side anyway)."""
        self._handle(job_id)
        if not 0 <= priority <= 2_147_483_647:
            raise S3ControlError("BadRequestException", "Priority must be 0-2147483647")
        with self._lock:
            self._extra[job_id]["Priority"] = priority
            self._save(job_id)
        return {"JobId": job_id, "Priority": priority}

    def update_status(self, job_id: str, requested: str, reason: str | None) -> dict[str, Any]:
        """UpdateJobStatus: Ready only from Suspended, Cancelled from any non-terminal state."""
        handle = self._handle(job_id)
        state = self.describe_job(job_id)["Status"]
        if requested == "Ready" and state == "Suspended":
            local_s3batch.confirm(self._engine, handle)
            after = "Ready"
        elif requested == "Cancelled" and state in _NON_TERMINAL:
            local_s3batch.stop(self._engine, handle)
            after = "Cancelling"
        elif requested in ("Ready", "Cancelled"):
            # EMULATOR CHOICE (aws-contracts.md A.4): the allowed source states.
            raise S3ControlError(
                "JobStatusException", f"job {job_id} is {state}; cannot move it to {requested}"
            )
        else:
            raise S3ControlError("BadRequestException", f"bad requestedJobStatus {requested!r}")
        result = {"JobId": job_id, "Status": after}
        if reason:
            with self._lock:
                self._extra[job_id]["StatusUpdateReason"] = reason
                self._save(job_id)
            result["StatusUpdateReason"] = reason
        return result

    # -- tagging ----------------------------------------------------------------------------------
    def get_tags(self, job_id: str) -> dict[str, Any]:
        """GetJobTagging."""
        self._handle(job_id)
        return {"Tags": list(self._tags.get(job_id, []))}

    def put_tags(self, job_id: str, tags: list[dict[str, str]]) -> dict[str, Any]:
        """PutJobTagging: replaces the whole tag set (aws-contracts.md A.4)."""
        from ..errors import ConfigurationError
        from ..spec.s3batch import check_tags

        self._handle(job_id)
        try:
            check_tags((t["Key"], t.get("Value", "")) for t in tags)
        except ConfigurationError as exc:
            raise S3ControlError("InvalidRequestException", str(exc)[:1000]) from exc
        with self._lock:
            self._tags[job_id] = [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]
            self._save(job_id)
        return {}

    def delete_tags(self, job_id: str) -> dict[str, Any]:
        """DeleteJobTagging: removes every tag."""
        return self.put_tags(job_id, [])


def _unpack(data: bytes, sha: str) -> Path:
    """Unpack a function zip where the local supervisor looks for it (its task-root cache)."""
    import io
    import shutil

    from ..paths import data_dir

    root = data_dir() / "local-lambda" / sha
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp)
    try:
        os.replace(tmp, root)
    except OSError:  # unpacked meanwhile by another job
        shutil.rmtree(tmp, ignore_errors=True)
    return root


class _Handler(BaseHTTPRequestHandler):
    backend: S3ControlBackend
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test run must not print a line per poll."""

    def do_GET(self) -> None:
        """DescribeJob, ListJobs."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """CreateJob, UpdateJobPriority, UpdateJobStatus."""
        self._dispatch("POST")

    def do_PUT(self) -> None:
        """PutJobTagging."""
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        """DeleteJobTagging."""
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        request_id = uuid.uuid4().hex
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, payload = self._route(method, body)
        except S3ControlError as exc:
            status, payload = (
                _STATUS.get(exc.code, 400),
                xml.error_xml(exc.code, exc.message, request_id),
            )
        except Exception as exc:
            status = 500
            payload = xml.error_xml("InternalServiceException", repr(exc)[:500], request_id)
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amz-request-id", request_id)
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, method: str, body: bytes) -> tuple[int, bytes]:
        model = xml.service_model()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        account = self.headers.get("x-amz-account-id", "")
        if not _ACCOUNT.match(account):
            raise S3ControlError("BadRequestException", "x-amz-account-id must be 12 digits")
        backend = self.backend

        def reply(operation: str, value: dict[str, Any]) -> tuple[int, bytes]:
            shape = model.operation_model(operation).output_shape
            return 200, xml.to_xml(shape.name, value, shape)

        if parts.path == "/v20180820/jobs":
            if method == "POST":
                shape = model.operation_model("CreateJob").input_shape
                request = xml.parse_body(body, shape)
                request["AccountId"] = account
                return reply("CreateJob", {"JobId": backend.create_job(request)})
            max_results = query.get("maxResults", [""])[0]
            return reply(
                "ListJobs",
                backend.list_jobs(
                    query.get("jobStatuses", []),
                    query.get("nextToken", [None])[0],
                    int(max_results) if max_results else None,
                ),
            )
        match = _JOB_PATH.match(parts.path)
        if not match:
            raise S3ControlError("BadRequestException", f"unsupported path {parts.path}")
        job_id, action = match.groups()
        if method == "GET" and action is None:
            return reply("DescribeJob", {"Job": backend.describe_job(job_id)})
        if method == "POST" and action == "priority":
            return reply(
                "UpdateJobPriority",
                backend.update_priority(job_id, int(query.get("priority", ["-1"])[0])),
            )
        if method == "POST" and action == "status":
            return reply(
                "UpdateJobStatus",
                backend.update_status(
                    job_id,
                    query.get("requestedJobStatus", [""])[0],
                    query.get("statusUpdateReason", [None])[0],
                ),
            )
        if action == "tagging":
            if method == "GET":
                return reply("GetJobTagging", backend.get_tags(job_id))
            if method == "PUT":
                shape = model.operation_model("PutJobTagging").input_shape
                tags = xml.parse_body(body, shape).get("Tags", [])
                return reply("PutJobTagging", backend.put_tags(job_id, tags))
            if method == "DELETE":
                return reply("DeleteJobTagging", backend.delete_tags(job_id))
        raise S3ControlError("BadRequestException", f"unsupported {method} {parts.path}")


def start_s3control_server(
    *,
    endpoint: Endpoint | None = None,
    lambda_client: Any = None,
    logs_client: Any = None,
    port: int = 0,
    concurrency: int = 4,
    state_dir: Path | None = None,
) -> tuple[str, Callable[[], None]]:
    """Serve the S3 Control job operations on 127.0.0.1 in a thread; return ``(url, stop)``.

    ``endpoint`` is where the jobs' S3 calls go (default: as the notebook resolves it);
    ``lambda_client`` is the Lambda endpoint ``GetFunction`` goes to and ``logs_client`` where the
    functions' logs are copied (default: boto3's, as the environment configures them);
    ``state_dir`` keeps what the endpoint knows of its jobs (default: in the data directory).
    """
    if endpoint is None:
        from ..config import RemoteSettings, resolve_endpoint

        endpoint = resolve_endpoint(RemoteSettings())
    backend = S3ControlBackend(
        endpoint=endpoint,
        lambda_client=lambda_client,
        logs_client=logs_client,
        concurrency=concurrency,
        state_dir=state_dir,
    )
    handler = type("S3ControlHandler", (_Handler,), {"backend": backend})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="s3control", daemon=True)
    thread.start()
    host, bound = server.server_address[:2]

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://{host}:{bound}", stop


def main(argv: list[str] | None = None) -> int:
    """``python -m jupyter_remote.engines.s3control_server``: serve until Ctrl-C."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(
        prog="python -m jupyter_remote.engines.s3control_server",
        description="Serve the S3 Control job operations (S3 Batch Operations) on 127.0.0.1, "
        "running jobs with the local S3 Batch engine. S3, Lambda and CloudWatch Logs are "
        "reached as boto3 resolves them (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, ...).",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--concurrency", type=int, default=4, help="invocations at a time")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="where the endpoint keeps its jobs"
    )
    args = parser.parse_args(argv)
    url, stop = start_s3control_server(
        port=args.port, concurrency=args.concurrency, state_dir=args.state_dir
    )
    print(f"S3 Control endpoint: {url}", flush=True)
    print(f"  export AWS_ENDPOINT_URL_S3_CONTROL={url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
