from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jupyter_remote.errors import JupyterRemoteError
from jupyter_remote.jobstore import (
    SCHEMA_VERSION,
    TERMINAL_STATES,
    AmbiguousJobIdError,
    JobNotFoundError,
    JobRecord,
    JobStore,
    JobStoreError,
)
from jupyter_remote.paths import DATA_DIR_ENV


def make(job_id: str, **overrides: Any) -> JobRecord:
    values: dict[str, Any] = {
        "job_id": job_id,
        "engine": "local",
        "kind": "processing",
        "state": "InProgress",
        "created": 1000.0,
        "updated": 1000.0,
        "request": {"ProcessingJobName": job_id, "Environment": {"A": "1"}, "Count": [1, 2]},
        "handle": {"key": "ab" * 32, "nested": {"cursors": {"stdout": 3}}},
        "writeback": {"assigns": ["x"], "deletes": [], "reads": ["df"]},
    }
    values.update(overrides)
    return JobRecord(**values)


def test_round_trip(store: JobStore) -> None:
    rec = make(
        "jr-2024-abc",
        cell="x = 1  # é ✓\n",
        notebook="/home/me/nb.ipynb",
        reason="why not",
        written_back=True,
    )
    store.record(rec)
    got = store.get("jr-2024-abc")
    assert got == rec
    assert got is not rec
    assert isinstance(got.written_back, bool)


def test_record_replaces_same_job_id(store: JobStore) -> None:
    store.record(make("j1", state="Submitting"))
    store.record(make("j1", state="InProgress", handle={"k": 2}))
    assert [r.state for r in store.list()] == ["InProgress"]
    assert store.get("j1").handle == {"k": 2}


def test_record_refuses_non_json_and_writes_nothing(store: JobStore) -> None:
    with pytest.raises(TypeError):
        store.record(make("j1", request={"when": object()}))
    assert store.list() == []


def test_update(store: JobStore) -> None:
    store.record(make("j1"))
    before = time.time()
    got = store.update("j1", state="Completed", reason="done", handle={"k": 1}, written_back=True)
    assert got.state == "Completed" and got.reason == "done"
    assert got.handle == {"k": 1} and got.written_back is True
    assert got.updated >= before and got.created == 1000.0
    assert store.get("j1") == got


def test_update_refuses_unknown_and_read_only_fields(store: JobStore) -> None:
    store.record(make("j1"))
    with pytest.raises(TypeError, match="colour"):
        store.update("j1", colour="red")
    with pytest.raises(TypeError, match="job_id"):
        store.update("j1", job_id="j2")
    assert store.get("j1") == make("j1")


def test_update_unknown_job(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError, match="nope"):
        store.update("nope", state="Failed")


def test_not_found_error(store: JobStore) -> None:
    store.record(make("present"))
    with pytest.raises(JobNotFoundError) as caught:
        store.get("absent")
    error = caught.value
    assert isinstance(error, JupyterRemoteError)
    assert isinstance(error, KeyError)
    assert error.job_id == "absent"
    message = str(error)
    assert message.startswith("no recorded job matches 'absent'")  # not KeyError's repr quoting
    assert str(store.path) in message
    assert "jupyter_remote.jobs()" in message


def test_get_by_prefix(store: JobStore) -> None:
    store.record(make("job-1", created=1.0))
    store.record(make("job-10", created=2.0))
    store.record(make("other-7", created=3.0))
    assert store.get("oth").job_id == "other-7"
    assert store.get("job-10").job_id == "job-10"
    # An exact id wins even though it is also a prefix of another id.
    assert store.get("job-1").job_id == "job-1"
    with pytest.raises(AmbiguousJobIdError) as caught:
        store.get("job-")
    error = caught.value
    assert isinstance(error, JobNotFoundError)
    assert sorted(error.matches) == ["job-1", "job-10"]
    assert "job-1" in str(error) and "job-10" in str(error) and "more of the job id" in str(error)


def test_prefix_is_literal_not_a_pattern(store: JobStore) -> None:
    store.record(make("a_b"))
    store.record(make("axb"))
    store.record(make("50%"))
    assert store.get("a_").job_id == "a_b"
    with pytest.raises(JobNotFoundError):
        store.get("%")
    with pytest.raises(JobNotFoundError):
        store.get("")


