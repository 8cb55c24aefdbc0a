"""The sagemaker engine against moto's HTTP server: real boto3 over HTTP, no mocks of our code.

moto accepts processing jobs and marks them Completed at once without running anything, and its
DescribeProcessingJob drops Environment and ProcessingResources. So the request is captured as
it leaves botocore (a ``before-call`` handler, which runs after botocore's validation), and the
end-to-end tests play the container: they run the real bootstrap on the request recorded on moto
with the local engine's executor, then let the engine's normal completion path write back.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
STAGING_BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/jupyter-remote-processing"
CREATE_EVENT = "before-call.sagemaker.CreateProcessingJob"
IMAGE_311 = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch-training:2.5-cpu-py311"
# What moto's DescribeProcessingJob keeps of a request.
KEPT_BY_MOTO = (
    "ProcessingJobName",
    "ProcessingInputs",
    "ProcessingOutputConfig",
    "StoppingCondition",
    "AppSpecification",
    "RoleArn",
)


@pytest.fixture
def aws(moto_env):
    """A clean moto (every backend reset) and boto3 clients on it."""
    import boto3

    request = urllib.request.Request(f"{moto_env}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    clients = {
        name: boto3.client(name, endpoint_url=moto_env, region_name=REGION)
        for name in ("s3", "sagemaker", "iam", "logs")
    }
    clients["url"] = moto_env
    return clients


@pytest.fixture
def sent(aws, monkeypatch):
    """Every CreateProcessingJob request as botocore sends it (after its parameter validation)."""
    import botocore.handlers

    from jupyter_remote.engines.sagemaker_setup import aws_endpoint
    from jupyter_remote.storage import make_client

    captured: list[dict] = []

    def capture(params, **_):
        captured.append(json.loads(params["body"]))

    # make_client keeps one client per endpoint for the whole process: hook that one ...
    client = make_client(aws_endpoint(region=REGION, profile=None), "sagemaker")
    client.meta.events.register(CREATE_EVENT, capture, unique_id="test-capture")
    # ... and any client created later, should the cache not hold it.
    monkeypatch.setattr(
        botocore.handlers,
        "BUILTIN_HANDLERS",
        [*botocore.handlers.BUILTIN_HANDLERS, (CREATE_EVENT, capture)],
    )
    yield captured
    client.meta.events.unregister(CREATE_EVENT, unique_id="test-capture")


class Recorder:
    """A JobDisplay that keeps what it was told."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []
        self.messages: list[str] = []
        self.titles: list[str] = []
        self.states: list[str] = []

    def started(self, handle, title):
        self.titles.append(title)

    def status(self, status):
        self.states.append(status.state)

    def log(self, stream, line):
        self.lines.append((stream, line))

    def message(self, text):
        self.messages.append(text)

    def finished(self, status):
        self.states.append(f"finished:{status.state}")


def submit(cell, ns, **kwargs):
    import jupyter_remote

    kwargs.setdefault("engine", "sagemaker")
    kwargs.setdefault("wait", False)
    return jupyter_remote.remote_process(cell, user_ns=ns, display=Recorder(), **kwargs)


def play_container(job, aws, sent_request, workdir: Path) -> dict:
    """Run the real bootstrap on the request recorded on moto, as SageMaker would have."""
    from jupyter_remote.engines.local_processing import Supervisor, write_json
    from jupyter_remote.engines.sagemaker_setup import aws_endpoint

    described = aws["sagemaker"].describe_processing_job(ProcessingJobName=job.job_id)
    request = {key: described[key] for key in KEPT_BY_MOTO}
    # moto drops these two: take them from what the engine sent.
    request["Environment"] = sent_request["Environment"]
    request["ProcessingResources"] = sent_request["ProcessingResources"]
    jobdir = workdir / job.job_id
    jobdir.mkdir(parents=True)
    write_json(jobdir / "request.json", request)
    endpoint = aws_endpoint(region=REGION, profile=None)
    (jobdir / "endpoint.json").write_text(json.dumps(dataclasses.asdict(endpoint)))
    write_json(
        jobdir / "status.json",
        {"ProcessingJobArn": described["ProcessingJobArn"], "ProcessingJobStatus": "InProgress"},
    )
    Supervisor(jobdir).run()
    return json.loads((jobdir / "status.json").read_text())


