"""The ``s3batch`` engine end to end over HTTP: IAM, Lambda, S3, STS and Logs on moto, S3 Control
on the local endpoint of :mod:`jupyter_remote.engines.s3control_server`."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter

import pytest

pytestmark = pytest.mark.timeout(120)

CELL = """
import boto3
s3 = boto3.client("s3")
def process(bucket, key):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key="out/" + key, Body=body.upper())
    if b"bad" in body:
        raise ValueError("bad object " + key)
    return {"n": len(body)}
"""


@pytest.fixture
def aws(moto_env, monkeypatch, tmp_path):
    """moto for everything but S3 Control, which goes to our endpoint; returns helpers."""
    from jupyter_remote.config import RemoteSettings, resolve_endpoint
    from jupyter_remote.engines.s3control_server import start_s3control_server
    from jupyter_remote.storage import make_client

    url, stop = start_s3control_server(state_dir=tmp_path / "s3control")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3_CONTROL", url)
    endpoint = resolve_endpoint(RemoteSettings())
    s3 = make_client(endpoint)
    for bucket in ("photos", "batch"):
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: object) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    lam = make_client(endpoint, "lambda")
    lam.meta.events.register("before-call.lambda.*", count, unique_id="test-count")
    yield {
        "url": url,
        "endpoint": endpoint,
        "s3": s3,
        "calls": calls,
        "state_dir": tmp_path / "s3control",
        "stop": stop,
    }
    lam.meta.events.unregister("before-call.lambda.*", unique_id="test-count")
    stop()


def _run(store, prefix: str, *, cell: str = CELL, **options):
    from jupyter_remote import s3batch
    from jupyter_remote.config import RemoteSettings

    namespace: dict = dict(options.pop("user_ns_extra", {}))
    settings = options.pop("settings", None) or RemoteSettings(widgets=False, poll_interval=0.2)
    job = s3batch.s3batch(
        cell,
        user_ns=namespace,
        bucket=options.pop("bucket", "photos"),
        prefix=prefix,
        engine=options.pop("engine", "s3batch"),
        output_var="table",
        settings=settings,
        store=store,
        **options,
    )
    return job, namespace


def _status_when(job, wanted, timeout: float = 30):
    """Poll DescribeJob until ``wanted(status)``; return that status."""
    deadline = time.monotonic() + timeout
    while not wanted(status := job.engine.describe(job.handle)):
        assert time.monotonic() < deadline, f"still {status.state} after {timeout} s"
        time.sleep(0.2)
    return status


def _statements(iam, role: str) -> list[dict]:
    from jupyter_remote.engines.s3batch_iam import POLICY_NAME

    raw = iam.get_role_policy(RoleName=role, PolicyName=POLICY_NAME)["PolicyDocument"]
    document = json.loads(raw) if isinstance(raw, str) else raw
    return document["Statement"]


def test_end_to_end_deploys_once_and_reads_the_report(aws, store):
    from jupyter_remote.engines.s3batch_iam import BATCH_ROLE, LAMBDA_ROLE
    from jupyter_remote.spec.validation import validate_with_botocore
    from jupyter_remote.storage import make_client

    s3, calls = aws["s3"], aws["calls"]
    keys = [f"e2e/img-{i}.txt" for i in range(5)] + ["e2e/bad.txt"]
    for key in keys:
        s3.put_object(Bucket="photos", Key=key, Body=b"bad" if "bad" in key else b"pixels")
    job, namespace = _run(store, "e2e/")
    table = namespace["table"]
    rows = table.to_dict("records") if hasattr(table, "to_dict") else table
    assert sorted(r["key"] for r in rows) == sorted(keys)
    assert Counter(r["status"] for r in rows) == {"Succeeded": 5, "PermanentFailure": 1}
    assert "bad object" in next(r["error"] for r in rows if r["status"] != "Succeeded")
    for key in keys:  # the function's own output
        assert s3.get_object(Bucket="photos", Key=f"out/{key}")["Body"].read().isupper()

    status = job.status()
    assert status.state == "Complete"
    assert status.progress["total"] == 6 and status.progress["failed"] == 1
    data = job.handle.data
    request = data["create_job"]
    validate_with_botocore("s3control", "CreateJob", request)
    assert request["Operation"]["LambdaInvoke"]["FunctionArn"] == data["function_arn"]
    assert data["function_arn"].rsplit(":", 1)[-1].isdigit()  # a published version
    assert request["RoleArn"].endswith(f":role/{BATCH_ROLE}")
    assert calls["CreateFunction"] == 1 and calls["UpdateFunctionCode"] == 0

    iam = make_client(aws["endpoint"], "iam")
    trust = {
        LAMBDA_ROLE: "lambda.amazonaws.com",
        BATCH_ROLE: "batchoperations.s3.amazonaws.com",
    }
    for role, principal in trust.items():
        document = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        assert document["Statement"][0]["Principal"] == {"Service": principal}
        for statement in _statements(iam, role):
            resources = statement["Resource"]
            resources = [resources] if isinstance(resources, str) else resources
            assert resources and "*" not in resources, statement
    invoke = next(s for s in _statements(iam, BATCH_ROLE) if s["Sid"] == "Invoke")
    assert all(data["function_name"] in arn for arn in invoke["Resource"])
    lambda_objects = next(s for s in _statements(iam, LAMBDA_ROLE) if s["Sid"] == "Objects")
    assert "arn:aws:s3:::photos/*" in lambda_objects["Resource"]

    # The function's error reached its CloudWatch log group, and the engine's error tail.
    deadline = time.monotonic() + 10
    while not any("bad object" in line for line in job.engine.logs(job.handle)[0].read()):
        assert time.monotonic() < deadline, "the error line never reached CloudWatch"
        time.sleep(0.3)

    # The unchanged cell again: same function, no deployment call.
    calls.clear()
    second, namespace = _run(store, "e2e/")
    assert len(namespace["table"]) == 6
    assert calls["CreateFunction"] == 0 and calls["UpdateFunctionCode"] == 0
    assert second.handle.data["function_arn"] == data["function_arn"]


def test_describe_retries_throttling(aws, store):
    from botocore.stub import Stubber

    aws["s3"].put_object(Bucket="photos", Key="thr/a.txt", Body=b"x")
    job, _ = _run(store, "thr/")
    engine, handle = job.engine, job.handle
    sleeps: list[float] = []
    engine.sleep = sleeps.append
    client = engine.client("s3control")
    real = client.describe_job(AccountId=handle.data["account"], JobId=handle.data["aws_job_id"])
    real.pop("ResponseMetadata")
    with Stubber(client) as stub:
        for _ in range(2):  # botocore's own retries may take some; ours take the rest
            for _ in range(5):
                stub.add_client_error(
                    "describe_job", "TooManyRequestsException", http_status_code=429
                )
        stub.add_response("describe_job", real)
        status = engine.describe(handle)
    assert status.state == "Complete"
    assert sleeps  # our backoff ran


def test_failed_job_raises_with_failure_reasons(aws, store):
    from jupyter_remote.errors import JobFailedError
    from jupyter_remote.storage import make_client

    aws["s3"].put_object(Bucket="photos", Key="fail/a.txt", Body=b"x")
    control = make_client(aws["endpoint"], "s3control")

    def stale_etag(params: dict, **_: object) -> None:
        # The manifest "changed after the job was created": S3 fails the whole job.
        params["Manifest"]["Location"]["ETag"] = "0" * 32

    control.meta.events.register(
        "provide-client-params.s3-control.CreateJob", stale_etag, unique_id="test-etag"
    )
    try:
        with pytest.raises(JobFailedError, match="ManifestETagMismatch"):
            _run(store, "fail/")
    finally:
        control.meta.events.unregister(
            "provide-client-params.s3-control.CreateJob", unique_id="test-etag"
        )


def test_confirm_priority_and_cancel(aws, store):
    aws["s3"].put_object(Bucket="photos", Key="cancel/a.txt", Body=b"x")
    job, _ = _run(store, "cancel/", confirm=True)
    engine, handle = job.engine, job.handle
    _status_when(job, lambda s: s.state == "Suspended")
    assert job.priority(42) == 42
    assert engine.describe(handle).raw["Priority"] == 42
    job.stop()
    status = _status_when(job, lambda s: s.state == "Cancelled")
    assert status.terminal and not status.succeeded
    engine.stop(handle)  # stopping a finished job is a no-op


def test_endpoint_speaks_boto3(aws, store):
    """Idempotency, JobStatusException, ListJobs: the endpoint as botocore's own client sees it."""
    aws["s3"].put_object(Bucket="photos", Key="idem/a.txt", Body=b"x")
    job, _ = _run(store, "idem/")
    engine, data = job.engine, job.handle.data
    control = engine.client("s3control")
    request = dict(data["create_job"])
    assert control.create_job(**request)["JobId"] == data["aws_job_id"]  # a replay
    with pytest.raises(control.exceptions.IdempotencyException):
        control.create_job(**dict(request, Priority=request["Priority"] + 1))
    account = data["account"]
    listed = control.list_jobs(AccountId=account, JobStatuses=["Complete"])["Jobs"]
    assert [j["JobId"] for j in listed] == [data["aws_job_id"]]
    assert listed[0]["Operation"] == "LambdaInvoke"
    assert control.list_jobs(AccountId=account, JobStatuses=["Active"])["Jobs"] == []
    with pytest.raises(control.exceptions.JobStatusException):
        control.update_job_status(
            AccountId=account, JobId=data["aws_job_id"], RequestedJobStatus="Ready"
        )
    with pytest.raises(control.exceptions.NotFoundException):
        control.describe_job(AccountId=account, JobId="no-such-job")
    described = control.describe_job(AccountId=account, JobId=data["aws_job_id"])["Job"]
    assert described["JobArn"] == data["arn"]
    assert described["Manifest"] == request["Manifest"]
    assert described["Report"] == request["Report"]
    assert described["ProgressSummary"]["NumberOfTasksSucceeded"] == 1
    assert described["TerminationDate"] >= described["CreationTime"]


