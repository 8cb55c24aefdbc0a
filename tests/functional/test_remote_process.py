"""%%remote_process end to end in a real IPython shell, on the local engine and embedded S3."""

from __future__ import annotations

import json
import threading

import pytest
from cells import ok, run

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def s3(shell):
    import jupyter_remote

    client = jupyter_remote.s3_client()
    if "demo" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket="demo")
    return client


def test_issue_example_writes_back_and_uploads(shell, s3, capsys):
    for i in range(3):
        s3.put_object(Bucket="demo", Key=f"example/raw/part-{i}.txt", Body=f"line {i}\n".encode())
    ok(
        shell,
        "import numpy as np, pandas as pd\n"
        "df = pd.DataFrame({'x': np.arange(100_000) % 7, 'y': np.random.rand(100_000)})\n"
        "def summarize(frame): return frame.groupby('x').y.mean()\n",
    )
    ok(
        shell,
        "%%remote_process --instance-type ml.m5.xlarge --input raw=s3://demo/example/raw/ "
        "--output out=s3://demo/example/out/\n"
        "import os\n"
        "agg = summarize(df)\n"
        "agg.to_csv(f\"{OUTPUTS['out']}/agg.csv\")\n"
        "n = len(agg)\n"
        "raw_files = sorted(os.listdir(INPUTS['raw']))\n"
        "print('remote says hello', n)\n",
    )
    ns = shell.user_ns
    expected = ns["df"].groupby("x").y.mean()
    assert ns["n"] == 7
    assert ns["agg"].equals(expected)
    assert ns["raw_files"] == ["part-0.txt", "part-1.txt", "part-2.txt"]
    body = s3.get_object(Bucket="demo", Key="example/out/agg.csv")["Body"].read().decode()
    assert body.splitlines()[0] == "x,y" and len(body.splitlines()) == 8
    out = capsys.readouterr().out
    assert "Running on the local engine" in out
    assert "remote says hello 7" in out  # the cell's stdout was shown


def test_remote_exception_is_reraised_as_its_own_type(shell, s3):
    from jupyter_remote.errors import RemoteExecutionError

    ok(shell, "def boom(v):\n    return 1 / v\n")
    result = run(shell, "%%remote_process\nx = 5\ny = boom(0)\n")
    err = result.error_in_exec
    assert isinstance(err, ZeroDivisionError)
    assert isinstance(err, RemoteExecutionError)
    assert "line 2, in <module>" in err.remote_traceback
    assert "y = boom(0)" in err.remote_traceback  # the cell's own source line
    assert "in boom" in err.remote_traceback
    assert "x" not in shell.user_ns  # nothing written back from a failed cell
    rendered = "\n".join(err._render_traceback_())
    assert "ZeroDivisionError" in rendered


def test_variables_of_many_kinds_travel(shell, s3):
    ok(
        shell,
        "import numpy as np, pandas as pd, threading\n"
        "arr = np.arange(12).reshape(3, 4)\n"
        "frame = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})\n"
        "dl = {'k': [1, 2, 3]}\n"
        "def double(v):\n    return 2 * v\n"
        "class Point:\n"
        "    def __init__(self, x): self.x = x\n"
        "    def norm(self): return abs(self.x)\n"
        "sq = lambda v: v * v\n"
        "def make_adder(k):\n    def add(v):\n        return v + k\n    return add\n"
        "add3 = make_adder(3)\n"
        "pt = Point(-4)\n",
    )
    ok(
        shell,
        "%%remote_process\n"
        "r_arr = arr.sum(axis=0) * 1\n"
        "r_frame = frame.assign(c=frame.a * 10)\n"
        "r_dl = dl['k'][::-1]\n"
        "r_fn = double(21)\n"
        "r_cls = Point(5).norm()\n"
        "r_lambda = sq(9)\n"
        "r_closure = add3(1)\n"
        "r_inst = pt.norm()\n"
        "new_pt = Point(7)\n",
    )
    ns = shell.user_ns
    assert list(ns["r_arr"]) == [12, 15, 18, 21]
    assert list(ns["r_frame"].c) == [10, 20]
    assert ns["r_dl"] == [3, 2, 1]
    assert (ns["r_fn"], ns["r_cls"], ns["r_lambda"], ns["r_closure"], ns["r_inst"]) == (
        42,
        5,
        81,
        4,
        4,
    )
    assert ns["new_pt"].x == 7 and ns["new_pt"].norm() == 7


def test_in_place_changes_and_deletes_come_back(shell, s3):
    ok(shell, "d = {'a': 0}\nlst = [1]\nuntouched = [9]\ngone = 'x'\n")
    ok(shell, "%%remote_process\nd['k'] = 1\nlst.append(2)\ntotal = sum(untouched)\ndel gone\n")
    ns = shell.user_ns
    assert ns["d"] == {"a": 0, "k": 1}
    assert ns["lst"] == [1, 2]
    assert ns["total"] == 9
    assert "gone" not in ns