def staged_keys(aws) -> list[str]:
    try:
        listing = aws["s3"].list_objects_v2(Bucket=STAGING_BUCKET)
    except aws["s3"].exceptions.NoSuchBucket:
        return []
    return [o["Key"] for o in listing.get("Contents", [])]


def processing_jobs(aws) -> list[str]:
    summaries = aws["sagemaker"].list_processing_jobs()["ProcessingJobSummaries"]
    return [s["ProcessingJobName"] for s in summaries]


# -- (1) the request ------------------------------------------------------------------------------
def _normalized(request: dict, job_name: str, staging_bucket: str) -> dict:
    """The request with what differs by design between two jobs replaced by placeholders."""
    doc = json.loads(json.dumps(request).replace(job_name, "<job>").replace(staging_bucket, "<b>"))
    doc["Environment"]["JUPYTER_REMOTE_SIGNING_KEY"] = "<key>"
    entry = doc["AppSpecification"]["ContainerEntrypoint"]
    entry[2] = entry[2].rsplit("/", 2)[0] + "/<digest>/job.json"  # carries the job's signature
    doc["AppSpecification"]["ImageUri"] = "<image>"
    doc["RoleArn"] = "<role>"
    return doc


def _engine(store, **options):
    """A SageMakerEngine on moto's endpoint, with test-friendly timing options."""
    from jupyter_remote.engines.sagemaker import SageMakerEngine
    from jupyter_remote.engines.sagemaker_setup import aws_endpoint
    from jupyter_remote.s3uri import S3Uri
    from jupyter_remote.storage import Storage, make_client

    endpoint = aws_endpoint(region=REGION, profile=None)
    storage = Storage(make_client(endpoint), S3Uri("unused"))
    return SageMakerEngine(endpoint=endpoint, storage=storage, store=store, **options)


def test_request_on_moto_equals_what_the_local_engine_executes(aws, sent, store):
    from jupyter_remote.engines.local import LOCAL_ROLE_ARN
    from jupyter_remote.spec.processing import validate_processing_request

    aws["s3"].create_bucket(Bucket="lab-data")
    for i in range(4):
        aws["s3"].put_object(Bucket="lab-data", Key=f"raw/{i}.txt", Body=b"x" * i)
    cell = "import os\nseen = sorted(os.listdir(INPUTS['data']))\ntotal = base + len(seen)\n"
    options = dict(
        inputs=["data=s3://lab-data/raw/"],
        outputs=["out=s3://lab-data/out/"],
        shard=["data"],
        env=["MODE=fast"],
        instance_count=2,
        volume_size=40,
        max_runtime=3600,
        store=store,
    )
    local_ns = {"base": 10}
    local = submit(cell, local_ns, engine="local", wait=True, **options)
    executed = json.loads((Path(local.handle.data["jobdir"]) / "request.json").read_text())
    assert local_ns["total"] == 10 + len(local_ns["seen"])  # the local engine really ran it

    remote = submit(cell, {"base": 10}, **options)
    assert len(sent) == 1
    wire = sent[0]
    validate_processing_request(wire)  # and botocore's validator already ran before-call
    assert wire == remote.record.request  # what the job store keeps is what went out
    local_bucket = local.handle.data["staging"].split("/")[2]
    assert _normalized(wire, remote.job_id, STAGING_BUCKET) == _normalized(
        executed, local.job_id, local_bucket
    )
    assert wire["RoleArn"] == ROLE_ARN and executed["RoleArn"] == LOCAL_ROLE_ARN
    assert wire["AppSpecification"]["ImageUri"].endswith(
        f"/pytorch-training:{_expected_tag()}"
    ) and wire["AppSpecification"]["ImageUri"].startswith("763104351884.dkr.ecr.us-east-1.")
    cluster = wire["ProcessingResources"]["ClusterConfig"]
    assert cluster == {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 40}
    assert wire["Environment"]["MODE"] == "fast"
    # What moto kept equals what was sent.
    described = aws["sagemaker"].describe_processing_job(ProcessingJobName=remote.job_id)
    for key in KEPT_BY_MOTO:
        assert described[key] == wire[key], key
    tags = {t["Key"]: t["Value"] for t in wire["Tags"]}
    assert set(tags) >= {"jupyter-remote:version", "jupyter-remote:python"}