def test_dry_run_prints_requests_and_cost_and_calls_nothing(aws, store):
    from jupyter_remote.storage import make_client

    for i in range(3):
        aws["s3"].put_object(Bucket="photos", Key=f"dry/{i}.txt", Body=b"x")
    control_calls: list[str] = []
    control = make_client(aws["endpoint"], "s3control")
    control.meta.events.register(
        "before-call.s3-control.*",
        lambda event_name, **_: control_calls.append(event_name),
        unique_id="test-dry",
    )
    aws["calls"].clear()
    try:
        shown, _ = _run(store, "dry/", dry_run=True, memory=2048, expected_seconds=2.0)
    finally:
        control.meta.events.unregister("before-call.s3-control.*", unique_id="test-dry")
    assert {"CreateJob", "CreateFunction", "EstimatedCost"} <= set(shown)
    cost = shown["EstimatedCost"]
    assert cost["objects"] == 3 and cost["lambda_gb_seconds"] == 12.0
    assert cost["usd"]["s3batch_job"] == 0.25
    assert cost["total_usd"] == pytest.approx(0.25 + 3e-6 + 6e-7 + 12 * 0.0000166667, abs=1e-4)
    assert shown["CreateFunction"]["MemorySize"] == 2048
    assert not aws["calls"] and not control_calls  # no Lambda, no S3 Control call
    assert store.list() == []


