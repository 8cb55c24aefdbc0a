"""The Lambda handler wrapper: events of both schemas, key decoding, outcomes, response shape."""

from __future__ import annotations

import json
import sys

import pytest

from jupyter_remote.runtime import lambda_handler, payload

KEY = b"k" * 32


def make_job(tmp_path, monkeypatch, source: str, values: dict | None = None, **document):
    folder = tmp_path / "jupyter_remote_job"
    folder.mkdir()
    digest = payload.dump(values or {}, folder / "payload.bin")
    (folder / "cell.py").write_text(source)
    job = {
        "format": 1,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "entry": "process",
        "cell": "cell.py",
        "payload": {
            "path": "payload.bin",
            "sha256": digest,
            "signature": payload.sign(KEY, "payload", digest),
        },
        "imports": {},
        **document,
    }
    (folder / "job.json").write_text(json.dumps(job))
    monkeypatch.setenv(lambda_handler.JOB_ENV, str(folder / "job.json"))
    monkeypatch.setenv(lambda_handler.KEY_ENV, KEY.hex())
    lambda_handler.reset()
    return folder


@pytest.fixture(autouse=True)
def _fresh():
    lambda_handler.reset()
    yield
    lambda_handler.reset()


def event(schema="2.0", key="a%20b", user_args=None, version=None, tasks=None):
    job = {"id": "job-1"}
    if user_args:
        job["userArguments"] = user_args
    task = {"taskId": "t1", "s3Key": key, "s3VersionId": version}
    if schema == "2.0":
        task["s3Bucket"] = "photos"
    else:
        task["s3BucketArn"] = "arn:aws:s3:::photos"
    return {
        "invocationSchemaVersion": schema,
        "invocationId": "inv-1",
        "job": job,
        "tasks": tasks or [task],
    }


ECHO = "def process(bucket, key, **kw):\n    return {'bucket': bucket, 'key': key, 'kw': kw}\n"


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_response_shape_and_bucket_for_both_schemas(tmp_path, monkeypatch, schema):
    make_job(tmp_path, monkeypatch, ECHO)
    reply = lambda_handler.handler(event(schema), None)
    assert list(reply) == [
        "invocationSchemaVersion",
        "treatMissingKeysAs",
        "invocationId",
        "results",
    ]
    assert reply["invocationSchemaVersion"] == schema
    assert reply["invocationId"] == "inv-1"
    assert reply["treatMissingKeysAs"] == "PermanentFailure"
    (result,) = reply["results"]
    assert list(result) == ["taskId", "resultCode", "resultString"]
    assert result["taskId"] == "t1" and result["resultCode"] == "Succeeded"
    assert json.loads(result["resultString"]) == {"bucket": "photos", "key": "a b", "kw": {}}


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("a%20b.png", "a b.png"),
        ("x%2By.png", "x+y.png"),
        ("x+y.png", "x+y.png"),  # unquote, as the AWS samples: a literal "+" stays "+"
        ("50%25.png", "50%.png"),
        ("caf%C3%A9/%E6%97%A5.png", "café/日.png"),
    ],
)
def test_keys_are_url_decoded(tmp_path, monkeypatch, encoded, decoded):
    make_job(tmp_path, monkeypatch, ECHO)
    reply = lambda_handler.handler(event(key=encoded), None)
    assert json.loads(reply["results"][0]["resultString"])["key"] == decoded


def test_user_arguments_become_keywords_only_in_schema_2(tmp_path, monkeypatch):
    make_job(tmp_path, monkeypatch, ECHO)
    reply = lambda_handler.handler(event(user_args={"k": "v", "n": "3"}), None)
    assert json.loads(reply["results"][0]["resultString"])["kw"] == {"k": "v", "n": "3"}
    reply = lambda_handler.handler(event("1.0", user_args={"k": "v"}), None)
    assert json.loads(reply["results"][0]["resultString"])["kw"] == {}


def test_version_id_passed_when_process_asks_for_it(tmp_path, monkeypatch):
    source = "def process(bucket, key, version_id=None):\n    return version_id\n"
    make_job(tmp_path, monkeypatch, source)
    reply = lambda_handler.handler(event(version="v7"), None)
    assert reply["results"][0]["resultString"] == '"v7"'