def _expected_tag() -> str:
    import sys

    from jupyter_remote.spec.images import PYTORCH_FOR_PYTHON

    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"{PYTORCH_FOR_PYTHON[py]}-cpu-py{py.replace('.', '')}"


# -- (2) the role ---------------------------------------------------------------------------------
NO_RESOURCE_LEVEL = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}


def _statements(policy: dict) -> list[dict]:
    out = []
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        out.append({**st, "Action": actions, "Resource": resources})
    return out


def _resources_for(statements: list[dict], action: str) -> set[str]:
    return {r for st in statements if action in st["Action"] for r in st["Resource"]}


def test_created_role_trusts_sagemaker_and_is_scoped_to_the_job(aws, sent, store):
    for bucket in ("in-bucket", "out-bucket"):
        aws["s3"].create_bucket(Bucket=bucket)
    job = submit(
        "y = 1\n",
        {},
        inputs=["raw=s3://in-bucket/raw/"],
        outputs=["out=s3://out-bucket/results/"],
        store=store,
    )
    assert sent[0]["RoleArn"] == ROLE_ARN
    assert job.handle.data["role_fresh"] is True
    role = aws["iam"].get_role(RoleName="jupyter-remote-processing")["Role"]
    assert role["Arn"] == ROLE_ARN
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    iam = aws["iam"]
    assert (
        iam.list_attached_role_policies(RoleName="jupyter-remote-processing")["AttachedPolicies"]
        == []
    )
    names = iam.list_role_policies(RoleName="jupyter-remote-processing")["PolicyNames"]
    assert names == ["jupyter-remote-processing"]
    raw = iam.get_role_policy(RoleName="jupyter-remote-processing", PolicyName=names[0])
    document = raw["PolicyDocument"]
    policy = json.loads(document) if isinstance(document, str) else document
    statements = _statements(policy)
    for st in statements:
        assert st["Effect"] == "Allow"
        assert not any(a == "*" or a.endswith(":*") for a in st["Action"]), st
        if "*" in st["Resource"]:
            assert set(st["Action"]) <= NO_RESOURCE_LEVEL, st
    metrics = [st for st in statements if "cloudwatch:PutMetricData" in st["Action"]]
    assert metrics and all("cloudwatch:namespace" in str(st.get("Condition")) for st in metrics)
    staging = f"arn:aws:s3:::{STAGING_BUCKET}/jupyter-remote/*"
    assert _resources_for(statements, "s3:GetObject") == {
        staging,
        "arn:aws:s3:::in-bucket/raw/*",
    }
    assert _resources_for(statements, "s3:PutObject") == {
        staging,
        "arn:aws:s3:::out-bucket/results/*",
    }
    listing = {
        st["Resource"][0]: st["Condition"]["StringLike"]["s3:prefix"]
        for st in statements
        if "s3:ListBucket" in st["Action"]
    }
    assert listing == {
        "arn:aws:s3:::in-bucket": ["raw/*"],
        f"arn:aws:s3:::{STAGING_BUCKET}": ["jupyter-remote/*"],
    }
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/ProcessingJobs"
    assert _resources_for(statements, "logs:PutLogEvents") == {group, f"{group}:*"}
    assert _resources_for(statements, "ecr:BatchGetImage") == {
        f"arn:aws:ecr:{REGION}:763104351884:repository/pytorch-training"
    }

    # A second job adds its own prefix and keeps the first job's (it may still be running).
    aws["s3"].create_bucket(Bucket="more-data")
    second = submit("z = 2\n", {}, inputs=["more=s3://more-data/x/"], store=store)
    raw = iam.get_role_policy(RoleName="jupyter-remote-processing", PolicyName=names[0])
    document = raw["PolicyDocument"]
    policy = json.loads(document) if isinstance(document, str) else document
    reads = _resources_for(_statements(policy), "s3:GetObject")
    assert {"arn:aws:s3:::in-bucket/raw/*", "arn:aws:s3:::more-data/x/*"} <= reads
    assert second.handle.data["role_fresh"] is True
    # A third job needing nothing new leaves IAM alone (no propagation wait on submit).
    third = submit("w = 3\n", {}, inputs=["more=s3://more-data/x/"], store=store)
    assert third.handle.data["role_fresh"] is False


