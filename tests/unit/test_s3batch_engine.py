"""Pieces of the local S3 Batch engine: reply interpretation and the priority queue."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jupyter_remote.engines.local_s3batch_queue import JobQueue, wait_for_file
from jupyter_remote.engines.local_s3batch_tasks import interpret


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"results": [{"taskId": "t", "resultCode": "Succeeded", "resultString": "ok"}]},
            ("Succeeded", "ok"),
        ),
        (
            {"results": [{"taskId": "t", "resultCode": "TemporaryFailure", "resultString": "x"}]},
            ("TemporaryFailure", "x"),
        ),
        (
            {"results": [{"taskId": "t", "resultCode": "Succeeded", "resultString": {"a": 1}}]},
            ("Succeeded", '{"a": 1}'),
        ),
        ("not a dict", ("PermanentFailure", "Invalid JSON returned in Lambda payload")),
        ({"results": "nope"}, ("PermanentFailure", "Invalid JSON returned in Lambda payload")),
    ],
)
def test_interpret_reply(payload, expected):
    assert interpret(payload, "t") == expected


def test_missing_task_uses_treat_missing_keys_as():
    code, text = interpret({"treatMissingKeysAs": "Succeeded", "results": []}, "t")
    assert code == "Succeeded" and "treatMissingKeysAs=Succeeded" in text
    assert interpret({"results": [{"taskId": "other"}]}, "t")[0] == "PermanentFailure"
    code, text = interpret(
        {"results": [{"taskId": "t", "resultCode": "Maybe", "resultString": ""}]}, "t"
    )
    assert code == "PermanentFailure" and "Maybe" in text


def test_queue_orders_by_priority_then_age_and_drops_dead_supervisors(tmp_path):
    folder = tmp_path / "queue"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with JobQueue("low", 1, folder) as low, JobQueue("high", 9, folder) as high:
        ghost = JobQueue("ghost", 100, folder)
        ghost.entry.write_text(str(dead.pid))
        assert low._first() == high.entry.name
        assert not ghost.entry.exists()  # its supervisor is gone
        assert high.wait_turn(lambda: False)
        assert not high.entry.exists()
        assert low.wait_turn(lambda: True) is False  # cancelled while waiting
    assert os.listdir(folder) == ["active.lock"]


def test_wait_for_file(tmp_path):
    (tmp_path / "b").touch()
    assert wait_for_file(tmp_path, ("a", "b"), limit=1) == "b"
    assert wait_for_file(tmp_path, ("a",), limit=0.3) is None