def test_list_filters_and_order(store: JobStore) -> None:
    store.record(make("a", engine="local", state="Completed", created=1.0))
    store.record(make("b", engine="sagemaker", state="InProgress", created=3.0))
    store.record(make("c", engine="local", state="Failed", created=2.0))
    store.record(make("d", engine="s3batch", kind="s3batch", state="Active", created=4.0))
    store.record(make("e", engine="s3batch", kind="s3batch", state="Cancelled", created=4.0))

    def ids(records: list[JobRecord]) -> list[str]:
        return [r.job_id for r in records]

    # Newest first; equal times in reverse order of recording.
    assert ids(store.list()) == ["e", "d", "b", "c", "a"]
    assert ids(store.list(engine="local")) == ["c", "a"]
    assert ids(store.list(states=["Failed", "Completed"])) == ["c", "a"]
    assert ids(store.list(states=iter(["Active"]))) == ["d"]
    assert store.list(states=[]) == []
    assert ids(store.list(active_only=True)) == ["d", "b"]
    assert ids(store.list(engine="s3batch", active_only=True)) == ["d"]
    assert ids(store.list(limit=2)) == ["e", "d"]
    assert store.list(limit=0) == []
    assert ids(store.list(engine="nope")) == []
    with pytest.raises(ValueError, match="limit"):
        store.list(limit=-1)


def test_terminal_states() -> None:
    assert {"Completed", "Failed", "Stopped", "Complete", "Cancelled"} == TERMINAL_STATES
    assert "InProgress" not in TERMINAL_STATES


def test_remove(store: JobStore) -> None:
    store.record(make("j1"))
    store.record(make("j2"))
    store.remove("j1")
    assert [r.job_id for r in store.list()] == ["j2"]
    with pytest.raises(JobNotFoundError):
        store.get("j1")
    with pytest.raises(JobNotFoundError, match="j1"):
        store.remove("j1")


def test_two_instances_share_one_file(tmp_path: Path) -> None:
    first = JobStore(tmp_path / "jobs.sqlite3")
    second = JobStore(tmp_path / "jobs.sqlite3")
    first.record(make("j1"))
    assert second.get("j1") == make("j1")
    second.update("j1", state="Stopped")
    assert first.get("j1").state == "Stopped"


def test_default_path_and_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    store = JobStore()
    assert store.path == data / "jobs.sqlite3"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    store.record(make("j1"))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    wal = Path(f"{store.path}-wal")
    if wal.exists():
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_explicit_path_creates_private_parents(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "a" / "b" / "jobs.db")
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_schema_version_and_wal(store: JobStore) -> None:
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    JobStore(path)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 99")
    connection.commit()
    connection.close()
    with pytest.raises(JobStoreError, match="schema version 99"):
        JobStore(path)


def test_corrupt_file_is_a_job_store_error(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    path.write_bytes(b"this is not a database, just some bytes " * 100)
    with pytest.raises(JobStoreError, match=str(path)):
        JobStore(path)


def test_threads_share_one_instance(store: JobStore) -> None:
    def write(n: int) -> None:
        store.record(make(f"t-{n}", created=float(n)))
        store.update(f"t-{n}", state="Completed")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(80)))
    records = store.list()
    assert len(records) == 80
    assert {r.state for r in records} == {"Completed"}


def _writer(path: str, prefix: str, count: int, barrier: Any) -> None:
    barrier.wait(timeout=60)
    store = JobStore(path)  # both processes create the file and its schema at the same moment
    for n in range(count):
        store.record(make(f"{prefix}-{n:03d}", created=float(n), engine=prefix))
        store.update(f"{prefix}-{n:03d}", state="Completed", handle={"n": n})


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "jobs.sqlite3"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_writer, args=(str(path), prefix, 200, barrier))
        for prefix in ("p1", "p2")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]

    store = JobStore(path)
    records = store.list()
    assert len(records) == 400
    for prefix in ("p1", "p2"):
        mine = store.list(engine=prefix)
        assert sorted(r.job_id for r in mine) == [f"{prefix}-{n:03d}" for n in range(200)]
        assert all(r.state == "Completed" and r.handle == {"n": int(r.job_id[-3:])} for r in mine)


def test_record_is_a_plain_dataclass() -> None:
    rec = make("j1")
    assert dataclasses.asdict(rec)["writeback"] == {
        "assigns": ["x"],
        "deletes": [],
        "reads": ["df"],
    }
    assert (rec.cell, rec.notebook, rec.reason, rec.written_back) == ("", "", "", False)