def test_role_given_by_name_becomes_its_arn(aws, sent, store):
    from jupyter_remote.engines.iam import trust_policy

    created = aws["iam"].create_role(
        RoleName="TeamProcessing",
        Path="/service-role/",
        AssumeRolePolicyDocument=json.dumps(trust_policy()),
    )["Role"]["Arn"]
    submit("y = 1\n", {}, role="TeamProcessing", store=store)
    assert (
        sent[0]["RoleArn"] == created == f"arn:aws:iam::{ACCOUNT}:role/service-role/TeamProcessing"
    )
    with pytest.raises(aws["iam"].exceptions.NoSuchEntityException):  # nothing created
        aws["iam"].get_role(RoleName="jupyter-remote-processing")


def test_fresh_role_is_retried_until_assumable(aws, store):
    """CreateProcessingJob's ValidationException about the role is IAM's eventual consistency."""
    from botocore.stub import Stubber

    from jupyter_remote.engines.base import JobHandle

    sleeps: list[float] = []
    engine = _engine(store, sleep=sleeps.append)
    request = _minimal_request("fresh-role-job")
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/fresh-role-job"
    not_yet = f"Could not assume role {ROLE_ARN}. Please ensure that the role exists and allows "
    with Stubber(engine.sagemaker) as stub:
        for _ in range(2):
            stub.add_client_error("create_processing_job", "ValidationException", not_yet, 400)
        stub.add_response("create_processing_job", {"ProcessingJobArn": arn}, request)
        handle = engine._submit(
            JobHandle("sagemaker", "processing", "fresh-role-job", {"role_fresh": True}), request
        )
        stub.assert_no_pending_responses()
    assert handle.data["arn"] == arn and len(sleeps) == 2
    # An old role is not retried: the same error is the user's to see, at once.
    from jupyter_remote.errors import ConfigurationError

    with Stubber(engine.sagemaker) as stub:
        stub.add_client_error("create_processing_job", "ValidationException", not_yet, 400)
        with pytest.raises(ConfigurationError, match="Could not assume role"):
            engine._submit(JobHandle("sagemaker", "processing", "old-role-job", {}), request)
    assert len(sleeps) == 2


def _minimal_request(name: str) -> dict:
    return {
        "ProcessingJobName": name,
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.xlarge",
                "VolumeSizeInGB": 30,
            }
        },
        "AppSpecification": {
            "ImageUri": IMAGE_311,
            "ContainerEntrypoint": ["python3", "-c", "print(1)"],
        },
        "RoleArn": ROLE_ARN,
    }


# -- (3) logs -------------------------------------------------------------------------------------
def _put(aws, stream: str, messages: list[str], start: int) -> None:
    aws["logs"].put_log_events(
        logGroupName="/aws/sagemaker/ProcessingJobs",
        logStreamName=stream,
        logEvents=[{"timestamp": start + i, "message": m} for i, m in enumerate(messages)],
    )