def test_error_log_tail_filters_and_resumes(aws):
    from jupyter_remote.engines.s3batch_logs import LambdaErrorTail
    from jupyter_remote.storage import make_client

    logs = make_client(aws["endpoint"], "logs")
    group = f"/aws/lambda/jupyter-remote-logtest{time.time_ns()}"
    tail = LambdaErrorTail(logs, group, min_interval=0)
    assert tail.read() == []  # no group yet: nothing, no error
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    messages = ["START", "[ERROR] ValueError: bad", "ok", "Traceback (most recent call last):"]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )
    assert tail.read() == ["[ERROR] ValueError: bad", "Traceback (most recent call last):"]
    assert tail.read(final=True) == []  # nothing twice
    resumed = LambdaErrorTail(logs, group, cursor=tail.cursor, min_interval=0)
    # startTime is inclusive: a re-attach may repeat the last line, never lose one.
    assert resumed.read() == ["Traceback (most recent call last):"]


@contextlib.contextmanager
def _refused_once(client, event: str, code: str, message: str):
    """Answer the first ``event`` call with a service error; yield the list of refusals."""
    from types import SimpleNamespace

    refused: list[str] = []

    def refuse(**_: object):
        if refused:
            return None
        refused.append(event.rsplit(".", 1)[-1])
        return SimpleNamespace(status_code=400, headers={}), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    client.meta.events.register(event, refuse, unique_id="test-refuse-once")
    try:
        yield refused
    finally:
        client.meta.events.unregister(event, unique_id="test-refuse-once")