@pytest.mark.parametrize(
    ("setup", "name", "type_name"),
    [
        ("import os\nfh = open(os.devnull)", "fh", "TextIOWrapper"),
        ("import threading\nlk = threading.Lock()", "lk", "lock"),
    ],
)
def test_unpicklable_variable_refused_before_upload(shell, s3, store, setup, name, type_name):
    from IPython.core.error import UsageError

    from jupyter_remote.jobstore import JobStore

    ok(shell, setup)
    before = len(JobStore().list())
    staged = list(_staged_keys(s3))
    result = run(shell, f"%%remote_process\nprint({name})\n")
    err = result.error_in_exec
    assert isinstance(err, UsageError)
    assert repr(name) in str(err) and type_name in str(err) and f"--exclude {name}" in str(err)
    assert len(JobStore().list()) == before
    assert list(_staged_keys(s3)) == staged  # nothing uploaded


def _staged_keys(s3):
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="jupyter-remote-staging")
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"]
    except s3.exceptions.NoSuchBucket:
        return


def test_sharded_input_across_two_instances(shell, s3):
    import jupyter_remote

    keys = [f"shard/in/obj-{i:02d}.txt" for i in range(10)]
    for key in keys:
        s3.put_object(Bucket="demo", Key=key, Body=key.encode())
    job = jupyter_remote.remote_process(
        "import os, json\n"
        "mine = sorted(os.listdir(INPUTS['data']))\n"
        "root = os.environ['JUPYTER_REMOTE_OPT_ML']\n"
        "host = json.load(open(root + '/config/resourceconfig.json'))['current_host']\n"
        "print('HOST', host, 'FILES', ' '.join(mine))\n"
        "open(os.path.join(OUTPUTS['out'], host + '.json'), 'w').write(json.dumps(mine))\n",
        user_ns={},
        instance_count=2,
        inputs=["data=s3://demo/shard/in/"],
        shard=["data"],
        outputs=["out=s3://demo/shard/out/"],
    )
    seen = {
        host: json.loads(s3.get_object(Bucket="demo", Key=f"shard/out/{host}.json")["Body"].read())
        for host in ("algo-1", "algo-2")
    }
    assert set(seen["algo-1"]).isdisjoint(seen["algo-2"])
    assert sorted(seen["algo-1"] + seen["algo-2"]) == sorted(k.rsplit("/", 1)[1] for k in keys)
    assert seen["algo-1"] and seen["algo-2"]
    logs = {t.stream: t.read(final=True) for t in job.engine.logs(job.handle)}
    assert any("HOST algo-1" in line for line in logs["algo-1"])
    assert not any("HOST algo-2" in line for line in logs["algo-1"])
    assert any("HOST algo-2" in line for line in logs["algo-2"])


def test_max_runtime_stops_the_job_with_a_reason(shell, s3):
    from jupyter_remote.errors import JobFailedError

    result = run(shell, "%%remote_process --max-runtime 2\nimport time\ntime.sleep(60)\nz = 1\n")
    err = result.error_in_exec
    assert isinstance(err, JobFailedError)
    assert err.state == "Stopped"
    assert "MaxRuntimeExceeded" in err.reason
    assert "z" not in shell.user_ns


def test_rerun_uploads_only_what_changed(shell, s3):
    import jupyter_remote

    ns = {"big": list(range(50_000))}
    cell = "m = max(big)\n"
    first = jupyter_remote.remote_process(cell, user_ns=ns)
    second = jupyter_remote.remote_process(cell, user_ns=ns)
    assert ns["m"] == 49_999
    up1, up2 = first.handle.data["uploaded"], second.handle.data["uploaded"]
    assert any(k.endswith("/payload.bin") for k in up1 + first.handle.data["skipped"])
    # Only the per-job document changes (it carries this job's signature); cell, payload and
    # runtime are content-addressed and already there.
    assert [k.rsplit("/", 1)[1] for k in up2] == ["job.json"]
    assert {k.rsplit("/", 1)[1] for k in second.handle.data["skipped"]} >= {
        "payload.bin",
        "cell.py",
        "processing_bootstrap.py",
        "payload.py",
    }
    ns["big"].append(10**6)
    third = jupyter_remote.remote_process(cell, user_ns=ns)
    assert sorted(k.rsplit("/", 1)[1] for k in third.handle.data["uploaded"]) == [
        "job.json",
        "payload.bin",
    ]
    assert ns["m"] == 10**6