def test_log_tails_follow_two_streams_in_order_without_duplicates(aws, store):
    import time

    from jupyter_remote.engines.base import JobHandle
    from jupyter_remote.monitor import watch

    job = "logs-job-1"
    aws["sagemaker"].create_processing_job(**_minimal_request(job))  # moto: Completed at once
    engine = _engine(store, log_poll_interval=0, stream_discovery_interval=0)
    handle = JobHandle("sagemaker", "processing", job, {"instance_count": 2})
    tails = engine.logs(handle)
    assert [t.stream for t in tails] == ["algo-1", "algo-2"]
    assert [t.read() for t in tails] == [[], []]  # no log group yet: nothing, no error

    group = "/aws/sagemaker/ProcessingJobs"
    aws["logs"].create_log_group(logGroupName=group)
    epoch = int(time.time())
    streams = {host: f"{job}/{host}-{epoch}" for host in ("algo-1", "algo-2")}
    # Decoys that share a prefix but are another job's.
    decoys = [f"{job}0/algo-1-{epoch}", f"other-{job}/algo-1-{epoch}"]
    for name in [*streams.values(), *decoys]:
        aws["logs"].create_log_stream(logGroupName=group, logStreamName=name)
    now = epoch * 1000
    _put(aws, streams["algo-1"], ["a1 first", "a1 two\na1 three"], now)
    _put(aws, streams["algo-2"], ["a2 first"], now)
    for name in decoys:
        _put(aws, name, ["not ours"], now)
    assert [t.read() for t in tails] == [["a1 first", "a1 two", "a1 three"], ["a2 first"]]
    assert [t.read() for t in tails] == [[], []]  # the token repeated: nothing twice
    _put(aws, streams["algo-2"], ["a2 second", "a2 third"], now + 10)
    assert [t.read() for t in tails] == [[], ["a2 second", "a2 third"]]
    cursors = {t.stream: t.cursor for t in tails}
    assert all(isinstance(c, str) for c in cursors.values())
    json.dumps(cursors)  # the job store keeps them as JSON

    # A re-attach resumes from the stored cursors.
    _put(aws, streams["algo-1"], ["a1 after reattach"], now + 20)
    resumed = engine.logs(handle, cursors)
    assert [t.read(final=True) for t in resumed] == [["a1 after reattach"], []]

    # The monitor: one pass reads everything, in order, and ends because the job completed.
    fresh = JobHandle("sagemaker", "processing", job, {"instance_count": 2})
    shown = Recorder()
    status = watch(engine, fresh, shown, store=None, sleep=lambda _: None)
    assert status.state == "Completed"
    assert [line for s, line in shown.lines if s == "algo-1"] == [
        "a1 first",
        "a1 two",
        "a1 three",
        "a1 after reattach",
    ]
    assert [line for s, line in shown.lines if s == "algo-2"] == [
        "a2 first",
        "a2 second",
        "a2 third",
    ]
    again = Recorder()
    watch(engine, fresh, again, store=None, sleep=lambda _: None)  # resumes at saved cursors
    assert again.lines == []


# -- (4) end to end -------------------------------------------------------------------------------
def test_container_played_from_moto_request_writes_back(aws, sent, store, tmp_path):
    aws["s3"].create_bucket(Bucket="e2e-data")
    aws["s3"].put_object(Bucket="e2e-data", Key="in/values.txt", Body=b"1 2 3 4")
    ns = {"scale": 10, "history": [1]}
    job = submit(
        "import os\n"
        "text = open(os.path.join(INPUTS['data'], 'values.txt')).read()\n"
        "values = [int(v) for v in text.split()]\n"
        "total = scale * sum(values)\n"
        "history.append(total)\n"
        "open(os.path.join(OUTPUTS['out'], 'total.txt'), 'w').write(str(total))\n",
        ns,
        inputs=["data=s3://e2e-data/in/"],
        outputs=["out=s3://e2e-data/out/"],
        store=store,
    )
    assert "total" not in ns
    status = play_container(job, aws, sent[0], tmp_path)
    assert status["ProcessingJobStatus"] == "Completed", status
    written = job.wait(ns, display=Recorder(), timeout=60)
    assert ns["total"] == 100 and ns["history"] == [1, 100]
    assert sorted(written) == ["history", "os", "text", "total", "values"]  # os: the import
    body = aws["s3"].get_object(Bucket="e2e-data", Key="out/total.txt")["Body"].read()
    assert body == b"100"
    assert store.get(job.job_id).written_back