def test_fresh_role_is_retried_while_it_propagates(aws, store):
    from jupyter_remote.storage import make_client

    aws["s3"].put_object(Bucket="photos", Key="fresh/a.txt", Body=b"x")
    lam = make_client(aws["endpoint"], "lambda")
    # IAM is eventually consistent: Lambda refuses a role created a moment ago, once.
    with _refused_once(
        lam,
        "before-call.lambda.CreateFunction",
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    ) as refused:
        # A new --allow-bucket widens the role's policy: the role counts as fresh.
        job, namespace = _run(
            store, "fresh/", cell=CELL + "\n# fresh role\n", allow_bucket=[f"b{time.time_ns()}"]
        )
    assert refused == ["CreateFunction"]
    assert aws["calls"]["CreateFunction"] == 2
    assert job.status().state == "Complete" and len(namespace["table"]) == 1


def test_confirm_runs_a_suspended_job(aws, store):
    aws["s3"].put_object(Bucket="photos", Key="confirm/a.txt", Body=b"x")
    job, _ = _run(store, "confirm/", confirm=True)
    _status_when(job, lambda s: s.state == "Suspended")
    job.confirm()
    status = _status_when(job, lambda s: s.terminal)
    assert status.state == "Complete" and status.progress["succeeded"] == 1
    assert job.table()["status"].tolist() == ["Succeeded"]


def _create_role(iam, name: str, principal: str) -> str:
    from jupyter_remote.engines.iam import trust_policy

    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(principal)))
    return iam.get_role(RoleName=name)["Role"]["Arn"]


def _staged_objects(s3) -> set[str]:
    from jupyter_remote.config import RemoteSettings, resolve_endpoint, staging_uri

    staging = staging_uri(RemoteSettings(), resolve_endpoint(RemoteSettings()))
    with contextlib.suppress(s3.exceptions.NoSuchBucket):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=staging.bucket)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}
    return set()


def test_given_lambda_and_batch_roles_are_used(aws, store):
    from jupyter_remote.storage import make_client

    iam = make_client(aws["endpoint"], "iam")
    lambda_arn = _create_role(iam, "my-lambda-role", "lambda.amazonaws.com")
    batch_arn = _create_role(iam, "my-batch-role", "batchoperations.s3.amazonaws.com")
    aws["s3"].put_object(Bucket="photos", Key="roles/a.txt", Body=b"x")
    # A name for one, an ARN for the other: both resolve to the ARN IAM reports.
    job, namespace = _run(
        store,
        "roles/",
        cell=CELL + "\n# given roles\n",
        lambda_role="my-lambda-role",
        batch_role=batch_arn,
    )
    data = job.handle.data
    assert data["create_job"]["RoleArn"] == batch_arn
    assert data["lambda_role_arn"] == lambda_arn
    lam = make_client(aws["endpoint"], "lambda")
    assert lam.get_function(FunctionName=data["function_name"])["Configuration"]["Role"] == (
        lambda_arn
    )
    assert namespace["table"]["status"].tolist() == ["Succeeded"]


def test_magic_passes_the_role_options(aws, shell, capsys):
    from jupyter_remote.magics_s3batch import S3BatchMagics
    from jupyter_remote.storage import make_client

    if "s3batch" not in shell.magics_manager.magics["cell"]:
        shell.register_magics(S3BatchMagics)
    iam = make_client(aws["endpoint"], "iam")
    lambda_arn = _create_role(iam, "my-lambda-role", "lambda.amazonaws.com")
    batch_arn = _create_role(iam, "my-batch-role", "batchoperations.s3.amazonaws.com")
    aws["s3"].put_object(Bucket="photos", Key="mrole/a.txt", Body=b"x")
    result = shell.run_cell(
        "%%s3batch --engine s3batch --bucket photos --prefix mrole/ --dry-run --no-widgets "
        "--lambda-role my-lambda-role --batch-role my-batch-role\n"
        "def process(b, k):\n    return 0\n"
    )
    assert result.success, result.error_in_exec or result.error_before_exec
    out = capsys.readouterr().out
    shown = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert shown["CreateFunction"]["Role"] == lambda_arn
    assert shown["CreateJob"]["RoleArn"] == batch_arn


def test_settings_role_is_not_reused_for_lambda_and_batch(aws, store):
    from jupyter_remote.config import RemoteSettings

    aws["s3"].put_object(Bucket="photos", Key="nrole/a.txt", Body=b"x")
    settings = RemoteSettings(widgets=False, role="arn:aws:iam::123456789012:role/processing-role")
    shown, _ = _run(store, "nrole/", dry_run=True, settings=settings)
    assert "processing-role" not in json.dumps(shown, default=str)