def test_dry_run_prints_request_and_submits_nothing(shell, s3, capsys):
    from jupyter_remote.jobstore import JobStore

    before = len(JobStore().list())
    ok(shell, "%%remote_process --dry-run --instance-type ml.c5.2xlarge --env MODE=fast\nq = 1\n")
    out = capsys.readouterr().out
    request = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.c5.2xlarge"
    assert request["Environment"]["MODE"] == "fast"
    assert request["Environment"]["JUPYTER_REMOTE_SIGNING_KEY"] == "***"
    assert len(JobStore().list()) == before
    assert "q" not in shell.user_ns


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--instance-type ml.m5.huge", "not a SageMaker Processing instance type"),
        ("--input raw=s3:///nobucket", "names no bucket"),
        ("--input raw", "expected NAME=s3://bucket/prefix"),
        ("--module /does/not/exist.py", "does not exist"),
        ("--volume-size 0", "between 1 and 16384"),
        ("--env 1BAD=x", "names must match"),
        ("--shard nope", "not given as --input"),
    ],
)
def test_bad_options_are_usage_errors(shell, s3, line, message):
    from IPython.core.error import UsageError

    result = run(shell, f"%%remote_process {line}\nq = 1\n")
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert message in str(result.error_in_exec)


def test_no_wait_then_attach(shell, s3):
    import jupyter_remote

    ns = {"base": 40}
    job = jupyter_remote.remote_process(
        "import time\ntime.sleep(1)\nanswer = base + 2\n", user_ns=ns, wait=False
    )
    assert "answer" not in ns
    assert job.job_id in [r.job_id for r in jupyter_remote.jobs()]
    jupyter_remote.attach(job.job_id, user_ns=ns, timeout=60)
    assert ns["answer"] == 42


def test_stop_from_another_thread(shell, s3):
    import jupyter_remote
    from jupyter_remote.errors import JobFailedError

    job = jupyter_remote.remote_process("import time\ntime.sleep(120)\n", user_ns={}, wait=False)
    stopper = threading.Timer(1.0, job.stop)
    stopper.start()
    with pytest.raises(JobFailedError) as info:
        job.wait({}, timeout=60)
    assert info.value.state == "Stopped"


def test_modules_requirements_and_config_command(shell, s3, tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("def greet(n):\n    return f'hi {n}'\n")
    single = tmp_path / "helper.py"
    single.write_text("VALUE = 41\n")
    req = tmp_path / "requirements.txt"
    req.write_text("# nothing to install\n")
    ok(
        shell,
        f"%%remote_process --module {pkg} --module {single} --requirements {req} "
        f'--config-command "echo configured > $JUPYTER_REMOTE_OPT_ML/configured.txt"\n'
        "import mypkg, helper, os\n"
        "g = mypkg.greet(helper.VALUE + 1)\n"
        "root = os.environ['JUPYTER_REMOTE_OPT_ML']\n"
        "configured = open(root + '/configured.txt').read().strip()\n",
    )
    assert shell.user_ns["g"] == "hi 42"
    assert shell.user_ns["configured"] == "configured"


def test_continuous_output_is_uploaded_while_the_cell_runs(shell, s3):
    # The cell itself checks S3 with plain boto3 (no endpoint given): that proves the job sees
    # the endpoint through AWS_ENDPOINT_URL_S3, and that Continuous uploads happen mid-run.
    ok(
        shell,
        "%%remote_process --output live=s3://demo/live/ --continuous live\n"
        "import boto3, time, pathlib\n"
        "pathlib.Path(OUTPUTS['live'], 'early.txt').write_text('early')\n"
        "client = boto3.client('s3')\n"
        "deadline = time.monotonic() + 30\n"
        "seen_mid_run = False\n"
        "while time.monotonic() < deadline and not seen_mid_run:\n"
        "    listing = client.list_objects_v2(Bucket='demo', Prefix='live/early')\n"
        "    seen_mid_run = listing.get('KeyCount', 0) == 1\n"
        "    time.sleep(0.2)\n",
    )
    assert shell.user_ns["seen_mid_run"] is True


def test_config_defaults_apply(shell, s3, capsys):
    ok(shell, "%config RemoteMagics.instance_type = 'ml.c5.4xlarge'")
    try:
        ok(shell, "%%remote_process --dry-run\nq = 1\n")
    finally:
        ok(shell, "%config RemoteMagics.instance_type = 'ml.m5.xlarge'")
    out = capsys.readouterr().out
    assert '"InstanceType": "ml.c5.4xlarge"' in out


def test_custom_endpoint_from_environment(shell, moto_env):
    """With AWS_ENDPOINT_URL set (moto here), the local engine uses it instead of embedded S3."""
    import boto3

    import jupyter_remote

    client = boto3.client("s3", endpoint_url=moto_env, region_name="us-east-1")
    client.create_bucket(Bucket="moto-demo")
    job = jupyter_remote.remote_process(
        "import pathlib\npathlib.Path(OUTPUTS['o'], 'r.txt').write_text('via moto')\nw = 1\n",
        user_ns={},
        outputs=["o=s3://moto-demo/o/"],
    )
    assert job.handle.data["endpoint"]["kind"] == "custom"
    body = client.get_object(Bucket="moto-demo", Key="o/r.txt")["Body"].read()
    assert body == b"via moto"