def test_container_played_from_moto_request_raises_the_cells_error(aws, sent, store, tmp_path):
    import jupyter_remote
    from jupyter_remote.errors import RemoteExecutionError

    ns = {"d": {"a": 1}}
    job = submit("x = 1\ny = d['missing']\n", ns, store=store)
    status = play_container(job, aws, sent[0], tmp_path)
    assert status["ProcessingJobStatus"] == "Failed"
    # Re-attach from the job store, as another kernel would (the saved endpoint and handle).
    with pytest.raises(KeyError) as info:
        jupyter_remote.attach(job.job_id, user_ns=ns, store=store, display=Recorder(), timeout=60)
    assert isinstance(info.value, RemoteExecutionError)
    assert "y = d['missing']" in info.value.remote_traceback
    assert "x" not in ns


def test_completed_job_without_results_fails_clearly(aws, sent, store):
    from jupyter_remote.errors import JobFailedError

    job = submit("q = 1\n", {}, store=store)  # nobody plays the container: moto ran nothing
    with pytest.raises(JobFailedError, match="wrote no results"):
        job.wait({}, display=Recorder(), timeout=60)


# -- (5) dry run ----------------------------------------------------------------------------------
def test_dry_run_prints_request_and_cost_and_submits_nothing(aws, shell, capsys):
    from jupyter_remote.jobstore import JobStore

    before = len(JobStore().list())
    result = shell.run_cell(
        "%%remote_process --engine sagemaker --dry-run --instance-type ml.c5.2xlarge "
        "--network-isolation --subnet subnet-0abc1 --security-group sg-0def2\nq = 1\n"
    )
    assert result.error_in_exec is None and result.error_before_exec is None
    out = capsys.readouterr().out
    request = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert request["NetworkConfig"] == {
        "EnableNetworkIsolation": True,
        "VpcConfig": {"SecurityGroupIds": ["sg-0def2"], "Subnets": ["subnet-0abc1"]},
    }
    assert request["RoleArn"] == ROLE_ARN  # the role that would be created, not created
    assert request["AppSpecification"]["ImageUri"].endswith(_expected_tag())
    assert request["Environment"]["JUPYTER_REMOTE_SIGNING_KEY"] == "***"
    cost = [line for line in out.splitlines() if line.startswith("estimated cost:")]
    assert len(cost) == 1 and "ml.c5.2xlarge" in cost[0] and "$0.41" in cost[0]
    assert "as of 20" in cost[0]  # the table's date
    assert processing_jobs(aws) == []
    assert staged_keys(aws) == []
    with pytest.raises(aws["iam"].exceptions.NoSuchEntityException):
        aws["iam"].get_role(RoleName="jupyter-remote-processing")
    assert len(JobStore().list()) == before
    assert "q" not in shell.user_ns


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--instance-type ml.m5.huge", "not a SageMaker Processing instance type"),
        ("--volume-size 0", "between 1 and 16384"),
        (" ".join(f"--input i{n}=s3://lab-data/{n}/" for n in range(10)), "at most 10 inputs"),
        ("--module /does/not/exist.py", "does not exist"),
        ("--input raw=s3:///nobucket", "names no bucket"),
        ("--role no-such-role", "no IAM role named 'no-such-role'"),
        (
            f"--role arn:aws:iam::{ACCOUNT}:role/ghost",
            "no IAM role named 'ghost'",
        ),
        (
            "--image 763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.2-cpu-py310",
            "runs Python 3.10",
        ),
        ("--subnet subnet-0abc1", "needs both --subnet and --security-group"),
    ],
)
def test_bad_input_fails_before_upload(aws, shell, line, message):
    from IPython.core.error import UsageError

    result = shell.run_cell(f"%%remote_process --engine sagemaker {line}\nq = 1\n")
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert message in str(result.error_in_exec)
    assert staged_keys(aws) == [] and processing_jobs(aws) == []