@pytest.mark.parametrize("option", ["lambda_role", "batch_role"])
def test_missing_role_fails_before_anything_is_uploaded(aws, store, option):
    from jupyter_remote.errors import ConfigurationError

    aws["s3"].put_object(Bucket="photos", Key="norole/a.txt", Body=b"x")
    before = _staged_objects(aws["s3"])
    aws["calls"].clear()
    flag = "--" + option.replace("_", "-")
    with pytest.raises(ConfigurationError, match=f"{flag} 'no-such-role': no IAM role"):
        _run(store, "norole/", cell=CELL + f"\n# {time.time_ns()}\n", **{option: "no-such-role"})
    assert _staged_objects(aws["s3"]) == before
    assert not aws["calls"] and store.list() == []


def _zip(source: str) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("index.py", source)
    return out.getvalue()


def test_cleanup_deletes_only_our_functions(aws, store):
    from jupyter_remote import s3batch
    from jupyter_remote.config import RemoteSettings
    from jupyter_remote.storage import make_client

    aws["s3"].put_object(Bucket="photos", Key="clean/a.txt", Body=b"x")
    names = []
    for n in range(2):
        job, _ = _run(store, "clean/", cell=CELL + f"\n# cleanup {n} {time.time_ns()}\n")
        names.append(job.handle.data["function_name"])
    # A job waiting for confirmation still needs its function.
    waiting, _ = _run(store, "clean/", cell=CELL + f"\n# waiting {time.time_ns()}\n", confirm=True)
    kept = waiting.handle.data["function_name"]
    lam = make_client(aws["endpoint"], "lambda")
    iam = make_client(aws["endpoint"], "iam")
    other = f"not-ours-{time.time_ns()}"
    lam.create_function(
        FunctionName=other,
        Runtime="python3.12",
        Role=_create_role(iam, "other-role", "lambda.amazonaws.com"),
        Handler="index.handler",
        Code={"ZipFile": _zip("def handler(e, c):\n    return 1\n")},
    )
    settings = RemoteSettings(widgets=False)

    options = {"engine": "s3batch", "settings": settings, "store": store}
    assert set(names).isdisjoint(s3batch.cleanup(older_than_days=1, **options))
    listed = s3batch.cleanup(dry_run=True, older_than_days=0, **options)
    assert set(names) <= set(listed) and kept not in listed
    for name in names:  # a dry run deletes nothing
        lam.get_function(FunctionName=name)

    deleted = s3batch.cleanup(**options)
    assert set(names) <= set(deleted) and other not in deleted and kept not in deleted
    logs = make_client(aws["endpoint"], "logs")

    def log_groups() -> set[str]:
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/aws/")
        return {g["logGroupName"] for page in pages for g in page["logGroups"]}

    for name in names:
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_function(FunctionName=name)
        assert f"/aws/lambda/{name}" not in log_groups()  # its log group went with it
    assert f"/aws/lambda/{kept}" in log_groups()
    lam.get_function(FunctionName=other)  # not ours: still there
    lam.get_function(FunctionName=kept)
    assert s3batch.cleanup(**options) == []
    waiting.stop()


