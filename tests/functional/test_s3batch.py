"""%%s3batch end to end in a real IPython shell, on the local S3 Batch engine and embedded S3."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import time
from urllib.parse import quote

import pytest
from cells import ok, run

pytestmark = pytest.mark.timeout(120)

AWKWARD = ["a b.png", "x+y.png", "50%.png", "café/日本.png", "plain,comma.png"]


@pytest.fixture
def s3(shell):
    import jupyter_remote
    from jupyter_remote.magics_s3batch import S3BatchMagics

    if "s3batch" not in shell.magics_manager.magics["cell"]:
        shell.register_magics(S3BatchMagics)
    client = jupyter_remote.s3_client()
    for bucket in ("photos", "batch"):
        with contextlib.suppress(
            client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists
        ):
            client.create_bucket(Bucket=bucket)
    return client


def put_manifest(s3, key: str, rows: list[str]) -> str:
    s3.put_object(Bucket="batch", Key=key, Body="".join(f"{r}\n" for r in rows).encode())
    return f"s3://batch/{key}"


def last_job():
    from jupyter_remote.jobstore import JobStore

    return JobStore().list(limit=1)[0]


THUMBNAILS = """%%s3batch --bucket photos --prefix raw/ --concurrency 4 --output-var thumbs
from PIL import Image
import io, boto3
s3 = boto3.client("s3")
def process(bucket, key):
    img = Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    img.thumbnail((128, 128)); out = io.BytesIO(); img.save(out, "PNG")
    s3.put_object(Bucket=bucket, Key=f"thumbs/{key}", Body=out.getvalue())
    return {"w": img.width, "h": img.height}