OUTCOMES = """
from jupyter_remote.runtime.lambda_handler import PermanentFailure, TemporaryFailure
def process(bucket, key):
    if key == "temp":
        raise TemporaryFailure("slow down")
    if key == "perm":
        raise PermanentFailure("no such thing")
    if key == "boom":
        raise ValueError("bad value")
    return [1, key]
"""


@pytest.mark.parametrize(
    ("key", "code", "text"),
    [
        ("ok", "Succeeded", '[1, "ok"]'),
        ("temp", "TemporaryFailure", "slow down"),
        ("perm", "PermanentFailure", "no such thing"),
        ("boom", "PermanentFailure", "ValueError: bad value"),
    ],
)
def test_outcome_mapping(tmp_path, monkeypatch, key, code, text):
    make_job(tmp_path, monkeypatch, OUTCOMES)
    (result,) = lambda_handler.handler(event(key=key), None)["results"]
    assert (result["resultCode"], result["resultString"]) == (code, text)


def test_notebook_variables_and_cold_start_once(tmp_path, monkeypatch):
    source = (
        "import itertools\nCOUNT = itertools.count()\nnext(COUNT)\n"
        "def process(b, k):\n    return factor * next(COUNT)\n"
    )
    make_job(tmp_path, monkeypatch, source, {"factor": 10})
    first = lambda_handler.handler(event(), None)["results"][0]["resultString"]
    second = lambda_handler.handler(event(), None)["results"][0]["resultString"]
    assert (first, second) == ("10", "20")  # the cell ran once: COUNT kept counting


def test_raw_handler_gets_the_event_and_its_reply_is_returned(tmp_path, monkeypatch):
    source = (
        "def handler(event, context):\n"
        "    return {'echo': event['tasks'][0]['s3Key'], 'ctx': context}\n"
    )
    make_job(tmp_path, monkeypatch, source, entry="handler")
    assert lambda_handler.handler(event(key="a%20b"), "C") == {"echo": "a%20b", "ctx": "C"}


def test_long_result_strings_are_truncated_to_the_response_limit(tmp_path, monkeypatch):
    source = "def process(b, k):\n    return 'é' * 7_000_000\n"
    make_job(tmp_path, monkeypatch, source)
    reply = lambda_handler.handler(event(), None)
    text = reply["results"][0]["resultString"]
    assert text.endswith(lambda_handler.TRUNCATED_MARK)
    assert len(json.dumps(reply).encode()) <= lambda_handler.MAX_RESPONSE_BYTES


def test_truncate_keeps_short_strings_and_cuts_at_the_budget():
    assert lambda_handler.truncate("short", 100) == "short"
    cut = lambda_handler.truncate('"' * 1000, 200)
    assert len(json.dumps(cut).encode()) <= 200 and cut.endswith(lambda_handler.TRUNCATED_MARK)


def test_tampered_payload_is_refused(tmp_path, monkeypatch):
    folder = make_job(tmp_path, monkeypatch, ECHO, {"x": 1})
    data = bytearray((folder / "payload.bin").read_bytes())
    data[12] ^= 1
    (folder / "payload.bin").write_bytes(bytes(data))
    with pytest.raises(payload.SignatureError):
        lambda_handler.handler(event(), None)


def test_python_mismatch_is_refused(tmp_path, monkeypatch):
    make_job(tmp_path, monkeypatch, ECHO, python="2.7")
    with pytest.raises(RuntimeError, match="Python version mismatch"):
        lambda_handler.handler(event(), None)


def test_a_cell_without_process_or_handler_is_refused(tmp_path, monkeypatch):
    make_job(tmp_path, monkeypatch, "x = 1\n")
    with pytest.raises(RuntimeError, match="must define process"):
        lambda_handler.handler(event(), None)


def test_bucket_of_reads_both_forms():
    assert lambda_handler.bucket_of({"s3Bucket": "b1"}) == "b1"
    assert lambda_handler.bucket_of({"s3BucketArn": "arn:aws:s3:::b2"}) == "b2"