def test_tags_reach_create_job_and_bad_tags_fail_early(aws, store):
    from jupyter_remote.errors import ConfigurationError
    from jupyter_remote.spec.validation import validate_with_botocore

    aws["s3"].put_object(Bucket="photos", Key="tags/a.txt", Body=b"x")
    job, _ = _run(store, "tags/", tags=["team=imaging", "cost-centre=42"])
    request = job.handle.data["create_job"]
    validate_with_botocore("s3control", "CreateJob", request)
    assert request["Tags"] == [
        {"Key": "team", "Value": "imaging"},
        {"Key": "cost-centre", "Value": "42"},
    ]
    before = _staged_objects(aws["s3"])
    for bad, message in [
        (["novalue"], "expected KEY=VALUE"),
        (["a=1", "a=2"], "given twice"),
        (["k=semi;colon"], "not allowed"),
        (["k" * 129 + "=v"], "1-128"),
        ([f"k{i}=v" for i in range(51)], "at most 50"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            _run(store, "tags/", tags=bad)
    assert _staged_objects(aws["s3"]) == before


def test_job_tagging_and_an_endpoint_restart_keep_the_job(aws, store):
    from jupyter_remote.engines.local import jobs_dir
    from jupyter_remote.engines.s3control_server import start_s3control_server

    aws["s3"].put_object(Bucket="photos", Key="retag/a.txt", Body=b"x")
    job, _ = _run(store, "retag/", tags=["team=imaging"])
    control, data = job.engine.client("s3control"), job.handle.data
    args = {"AccountId": data["account"], "JobId": data["aws_job_id"]}
    assert control.get_job_tagging(**args)["Tags"] == [{"Key": "team", "Value": "imaging"}]
    control.put_job_tagging(**args, Tags=[{"Key": "stage", "Value": "2"}])  # replaces all
    assert control.get_job_tagging(**args)["Tags"] == [{"Key": "stage", "Value": "2"}]
    with pytest.raises(control.exceptions.ClientError, match="not allowed"):
        control.put_job_tagging(**args, Tags=[{"Key": "bad;key", "Value": "x"}])

    # A new endpoint process on the same state folder knows the job: status, tags, token.
    aws["stop"]()
    port = int(aws["url"].rsplit(":", 1)[1])
    _, stop = start_s3control_server(state_dir=aws["state_dir"], port=port)
    try:
        assert control.describe_job(**args)["Job"]["Status"] == "Complete"
        assert control.get_job_tagging(**args)["Tags"] == [{"Key": "stage", "Value": "2"}]
        assert control.create_job(**data["create_job"])["JobId"] == data["aws_job_id"]
        control.delete_job_tagging(**args)
        assert control.get_job_tagging(**args)["Tags"] == []
        assert job.status().state == "Complete"  # the engine, unchanged, through the new process

        # A job that ended more than 90 days ago leaves ListJobs; DescribeJob still finds it.
        listed = control.list_jobs(AccountId=data["account"])["Jobs"]
        assert data["aws_job_id"] in [j["JobId"] for j in listed]
        status_file = jobs_dir() / data["aws_job_id"] / "status.json"
        status = json.loads(status_file.read_text())
        status["TerminationDate"] = "2026-01-01T00:00:00+00:00"
        status_file.write_text(json.dumps(status))
        listed = control.list_jobs(AccountId=data["account"])["Jobs"]
        assert data["aws_job_id"] not in [j["JobId"] for j in listed]
        assert control.describe_job(**args)["Job"]["Status"] == "Complete"
    finally:
        stop()


def test_rerun_failed_on_aws_reuses_the_function(aws, store):
    s3, calls = aws["s3"], aws["calls"]
    s3.put_object(Bucket="photos", Key="rerun/good.txt", Body=b"fine")
    s3.put_object(Bucket="photos", Key="rerun/bad one.txt", Body=b"bad")
    from jupyter_remote.errors import JupyterRemoteError

    job, namespace = _run(store, "rerun/")
    assert Counter(namespace["table"]["status"]) == {"Succeeded": 1, "PermanentFailure": 1}
    s3.put_object(Bucket="photos", Key="rerun/bad one.txt", Body=b"now good")
    calls.clear()
    again = job.rerun_failed(priority=77)
    table = again.wait({}, poll_interval=0.2)
    assert table.to_dict("records")[0]["key"] == "rerun/bad one.txt"
    assert table["status"].tolist() == ["Succeeded"]
    request = again.handle.data["create_job"]
    assert request["Priority"] == 77
    assert request["Operation"]["LambdaInvoke"]["FunctionArn"] == job.handle.data["function_arn"]
    assert request["ClientRequestToken"] == again.job_id != job.job_id
    assert calls["CreateFunction"] == 0 and calls["UpdateFunctionCode"] == 0
    with pytest.raises(JupyterRemoteError, match="no failed tasks"):
        again.rerun_failed()


ENV_CELL = """
import os
def process(bucket, key):
    return {"mode": os.environ["MODE"], "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]}
"""


def test_changed_settings_update_the_configuration_not_the_code(aws, store):
    from jupyter_remote.storage import make_client

    aws["s3"].put_object(Bucket="photos", Key="settings/a.txt", Body=b"x")
    cell = ENV_CELL + f"# {time.time_ns()}\n"
    first, _ = _run(store, "settings/", cell=cell, env=["MODE=one"])
    assert aws["calls"]["CreateFunction"] == 1
    aws["calls"].clear()
    second, namespace = _run(
        store, "settings/", cell=cell, env=["MODE=two"], memory=1024, ephemeral_storage=1024
    )
    calls = aws["calls"]
    assert calls["CreateFunction"] == 0 and calls["UpdateFunctionCode"] == 0
    assert calls["UpdateFunctionConfiguration"] == 1 and calls["PublishVersion"] == 1
    name = first.handle.data["function_name"]
    assert second.handle.data["function_name"] == name  # same code, same function
    assert second.handle.data["function_arn"] != first.handle.data["function_arn"]
    config = make_client(aws["endpoint"], "lambda").get_function(FunctionName=name)
    assert config["Configuration"]["MemorySize"] == 1024
    assert config["Configuration"]["Environment"]["Variables"]["MODE"] == "two"
    # The job ran the new version's settings: the endpoint read them back with GetFunction.
    result = json.loads(namespace["table"]["result"].tolist()[0])
    assert result == {"mode": "two", "memory": "1024"}


def test_package_over_50_mb_is_deployed_from_the_staging_bucket(aws, store):
    import os

    from jupyter_remote.storage import make_client

    aws["s3"].put_object(Bucket="photos", Key="big/a.txt", Body=b"x")
    sent: list[dict] = []
    lam = make_client(aws["endpoint"], "lambda")

    def record(params: dict, **_: object) -> None:
        sent.append({k: v for k, v in params.items() if k != "ZipFile"})

    lam.meta.events.register(
        "provide-client-params.lambda.CreateFunction", record, unique_id="test-big"
    )
    try:
        _, namespace = _run(
            store,
            "big/",
            cell="def process(bucket, key):\n    return len(blob)\n",
            user_ns_extra={"blob": os.urandom(51 * 1024 * 1024)},  # incompressible
            timeout=120,
        )
    finally:
        lam.meta.events.unregister(
            "provide-client-params.lambda.CreateFunction", unique_id="test-big"
        )
    code = sent[0]["Code"]
    assert set(code) == {"S3Bucket", "S3Key"}, code  # not inline: over the 50 MB ZipFile limit
    staged = aws["s3"].head_object(Bucket=code["S3Bucket"], Key=code["S3Key"])
    assert staged["ContentLength"] > 50 * 1024 * 1024
    assert namespace["table"]["result"].tolist() == [str(51 * 1024 * 1024)]


def test_fresh_batch_role_is_retried_at_create_job(aws, store):
    from jupyter_remote.storage import make_client

    aws["s3"].put_object(Bucket="photos", Key="freshjob/a.txt", Body=b"x")
    control = make_client(aws["endpoint"], "s3control")
    # UNCONFIRMED wording: S3 refuses a job whose new role it cannot assume yet.
    with _refused_once(
        control, "before-call.s3-control.CreateJob", "BadRequestException", "Unable to assume role"
    ) as refused:
        # A new cell is a new function, so the Batch role's Invoke statement grows: fresh.
        job, namespace = _run(store, "freshjob/", cell=CELL + f"\n# {time.time_ns()}\n")
    assert refused == ["CreateJob"]
    assert job.status().state == "Complete" and len(namespace["table"]) == 1


def test_layers_are_checked_before_anything_is_uploaded(aws, store):
    from jupyter_remote.errors import ConfigurationError
    from jupyter_remote.storage import make_client

    aws["s3"].put_object(Bucket="photos", Key="layers/a.txt", Body=b"x")
    lam = make_client(aws["endpoint"], "lambda")
    layer = lam.publish_layer_version(
        LayerName="pillow", Content={"ZipFile": _zip("x = 1\n")}, CompatibleRuntimes=["python3.12"]
    )["LayerVersionArn"]
    shown, _ = _run(store, "layers/", dry_run=True, layers=[layer])
    assert shown["CreateFunction"]["Layers"] == [layer]

    before = _staged_objects(aws["s3"])
    cell = CELL + f"\n# {time.time_ns()}\n"
    missing = layer.rsplit(":", 1)[0] + ":99"
    with pytest.raises(ConfigurationError, match=f"--layer {missing}"):
        _run(store, "layers/", cell=cell, layers=[missing])
    with pytest.raises(ConfigurationError, match="local engine cannot run Lambda layers"):
        _run(store, "layers/", cell=cell, layers=[layer], engine="local")
    with pytest.raises(ConfigurationError, match="--ephemeral-storage"):
        _run(store, "layers/", cell=cell, ephemeral_storage=100)
    assert _staged_objects(aws["s3"]) == before and store.list() == []


def test_manifest_generator_job_lists_the_bucket_on_the_endpoint(aws, store):
    from jupyter_remote.engines.s3batch_iam import BATCH_ROLE
    from jupyter_remote.spec.validation import validate_with_botocore
    from jupyter_remote.storage import make_client

    s3 = aws["s3"]
    keys = ["mgen/a.txt", "mgen/sub/b c.txt"]
    for key in [*keys, "mgen/folder/", "other/x.txt"]:
        s3.put_object(Bucket="photos", Key=key, Body=b"" if key.endswith("/") else b"pix")
    job, namespace = _run(store, "mgen/", manifest_generator=True)
    assert sorted(namespace["table"]["key"]) == sorted(keys)  # no marker, nothing outside
    request = job.handle.data["create_job"]
    validate_with_botocore("s3control", "CreateJob", request)
    assert "Manifest" not in request
    generator = request["ManifestGenerator"]["S3JobManifestGenerator"]
    assert generator["SourceBucket"] == "arn:aws:s3:::photos"

    raw = job.status().raw  # DescribeJob over HTTP, parsed by boto3
    descriptor = raw["GeneratedManifestDescriptor"]
    assert descriptor["Format"] == "S3InventoryReport_CSV_20211130"
    assert raw["ManifestGenerator"]["S3JobManifestGenerator"]["SourceBucket"] == (
        "arn:aws:s3:::photos"
    )
    statements = {s["Sid"]: s for s in _statements(make_client(aws["endpoint"], "iam"), BATCH_ROLE)}
    assert "arn:aws:s3:::photos" in statements["GenerateList"]["Resource"]
    output = generator["ManifestOutputLocation"]
    bucket = output["Bucket"].split(":::", 1)[1]
    assert (
        f"arn:aws:s3:::{bucket}/{output['ManifestPrefix']}/*"
        in (statements["GenerateWrite"]["Resource"])
    )


def test_a_concurrent_run_deploying_the_same_cell_first_is_not_an_error(aws, store):
    import boto3

    from jupyter_remote.storage import make_client

    aws["s3"].put_object(Bucket="photos", Key="race/a.txt", Body=b"x")
    lam = make_client(aws["endpoint"], "lambda")
    other_kernel = boto3.session.Session().client("lambda", endpoint_url=aws["endpoint"].url)
    raced: list[str] = []

    def another_run_wins(params: dict, **_: object) -> None:
        # The other kernel creates the very same function between our GetFunction and our
        # CreateFunction: moto then answers ours with a real ResourceConflictException.
        if not raced:
            raced.append(params["FunctionName"])
            other_kernel.create_function(**params)

    lam.meta.events.register(
        "provide-client-params.lambda.CreateFunction", another_run_wins, unique_id="test-race"
    )
    try:
        job, namespace = _run(store, "race/", cell=CELL + f"\n# race {time.time_ns()}\n")
    finally:
        lam.meta.events.unregister(
            "provide-client-params.lambda.CreateFunction", unique_id="test-race"
        )
    assert raced == [job.handle.data["function_name"]]
    assert job.handle.data["function_created"] is False  # the other run created it
    assert job.status().state == "Complete" and len(namespace["table"]) == 1


def test_endpoint_runs_as_a_command(moto_env, tmp_path):
    import os
    import subprocess
    import sys

    import boto3

    from jupyter_remote.engines.s3batch_aws import strip_account_prefix

    command = [sys.executable, "-m", "jupyter_remote.engines.s3control_server"]
    server = subprocess.Popen(
        [*command, "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, AWS_DEFAULT_REGION="us-east-1"),
    )
    try:
        line = (
            server.stdout.readline()
        )  # blocks until the server prints; the test timeout bounds it
        assert line.startswith("S3 Control endpoint: http://127.0.0.1:"), line
        url = line.split(": ", 1)[1].strip()
        control = boto3.client("s3control", endpoint_url=url, region_name="us-east-1")
        control.meta.events.register("before-sign.s3-control.*", strip_account_prefix)
        assert control.list_jobs(AccountId="123456789012")["Jobs"] == []
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0  # SIGTERM stops it cleanly


def test_existing_managed_role_must_trust_its_service(aws):
    from jupyter_remote.engines.s3batch_iam import LAMBDA_PRINCIPAL, ensure_role
    from jupyter_remote.errors import ConfigurationError
    from jupyter_remote.storage import make_client

    iam = make_client(aws["endpoint"], "iam")
    _create_role(iam, "trusts-sagemaker-only", "sagemaker.amazonaws.com")
    with pytest.raises(
        ConfigurationError, match=r"does not trust lambda\.amazonaws\.com.*--lambda-role"
    ):
        ensure_role(
            iam,
            role_name="trusts-sagemaker-only",
            principal=LAMBDA_PRINCIPAL,
            statements=[],
            account="123456789012",
            partition="aws",
            description="test",
        )