def test_no_region_is_an_error_before_upload(aws, shell, monkeypatch):
    from IPython.core.error import UsageError

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    result = shell.run_cell("%%remote_process --engine sagemaker\nq = 1\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert "no AWS region" in str(result.error_in_exec)
    assert staged_keys(aws) == [] and processing_jobs(aws) == []


def test_allow_python_mismatch_lets_a_known_image_through(aws, shell, capsys):
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.2-cpu-py310"
    result = shell.run_cell(
        f"%%remote_process --engine sagemaker --dry-run --image {image} "
        "--allow-python-mismatch --region us-east-1\nq = 1\n"
    )
    assert result.error_in_exec is None
    assert f'"ImageUri": "{image}"' in capsys.readouterr().out


# -- (6) stop, %remote_jobs ----------------------------------------------------------------------
def test_stop_calls_stop_processing_job(aws, sent, store):
    job = submit("q = 1\n", {}, store=store)
    job.stop()
    described = aws["sagemaker"].describe_processing_job(ProcessingJobName=job.job_id)
    assert described["ProcessingJobStatus"] == "Stopped"
    assert job.status().state == "Stopped"


def test_no_wait_job_is_listed_by_remote_jobs(aws, sent, shell, capsys):
    result = shell.run_cell("%%remote_process --engine sagemaker --no-wait\nanswer = 42\n")
    assert result.error_in_exec is None, result.error_in_exec
    job = result.result
    assert job.engine.name == "sagemaker" and "answer" not in shell.user_ns
    out = capsys.readouterr().out
    assert f"job: https://{REGION}.console.aws.amazon.com/sagemaker/home" in out
    assert "logs: https://" in out and "ProcessingJobs" in out
    shell.run_line_magic("remote_jobs", "--engine sagemaker")
    listing = capsys.readouterr().out
    assert job.job_id in listing and "sagemaker" in listing


# -- (7) throttling -------------------------------------------------------------------------------
def test_describe_retries_a_throttled_call(aws, store):
    import datetime as dt

    from botocore.stub import Stubber

    from jupyter_remote.engines.base import JobHandle

    sleeps: list[float] = []
    engine = _engine(store, sleep=sleeps.append)
    described = {
        **{k: v for k, v in _minimal_request("throttled").items() if k != "RoleArn"},
        "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/throttled",
        "ProcessingJobStatus": "InProgress",
        "ProcessingStartTime": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        "CreationTime": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    }
    expected = {"ProcessingJobName": "throttled"}
    with Stubber(engine.sagemaker) as stub:
        stub.add_client_error(
            "describe_processing_job", "ThrottlingException", "Rate exceeded", 400, expected
        )
        stub.add_response("describe_processing_job", described, expected)
        status = engine.describe(JobHandle("sagemaker", "processing", "throttled"))
        stub.assert_no_pending_responses()
    assert (status.state, status.phase, status.terminal) == ("InProgress", "Running", False)
    assert len(sleeps) == 1 and sleeps[0] > 0


def test_stop_from_another_thread_while_watching(aws, sent, store):
    """stop() from another thread is seen by the watcher (moto: Stopped at once)."""
    from jupyter_remote.errors import JobFailedError

    job = submit("q = 1\n", {}, store=store)
    stopper = threading.Thread(target=job.stop)
    stopper.start()
    stopper.join()
    with pytest.raises(JobFailedError) as info:
        job.wait({}, display=Recorder(), timeout=30)
    assert info.value.state == "Stopped"