"""


def test_thumbnail_example_over_awkward_keys(shell, s3):
    from PIL import Image

    keys = [f"raw/{name}" for name in AWKWARD]
    keys += [f"raw/img-{i:02d}.png" for i in range(50 - len(keys))]
    for i, key in enumerate(keys):
        out = io.BytesIO()
        Image.new("RGB", (200 + i, 150), (i * 5 % 255, 0, 0)).save(out, "PNG")
        s3.put_object(Bucket="photos", Key=key, Body=out.getvalue())
    ok(shell, THUMBNAILS)
    table = shell.user_ns["thumbs"]
    assert len(table) == 50
    assert set(table.key) == set(keys)
    assert (table.status == "Succeeded").all(), table[table.status != "Succeeded"].error.tolist()
    sizes = [json.loads(r) for r in table.result]
    assert all(s["w"] <= 128 and s["h"] <= 128 for s in sizes)
    assert {s["w"] for s in sizes} == {128}
    for key in keys:
        thumb = Image.open(
            io.BytesIO(s3.get_object(Bucket="photos", Key=f"thumbs/{key}")["Body"].read())
        )
        assert max(thumb.size) == 128

    # The completion report is where and what AWS documents.
    record = last_job()
    report = record.handle["report"]
    index_key = f"{report['prefix']}/job-{record.job_id}/manifest.json"
    index = json.loads(s3.get_object(Bucket=report["bucket"], Key=index_key)["Body"].read())
    assert index["Format"] == "Report_CSV_20180820"
    assert index["ReportSchema"] == (
        "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", index["ReportCreationDate"])
    (result,) = index["Results"]
    assert result["TaskExecutionStatus"] == "succeeded" and result["Bucket"] == report["bucket"]
    assert re.fullmatch(
        rf"{report['prefix']}/job-{record.job_id}/results/[0-9a-f]{{40}}\.csv", result["Key"]
    )
    body = s3.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"].read()
    assert hashlib.md5(body).hexdigest() == result["MD5Checksum"]
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert len(rows) == 50 and {len(r) for r in rows} == {7}
    for bucket, _key, version, task_status, http, error_code, message in rows:
        assert (bucket, version, task_status, http, error_code) == (
            "photos",
            "",
            "succeeded",
            "200",
            "",
        )
        assert json.loads(message)["w"] == 128
    # Keys in the report are the manifest's URL-encoded form.
    assert "raw/a%20b.png" in {r[1] for r in rows} and "raw/x%2By.png" in {r[1] for r in rows}


def test_failures_are_rows_with_their_message(shell, s3):
    manifest = put_manifest(s3, "third.csv", [f"photos,k{i}" for i in range(30)])
    ok(
        shell,
        f"%%s3batch --manifest {manifest} --output-var t\n"
        "def process(bucket, key):\n"
        "    if int(key[1:]) % 3 == 0:\n"
        "        raise ValueError(f'cannot handle {key}')\n"
        "    return key\n",
    )
    table = shell.user_ns["t"]
    failed = table[table.status != "Succeeded"]
    assert len(table) == 30 and len(failed) == 10
    assert set(failed.status) == {"PermanentFailure"}
    assert all(
        e == f"ValueError: cannot handle {k}" for k, e in zip(failed.key, failed.error, strict=True)
    )
    assert last_job().state == "Complete"  # per-task failures do not fail the job


def test_retries_timeouts_and_crashes(shell, s3, tmp_path):
    shell.user_ns["counter_dir"] = str(tmp_path)
    manifest = put_manifest(
        s3,
        "modes.csv",
        ["photos,ok-1", "photos,temp-1", "photos,sleep-1", "photos,exit-1", "photos,ok-2"],
    )
    ok(
        shell,
        f"%%s3batch --manifest {manifest} --timeout 2 --concurrency 3 --output-var t\n"
        "import os, time\n"
        "from jupyter_remote import TemporaryFailure\n"
        "def process(bucket, key):\n"
        "    if key.startswith('temp'):\n"
        "        path = os.path.join(counter_dir, key)\n"
        "        with open(path, 'a') as f:\n"
        "            f.write('x')\n"
        "        if os.path.getsize(path) <= 2:\n"
        "            raise TemporaryFailure('not yet')\n"
        "    if key.startswith('sleep'):\n"
        "        time.sleep(30)\n"
        "    if key.startswith('exit'):\n"
        "        os._exit(1)\n"
        "    return 'done ' + key\n",
    )
    rows = {r["key"]: r for r in shell.user_ns["t"].to_dict("records")}
    assert rows["temp-1"]["status"] == "Succeeded" and rows["temp-1"]["result"] == '"done temp-1"'
    assert (tmp_path / "temp-1").read_text() == "xxx"  # two TemporaryFailures, then success
    assert rows["sleep-1"]["status"] == "PermanentFailure"
    assert "Task timed out after 2.00 seconds" in rows["sleep-1"]["error"]
    assert rows["sleep-1"]["error"].startswith("Lambda returned function error: ")
    assert rows["exit-1"]["status"] == "PermanentFailure"
    assert "Runtime exited with error: exit status 1" in rows["exit-1"]["error"]
    assert rows["ok-1"]["status"] == rows["ok-2"]["status"] == "Succeeded"


def test_threshold_fails_the_job_and_the_report_is_still_written(shell, s3):
    from jupyter_remote.errors import JobFailedError
    from jupyter_remote.s3batch import s3batch

    manifest = put_manifest(s3, "many.csv", [f"photos,n{i}" for i in range(1200)])
    job = s3batch(
        "def process(bucket, key):\n"
        "    if int(key[1:]) % 12 < 7:\n"
        "        raise RuntimeError('no')\n",
        user_ns={},
        manifest=manifest,
        wait=False,
    )
    with pytest.raises(JobFailedError) as info:
        job.wait({}, timeout=90)
    assert info.value.state == "Failed"
    assert "TaskFailureThresholdExceeded" in info.value.reason
    raw = job.status().raw
    summary = raw["ProgressSummary"]
    run_ = summary["NumberOfTasksSucceeded"] + summary["NumberOfTasksFailed"]
    assert summary["TotalNumberOfTasks"] == 1200
    assert 1000 <= run_ < 1200 and summary["NumberOfTasksFailed"] * 2 > run_
    table = job.table()
    assert (
        len(table) == run_
        and (table.status == "PermanentFailure").sum() == summary["NumberOfTasksFailed"]
    )
    assert {r["TaskExecutionStatus"] for r in job.report_index()["Results"]} == {
        "succeeded",
        "failed",
    }


def test_schema_2_user_args_and_schema_1(shell, s3):
    manifest = put_manifest(s3, "args.csv", ["photos,a%20key"])
    cell = "def process(bucket, key, **kw):\n    return [bucket, key, kw]\n"
    ok(
        shell,
        f"%%s3batch --manifest {manifest} --user-arg k=v --user-arg n=3 --output-var t2\n{cell}",
    )
    assert json.loads(shell.user_ns["t2"].result[0]) == ["photos", "a key", {"k": "v", "n": "3"}]
    ok(shell, f"%%s3batch --manifest {manifest} --schema 1.0 --output-var t1\n{cell}")
    assert json.loads(shell.user_ns["t1"].result[0]) == ["photos", "a key", {}]
    assert last_job().request["Operation"]["LambdaInvoke"]["InvocationSchemaVersion"] == "1.0"


def test_raw_handler_and_notebook_variables(shell, s3):
    manifest = put_manifest(s3, "raw.csv", ["photos,r1", "photos,r2"])
    ok(shell, "suffix = '!'\n")
    ok(
        shell,
        f"%%s3batch --manifest {manifest} --output-var t\n"
        "def handler(event, context):\n"
        "    task = event['tasks'][0]\n"
        "    left = context.get_remaining_time_in_millis() > 0\n"
        "    return {'invocationSchemaVersion': event['invocationSchemaVersion'],\n"
        "            'invocationId': event['invocationId'],\n"
        "            'treatMissingKeysAs': 'PermanentFailure',\n"
        "            'results': [{'taskId': task['taskId'], 'resultCode': 'Succeeded',\n"
        "                         'resultString': task['s3Key'] + suffix + str(left)}]}\n",
    )
    assert sorted(shell.user_ns["t"].result) == ["r1!True", "r2!True"]


def test_malformed_manifest_rows_become_failed_tasks(shell, s3):
    manifest = put_manifest(
        s3, "bad.csv", ["photos,good-1", "photos", "photos,a,b", "BAD BUCKET!,k", "photos,good-2"]
    )
    ok(
        shell,
        f"%%s3batch --manifest {manifest} --output-var t\n"
        "def process(bucket, key):\n    return 1\n",
    )
    table = shell.user_ns["t"]
    assert sorted(table[table.status == "Succeeded"].key) == ["good-1", "good-2"]
    bad = table[table.status != "Succeeded"]
    assert len(bad) == 3 and set(bad.status) == {"InvalidManifestContent"}
    assert any("has 1 field(s)" in e for e in bad.error)


def test_dry_run_request_passes_botocore_validation(shell, s3, capsys):
    from jupyter_remote.jobstore import JobStore
    from jupyter_remote.spec.validation import validate_with_botocore

    for i in range(3):
        s3.put_object(Bucket="photos", Key=f"dry/{i}", Body=b"x")
    before = len(JobStore().list())
    ok(
        shell,
        "%%s3batch --bucket photos --prefix dry/ --dry-run --priority 7 --confirm "
        "--tag team=imaging --tag run:id=7\n"
        "def process(b, k):\n    return 0\n",
    )
    out = capsys.readouterr().out
    shown = json.loads(out[out.index("{") : out.rindex("}") + 1])
    request = shown["CreateJob"]
    validate_with_botocore("s3control", "CreateJob", request)
    function = dict(shown["CreateFunction"], Code={"ZipFile": b"x"})
    validate_with_botocore("lambda", "CreateFunction", function)
    assert request["Priority"] == 7 and request["ConfirmationRequired"] is True
    assert request["Tags"] == [
        {"Key": "team", "Value": "imaging"},
        {"Key": "run:id", "Value": "7"},
    ]
    assert request["AccountId"] == "000000000000"
    assert re.fullmatch(
        r"arn:aws:lambda:us-east-1:000000000000:function:jupyter-remote-[0-9a-f]{12}:1",
        request["Operation"]["LambdaInvoke"]["FunctionArn"],
    )
    assert (
        shown["CreateFunction"]["Environment"]["Variables"]["JUPYTER_REMOTE_SIGNING_KEY"] == "***"
    )
    assert len(JobStore().list()) == before


def test_etag_mismatch_fails_the_job(shell, s3, monkeypatch):
    from jupyter_remote import s3batch_manifest
    from jupyter_remote.errors import JobFailedError
    from jupyter_remote.s3batch import s3batch

    real = s3batch_manifest.locate_manifest
    monkeypatch.setattr(
        s3batch_manifest,
        "locate_manifest",
        lambda client, uri: real(client, uri).__class__(uri=uri, etag="0" * 32),
    )
    manifest = put_manifest(s3, "etag.csv", ["photos,e1"])
    with pytest.raises(JobFailedError) as info:
        s3batch("def process(b, k):\n    return 1\n", user_ns={}, manifest=manifest)
    assert info.value.state == "Failed" and "ManifestETagMismatch" in info.value.reason
    assert last_job().state == "Failed"


def test_confirm_then_cancel_lifecycle(shell, s3):
    from jupyter_remote.errors import JobFailedError, JupyterRemoteError
    from jupyter_remote.s3batch import S3BatchJob, s3batch

    manifest = put_manifest(s3, "confirm.csv", ["photos,c1", "photos,c2"])
    job = s3batch("def process(b, k):\n    return k\n", user_ns={}, manifest=manifest, confirm=True)
    deadline = time.monotonic() + 30
    while job.status().state != "Suspended" and time.monotonic() < deadline:
        time.sleep(0.1)
    status = job.status()
    assert status.state == "Suspended" and status.raw["SuspendedCause"]
    again = S3BatchJob.find(job.job_id[:13])  # as another kernel would find it
    again.confirm()
    assert sorted(again.wait({}, timeout=60).result) == ['"c1"', '"c2"']
    with pytest.raises(JupyterRemoteError, match="not Suspended"):
        job.confirm()

    slow = s3batch(
        "import time\ndef process(b, k):\n    time.sleep(30)\n",
        user_ns={},
        manifest=manifest,
        wait=False,
    )
    while slow.status().state != "Active" and time.monotonic() < deadline + 30:
        time.sleep(0.1)
    slow.stop()
    with pytest.raises(JobFailedError) as info:
        slow.wait({}, timeout=30)
    assert info.value.state == "Cancelled"
    assert slow.status().raw["TerminationDate"]


def test_status_is_describe_job_shaped(shell, s3):
    import botocore.session
    from botocore.validate import ParamValidator

    import jupyter_remote.s3batch

    manifest = put_manifest(s3, "shape.csv", ["photos,s1"])
    # The submodule is callable: jupyter_remote.s3batch(...) is the API whatever was imported.
    job = jupyter_remote.s3batch(
        "def process(b, k):\n    return 1\n", user_ns={}, manifest=manifest
    )
    model = botocore.session.get_session().get_service_model("s3control")
    shape = model.operation_model("DescribeJob").output_shape.members["Job"]
    report = ParamValidator().validate(job.status().raw, shape)
    assert not report.has_errors(), report.generate_report()
    raw = job.status().raw
    assert raw["Status"] == "Complete" and raw["JobArn"].endswith(f":job/{job.job_id}")
    assert raw["ProgressSummary"]["NumberOfTasksSucceeded"] == 1


def test_higher_priority_runs_first(shell, s3):
    from jupyter_remote.s3batch import s3batch

    blocker = put_manifest(s3, "blocker.csv", ["photos,b1"])
    first = s3batch(
        "import time\ndef process(b, k):\n    time.sleep(3)\n",
        user_ns={},
        manifest=blocker,
        wait=False,
    )
    while first.status().state != "Active":
        time.sleep(0.1)
    cell = "import time\ndef process(b, k):\n    return time.time()\n"
    low = s3batch(
        cell,
        user_ns={},
        manifest=put_manifest(s3, "low.csv", ["photos,l1"]),
        priority=1,
        wait=False,
    )
    high = s3batch(
        cell,
        user_ns={},
        manifest=put_manifest(s3, "high.csv", ["photos,h1"]),
        priority=100,
        wait=False,
    )
    times = {}
    for name, job in (("low", low), ("high", high)):
        times[name] = float(job.wait({}, timeout=60).result[0])
    assert times["high"] < times["low"]
    first.wait({}, timeout=60)


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("--bucket photos", "x = 1\n", "must define process(bucket, key)"),
        ("", "def process(b, k): pass\n", "give either --manifest"),
        ("--bucket photos --manifest s3://batch/m.csv", "def process(b, k): pass\n", "give either"),
        ("--bucket photos --user-arg nokey", "def process(b, k): pass\n", "KEY=VALUE"),
        (
            "--bucket photos --schema 1.0 --user-arg a=b",
            "def process(b, k): pass\n",
            "--schema 2.0",
        ),
        ("--bucket photos --timeout 901", "def process(b, k): pass\n", "--timeout"),
        ("--bucket photos --memory 64", "def process(b, k): pass\n", "--memory"),
        ("--bucket photos --priority -1", "def process(b, k): pass\n", "--priority"),
        ("--manifest s3://batch/none.csv", "def process(b, k): pass\n", "does not exist"),
        ("--bucket photos --prefix nothing-here/", "def process(b, k): pass\n", "no objects under"),
    ],
)
def test_user_mistakes_are_usage_errors(shell, s3, line, cell, message):
    from IPython.core.error import UsageError

    from jupyter_remote.jobstore import JobStore

    def staged():
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket="jupyter-remote-staging", Prefix="jupyter-remote/s3batch-manifests/"
        )
        try:
            return [o["Key"] for page in pages for o in page.get("Contents", [])]
        except s3.exceptions.NoSuchBucket:
            return []

    before, jobs = staged(), len(JobStore().list())
    result = run(shell, f"%%s3batch {line}\n{cell}")
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert message in str(result.error_in_exec)
    assert staged() == before and len(JobStore().list()) == jobs  # nothing written


def test_rerun_failed_runs_only_the_failed_keys(shell, s3):
    from jupyter_remote.s3batch_job import S3BatchJob
    from jupyter_remote.spec.s3batch import parse_object_arn

    present = ["rr/one.txt", "rr/two.txt"]
    missing = ["rr/a b+c.txt", "rr/café 50%.txt"]
    for key in present:
        s3.put_object(Bucket="photos", Key=key, Body=b"x")
    uri = put_manifest(s3, "rr.csv", [f"photos,{quote(k, safe='/')}" for k in [*present, *missing]])
    ok(
        shell,
        f"""%%s3batch --manifest {uri} --engine local --no-widgets --output-var first
import boto3
s3 = boto3.client("s3")
def process(bucket, key):
    return len(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
""",
    )
    first = shell.user_ns["first"]
    assert sorted(first[first.status != "Succeeded"].key) == sorted(missing)
    for key in missing:  # the cause of the failures, fixed
        s3.put_object(Bucket="photos", Key=key, Body=b"yy")
    job = S3BatchJob.find(last_job().job_id)
    again = job.rerun_failed(output_var="second", concurrency=2)
    assert again.job_id != job.job_id and again.engine.name == "local"
    namespace: dict = {}
    table = again.wait(namespace, poll_interval=0.1)
    assert namespace["second"] is table
    assert sorted(table.key) == sorted(missing)  # only the previously failed keys
    assert table.status.tolist() == ["Succeeded", "Succeeded"]
    assert table.result.tolist() == ["2", "2"]
    manifest = again.record.request["Manifest"]["Location"]["ObjectArn"]
    assert manifest.endswith(f"s3batch-manifests/{again.job_id}.csv")
    where = parse_object_arn(manifest)
    body = s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read().decode()
    assert "rr/a%20b%2Bc.txt" in body and "rr/caf%C3%A9%2050%25.txt" in body
