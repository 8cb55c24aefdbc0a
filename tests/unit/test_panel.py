"""The widget job panel and the %remote_jobs panel, driven directly (no frontend)."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path
from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm

from jupyter_remote.display import make_display
from jupyter_remote.display.logtext import LogBuffer, clean_line
from jupyter_remote.display.panel import JobPanel
from jupyter_remote.display.panel_state import DETACHED, DONE, FOLLOWING, PREPARING, WAITING
from jupyter_remote.display.progress import console_links, s3batch_progress
from jupyter_remote.display.text import TextDisplay
from jupyter_remote.engines.base import PROCESSING, S3BATCH, Engine, JobHandle, JobStatus, LogTail
from jupyter_remote.jobstore import JobRecord

pytestmark = pytest.mark.timeout(120)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def panel(**kwargs: Any) -> JobPanel:
    shown: list[Any] = []
    p = JobPanel(show=shown.append, **kwargs)
    p.shown = shown  # type: ignore[attr-defined]
    return p


def handle(kind: str = PROCESSING, job_id: str = "job-1", **data: Any) -> JobHandle:
    return JobHandle("local", kind, job_id, dict(data))


# -- plain-text log lines ---------------------------------------------------------------------


def test_clean_line_drops_escapes_and_shows_control_characters():
    assert clean_line("\x1b[31mred\x1b[0m plain") == "red plain"
    assert clean_line("\x1b]8;;http://x\x07link\x1b]8;;\x07") == "link"
    assert clean_line("10%\r50%\r100%") == "100%"
    assert clean_line("bell\x07 nul\x00") == "bell\u2407 nul\u2400"
    assert clean_line("<b>tab\there</b>") == "<b>tab\there</b>"


def test_log_buffer_keeps_the_last_lines_and_counts_all():
    buf = LogBuffer(3)
    buf.extend(str(i) for i in range(10))
    assert list(buf.lines) == ["7", "8", "9"]
    assert (buf.total, buf.dropped) == (10, 7)
    with pytest.raises(ValueError):
        LogBuffer(0)


# -- the job panel's state after each event ------------------------------------------------------


def test_state_and_widgets_after_each_event():
    clock = Clock()
    p = panel(clock=clock)
    p.message("Running on the local engine (test)")
    assert p.state.mode == PREPARING and len(p.shown) == 1  # shown at the first event
    p.flush()
    assert p._w.bar.value == pytest.approx(0.1)
    assert "1/5 uploading" in p._w.status.value
    assert 'data-state="Submitting"' in p._w.status.value

    p.started(handle(), "job-1: 1 x ml.m5.xlarge on local")
    assert p.state.mode == WAITING and p.state.state == "InProgress"
    p.flush()
    assert "2/5 starting" in p._w.status.value
    assert '<b class="jr-job-id">job-1</b>' in p._w.header.value
    # The cell waits: the kernel cannot take clicks, so the buttons say so instead.
    assert p._w.stop.disabled and "interrupt the kernel" in p._w.stop.tooltip
    assert p._w.stop.layout.display == "" and p._w.detach.layout.display == ""
    assert p._w.confirm.layout.display == "none" and p._w.report.layout.display == "none"

    clock.now += 65
    p.status(JobStatus("InProgress", phase="Running"))
    p.flush()
    assert "3/5 running" in p._w.status.value and "1 min 05 s" in p._w.status.value
    p.log("algo-1", "hello")
    p.flush()
    assert "hello" in p._w.log.value

    p.status(JobStatus("InProgress", phase="Uploading outputs"))
    p.flush()
    assert "4/5 uploading outputs" in p._w.status.value

    clock.now += 10
    p.finished(JobStatus("Completed", terminal=True, succeeded=True, phase="Done"))
    assert p.state.mode == DONE  # outside a kernel nothing else will happen
    assert 'data-state="Completed"' in p._w.status.value
    assert "1 min 15 s" in p._w.status.value
    clock.now += 100
    p.flush()
    assert "1 min 15 s" in p._w.status.value  # the clock stops at the end
    assert (p._w.bar.value, p._w.bar.bar_style) == (1.0, "success")
    assert p._w.stop.layout.display == "none" and p._w.detach.layout.display == "none"
    assert not p._throttle.running
    assert p.text().splitlines()[1] == "Completed after 1 min 15 s"


def test_failed_job_shows_its_reason_and_a_red_bar():
    p = panel()
    p.started(handle(), "t")
    p.finished(JobStatus("Failed", terminal=True, reason="AlgorithmError: exit code: 1"))
    assert 'data-state="Failed"' in p._w.status.value
    assert "AlgorithmError: exit code: 1" in p._w.status.value
    assert p._w.bar.bar_style == "danger"


def test_log_is_capped_to_the_last_lines():
    p = panel(max_lines=5)
    p.started(handle(), "t")
    for i in range(12):
        p.log("algo-1", f"line {i}")
    p.flush()
    assert list(p.state.log.lines) == [f"line {i}" for i in range(7, 12)]
    assert "7 earlier lines not shown" in p._w.log.value
    assert "line 6" not in p._w.log.value and "line 11" in p._w.log.value
    assert "7 earlier log lines not shown" in p.text() and "line 0" not in p.text()
    p.finished(JobStatus("Completed", terminal=True, succeeded=True))


def test_several_streams_are_named():
    p = panel()
    p.started(handle(instance_count=2), "t")
    p.log("algo-1", "one")
    p.log("algo-2", "two")
    assert list(p.state.log.lines) == ["algo-1 | one", "algo-2 | two"]
    p.finished(JobStatus("Completed", terminal=True, succeeded=True))


def test_html_and_ansi_in_log_lines_never_become_markup():
    p = panel()
    p.started(handle(job_id="<i>job</i>"), "t")
    p.log("algo-1", "<script>alert(1)</script>")
    p.log("algo-1", '<img src=x onerror="alert(2)">')
    p.log("algo-1", "\x1b[1;31mbold red\x1b[0m & more")
    p.message("<b>not bold</b>")
    p.finished(JobStatus("Completed", terminal=True, succeeded=True))
    log = p._w.log.value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in log
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in log
    assert "bold red &amp; more" in log
    for raw in ("<script", "<img", "\x1b", "<b>"):
        assert raw not in log and raw not in p._w.messages.value
    assert "&lt;b&gt;not bold&lt;/b&gt;" in p._w.messages.value
    assert "&lt;i&gt;job&lt;/i&gt;" in p._w.header.value and "<i>" not in p._w.header.value


def test_console_links_only_off_the_local_engine():
    assert console_links(handle(arn="arn:aws:sagemaker:us-east-1:0:processing-job/x")) == {}
    aws = JobHandle(
        "sagemaker", PROCESSING, "job-9", {"arn": "arn:aws:sagemaker:eu-west-1:1:processing-job/j"}
    )
    assert console_links(aws)["job"].startswith("https://eu-west-1.console.aws.amazon.com/")
    own = JobHandle(
        "sagemaker", PROCESSING, "j", {"links": {"job": "https://a", "logs": "https://b"}}
    )
    assert console_links(own) == {"job": "https://a", "logs": "https://b"}
    p = panel()
    bad = JobHandle("sagemaker", PROCESSING, "j", {"links": {"job": "javascript:alert(1)"}})
    p.started(bad, "t")
    p.flush()
    assert "javascript" not in p._w.header.value
    p.started(own, "t")
    p.flush()
    assert 'href="https://b"' in p._w.header.value
    p.finished(JobStatus("Completed", terminal=True, succeeded=True))


def test_s3batch_progress_has_counts_rate_and_eta():
    progress = s3batch_progress(
        {"total": 100, "succeeded": 30, "failed": 10, "elapsed": 20},
        state="Active",
        terminal=False,
        succeeded=False,
    )
    assert progress.fraction == pytest.approx(0.4)
    assert progress.label == "40/100 tasks · 30 succeeded · 10 failed · 2.0/s · ETA 30 s"
    assert progress.style == "danger"  # some tasks failed


# -- buttons, following, detaching: a scripted S3 Batch engine (a real Engine subclass) --------


class ScriptedEngine(Engine):
    """An engine whose job waits Suspended until confirmed, then counts tasks to Complete."""

    name = "scripted"
    kinds = frozenset({S3BATCH})

    def __init__(self, store, log_path: Path) -> None:
        super().__init__(endpoint=None, storage=None, store=store)  # type: ignore[arg-type]
        self.state, self.done, self.total = "Suspended", 0, 4
        self.log_path = log_path
        self.calls: list[str] = []
        self.finish = True
        self.failed = 0  # of the tasks done, how many failed

    def _submit(self, handle, request):
        return handle

    def describe(self, handle):
        if self.state == "Active" and self.finish:
            self.done += 1
            with open(self.log_path, "a") as log:
                log.write(f"task {self.done} <ok>\n")
            if self.done >= self.total:
                self.state = "Complete"
        terminal = self.state in ("Complete", "Cancelled")
        failed = min(self.failed, self.done)
        return JobStatus(
            self.state,
            terminal=terminal,
            succeeded=self.state == "Complete",
            phase=f"{self.done}/{self.total} tasks",
            progress={
                "total": self.total,
                "succeeded": self.done - failed,
                "failed": failed,
                "elapsed": 1,
            },
        )

    def stop(self, handle):
        self.calls.append("stop")
        self.state = "Cancelled"

    def logs(self, handle, cursors=None):
        return [LogTail("function", self.log_path, (cursors or {}).get("function", 0))]


class BatchJob:
    """A small job object with the methods the panel looks for."""

    def __init__(self, engine: ScriptedEngine, store, job_id: str = "batch-1") -> None:
        self.engine = engine
        self.handle = JobHandle("scripted", S3BATCH, job_id, {})
        self.record = JobRecord(
            job_id,
            "scripted",
            S3BATCH,
            "Suspended",
            time.time(),
            time.time(),
            {"Operation": {"LambdaInvoke": {"FunctionArn": "arn:aws:lambda:r:1:function:fn:3"}}},
            {},
            {},
        )
        store.record(self.record)
        self.job_id = job_id

    def stop(self) -> None:
        self.engine.stop(self.handle)

    def confirm(self) -> None:
        self.engine.calls.append("confirm")
        self.engine.state = "Active"

    def table(self) -> list[dict[str, str]]:
        return [{"bucket": "b", "key": f"k{i}", "status": "Succeeded"} for i in range(4)]

    def write_back(self, status, user_ns, display) -> None:
        user_ns["table"] = self.table()
        display.message("table of 4 task(s) stored in table")


class RerunnableJob(BatchJob):
    """A scripted job whose ``rerun_failed()`` waits for ``release``, then submits another."""

    def __init__(self, engine: ScriptedEngine, store) -> None:
        super().__init__(engine, store)
        self.store = store
        self.release = threading.Event()
        self.error: Exception | None = None
        self.reruns: list[BatchJob] = []

    def rerun_failed(self) -> BatchJob:
        self.release.wait(30)
        if self.error is not None:
            raise self.error
        n = len(self.reruns) + 1
        engine = ScriptedEngine(self.store, self.engine.log_path.with_name(f"rerun-{n}.log"))
        engine.state = "Active"
        new = BatchJob(engine, self.store, job_id=f"{self.job_id}-rerun-{n}")
        self.reruns.append(new)
        return new


@pytest.fixture
def batch(store, tmp_path):
    engine = ScriptedEngine(store, tmp_path / "function.log")
    return BatchJob(engine, store)


def test_confirm_then_report_buttons_call_the_job(batch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = panel()
    p.started(batch.handle, "t")
    ns: dict[str, Any] = {}
    p.follow(batch, user_ns=ns, poll_interval=0.05)
    assert p.state.mode == FOLLOWING
    p.flush()
    assert "function fn" in p._w.header.value
    until(lambda: p.state.state == "Suspended", what="Suspended")
    p.flush()
    assert p._w.confirm.layout.display == "" and not p._w.confirm.disabled
    assert p._w.stop.layout.display == "" and not p._w.stop.disabled
    p._w.confirm.click()
    assert batch.engine.calls == ["confirm"]
    assert p.settled.wait(30)
    assert ns["table"][0]["key"] == "k0"
    assert p.state.state == "Complete" and p.state.written_back
    assert "task 4 &lt;ok&gt;" in p._w.log.value
    assert p._w.bar.value == 1.0 and "4/4 tasks" in p._w.status.value
    assert p._w.report.layout.display == "" and p._w.confirm.layout.display == "none"
    p._w.report.click()
    saved = tmp_path / "batch-1-report.csv"
    assert saved.read_text().splitlines()[0] == "bucket,key,status"
    assert f"report saved to {saved} (4 tasks)" in p.state.messages
    p._w.show_all.click()
    assert p._w.show_all.description == "Show last lines" and "task 1 &lt;ok&gt;" in p._w.log.value


def test_stop_asks_first_then_calls_the_job(batch):
    p = panel()
    p.started(batch.handle, "t")
    p.follow(batch, poll_interval=0.05)
    until(lambda: p.state.state == "Suspended", what="Suspended")
    p._w.stop.click()
    p.flush()
    assert p._w.confirm_bar.layout.display == "" and batch.engine.calls == []
    p._w.stop_no.click()
    p.flush()
    assert p._w.confirm_bar.layout.display == "none" and batch.engine.calls == []
    p._w.stop.click()
    p._w.stop_yes.click()
    assert batch.engine.calls == ["stop"]
    assert p.settled.wait(30)
    assert p.state.state == "Cancelled" and p._w.bar.bar_style == "warning"


def test_detach_stops_following_and_keeps_the_cursor(batch, store):
    batch.engine.state, batch.engine.finish = "Active", False
    batch.engine.log_path.write_text("first\nsecond\n")
    p = panel()
    p.started(batch.handle, "t")
    thread = p.follow(batch, poll_interval=0.05)
    until(lambda: p.state.log.total == 2, what="two lines")
    p._w.detach.click()
    thread.join(timeout=10)
    assert not thread.is_alive() and p.state.mode == DETACHED
    assert any(m.startswith("Detached from batch-1") for m in p.state.messages)
    assert "jupyter_remote.attach" in p._w.status.value
    # The monitor saved where the log stopped: a new panel continues without repeating lines.
    assert store.get("batch-1").handle["log_cursors"] == {"function": len("first\nsecond\n")}
    with open(batch.engine.log_path, "a") as log:
        log.write("third\n")
    batch.handle.data = store.get("batch-1").handle
    again = panel()
    again.started(batch.handle, "t")
    batch.engine.finish = True
    again.follow(batch, poll_interval=0.05)
    assert again.settled.wait(30)
    assert again.state.log.lines[0] == "third"


def test_rerun_button_shows_for_s3batch_jobs_and_says_why_it_is_disabled(batch):
    def ended(state: str, failed: int) -> JobPanel:
        p = panel()
        p.started(handle(S3BATCH), "t")
        progress = {"total": 10, "succeeded": 10 - failed, "failed": failed}
        done = state == "Complete"
        p.finished(JobStatus(state, terminal=True, succeeded=done, progress=progress))
        return p

    p = panel()
    p.started(handle(S3BATCH), "t")
    p.status(JobStatus("Active", progress={"total": 10, "succeeded": 2, "failed": 1}))
    p.flush()
    assert p._w.rerun.layout.display == "" and p._w.rerun.disabled
    assert "has not ended" in p._w.rerun.tooltip
    p._w.rerun.click()  # a click the frontend would not send: refused, nothing submitted
    assert p._rerun == "" and p.state.messages[-1].startswith("Re-run: The job has not ended")
    p.finished(JobStatus("Complete", terminal=True, succeeded=True))
    for state in ("Complete", "Failed", "Cancelled"):
        assert not ended(state, failed=3)._w.rerun.disabled, state
    clean = ended("Complete", failed=0)
    assert clean._w.rerun.disabled and "No task failed" in clean._w.rerun.tooltip
    # Processing jobs, and jobs without rerun_failed(), have no such button.
    processing = panel()
    processing.started(handle(), "t")
    processing.finished(JobStatus("Completed", terminal=True, succeeded=True))
    assert processing._w.rerun.layout.display == "none"
    scripted = panel()
    scripted.bind(batch)
    scripted.started(batch.handle, "t")
    scripted.finished(JobStatus("Complete", terminal=True, succeeded=True, progress={"failed": 1}))
    assert scripted._w.rerun.layout.display == "none"


def test_rerun_button_submits_once_off_the_click_and_shows_the_new_panel(store, tmp_path):
    from jupyter_remote.errors import JupyterRemoteError

    engine = ScriptedEngine(store, tmp_path / "function.log")
    engine.state, engine.failed = "Active", 2
    job = RerunnableJob(engine, store)
    p = panel()
    p.started(job.handle, "t")
    p.follow(job, poll_interval=0.05)
    assert p.settled.wait(30)
    assert p.state.state == "Complete" and p.state.progress["failed"] == 2
    assert p._w.rerun.layout.display == "" and not p._w.rerun.disabled

    # A failed submission says why in the panel, and the button works again.
    job.error = JupyterRemoteError("the report is gone")
    job.release.set()
    p._w.rerun.click()
    until(lambda: "Re-run failed: JupyterRemoteError: the report is gone" in p.state.messages)
    until(lambda: not p._w.rerun.disabled, what="the button to work again")
    assert job.reruns == [] and p.rerun_panel is None

    job.error = None
    job.release.clear()
    clicked = time.monotonic()
    p._w.rerun.click()
    assert time.monotonic() - clicked < 5  # the click does not wait for the submission
    assert p._w.rerun.disabled and "Submitting" in p._w.rerun.tooltip
    p._w.rerun.click()  # clicked again while it submits
    job.release.set()
    until(lambda: p.rerun_panel is not None, what="the re-run's panel")
    child = p.rerun_panel
    assert child.settled.wait(30)
    assert [r.job_id for r in job.reruns] == ["batch-1-rerun-1"]
    assert child.job is job.reruns[0] and child.state.state == "Complete"
    assert p._w.reruns.children == (child.widget,)  # shown inside the panel that was clicked
    assert '<b class="jr-job-id">batch-1-rerun-1</b>' in child._w.header.value
    assert "Re-running the failed tasks of batch-1 as batch-1-rerun-1 (panel below)." in (
        p.state.messages
    )
    assert "jupyter_remote.attach('batch-1-rerun-1') waits for it." in child.text()
    p.flush()
    assert p._w.rerun.disabled and "batch-1-rerun-1" in p._w.rerun.tooltip
    p._w.rerun.click()
    assert len(job.reruns) == 1


# -- a real local job -----------------------------------------------------------------------------


def test_stop_button_stops_a_real_local_job():
    import jupyter_remote

    p = panel()
    ns = {"seconds": 60}
    job = jupyter_remote.remote_process(
        "import time\nprint('sleeping', flush=True)\ntime.sleep(seconds)\ndone = True\n",
        user_ns=ns,
        wait=False,
        display=p,
    )
    assert p.job is job and p.state.mode == FOLLOWING  # --no-wait returned at once
    p.flush()
    assert "1 x ml.m5.xlarge" in p._w.header.value
    until(lambda: "sleeping" in p.state.log.lines, what="the job's first line")
    p._w.stop.click()
    p._w.stop_yes.click()
    assert p.settled.wait(60)
    assert p.state.state == "Stopped" and job.status().state == "Stopped"
    assert "done" not in ns


RERUN_CELL = """import boto3
s3 = boto3.client("s3")
def process(bucket, key):
    return len(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
"""


def test_rerun_failed_button_reruns_the_failed_keys_of_a_real_s3batch_job():
    import contextlib

    import jupyter_remote
    from jupyter_remote.config import RemoteSettings
    from jupyter_remote.jobstore import JobStore
    from jupyter_remote.s3batch import s3batch
    from jupyter_remote.s3batch_manifest import encode_key
    from jupyter_remote.spec.s3batch import parse_object_arn

    s3 = jupyter_remote.s3_client()
    for bucket in ("photos", "batch"):
        with contextlib.suppress(
            s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists
        ):
            s3.create_bucket(Bucket=bucket)
    present = ["panel-rr/one.txt", "panel-rr/two.txt", "panel-rr/three.txt"]
    missing = ["panel-rr/a b+c.txt", "panel-rr/café 50%.txt"]
    for key in present:
        s3.put_object(Bucket="photos", Key=key, Body=b"x")
    rows = "".join(f"photos,{encode_key(k)}\n" for k in [*present, *missing])
    s3.put_object(Bucket="batch", Key="panel-rr.csv", Body=rows.encode())
    p = panel()
    job = s3batch(
        RERUN_CELL,
        user_ns={},
        manifest="s3://batch/panel-rr.csv",
        engine="local",
        wait=False,
        display=p,
        settings=RemoteSettings(poll_interval=0.1),
    )
    assert p.job is job and p.state.mode == FOLLOWING
    assert p.settled.wait(60)
    assert p.state.state == "Complete" and p.state.progress["failed"] == len(missing)
    assert p._w.rerun.layout.display == "" and not p._w.rerun.disabled
    for key in missing:  # the cause of the failures, fixed
        s3.put_object(Bucket="photos", Key=key, Body=b"yy")

    p._w.rerun.click()
    p._w.rerun.click()  # a double click
    until(lambda: p.rerun_panel is not None, timeout=60, what="the re-run's panel")
    child = p.rerun_panel
    assert child.settled.wait(60)
    new = child.job
    assert new.job_id != job.job_id and new.engine.name == "local"
    assert p._w.reruns.children == (child.widget,)
    assert f"Re-running the failed tasks of {job.job_id} as {new.job_id} (panel below)." in (
        p.state.messages
    )
    # One new job, over exactly the failed keys, and it ran them.
    reruns = [r for r in JobStore().list() if job.job_id in r.request.get("Description", "")]
    assert [r.job_id for r in reruns] == [new.job_id]
    where = parse_object_arn(new.record.request["Manifest"]["Location"]["ObjectArn"])
    body = s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read().decode()
    assert sorted(body.splitlines()) == sorted(f"photos,{encode_key(k)}" for k in missing)
    assert child.state.state == "Complete"
    assert (child.state.progress["succeeded"], child.state.progress["failed"]) == (2, 0)
    table = new.table()
    assert sorted(table.key) == sorted(missing)
    assert table.result.tolist() == ["2", "2"]


def test_interrupting_the_wait_hands_the_job_to_a_background_follower():
    import _thread

    import jupyter_remote

    p = panel()
    ns: dict[str, Any] = {}
    job = jupyter_remote.remote_process(
        "import time\nprint('started', flush=True)\ntime.sleep(2)\nlate = 1\n",
        user_ns=ns,
        wait=False,
        display=TextDisplay(io.StringIO()),
    )
    p.started(job.handle, "t")
    timer = threading.Timer(0.5, _thread.interrupt_main)  # what Ctrl-C / ■ does
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        job.wait(ns, display=p, poll_interval=0.1)
    assert p.state.mode == FOLLOWING  # the panel keeps following; its buttons work now
    assert any(m.startswith(f"Detached from {job.job_id}") for m in p.state.messages)
    assert p.settled.wait(30)
    assert p.state.state == "Completed" and "late" not in ns  # attach() writes back
    assert p.state.log.lines.count("started") == 1  # the follower went on from the cursor


# -- coalescing: count the widget messages sent ------------------------------------------------


class RecordingComm(BaseComm):
    """A comm that records what it would send to a frontend."""

    sent: list[tuple[float, str, dict]] = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        RecordingComm.sent.append((time.monotonic(), msg_type, data or {}))


def test_a_burst_of_1000_log_lines_sends_few_widget_messages(monkeypatch):
    RecordingComm.sent = []
    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: RecordingComm(*a, **k))
    p = panel()
    p.started(handle(), "t")
    p.status(JobStatus("InProgress", phase="Running"))
    time.sleep(0.6)
    start = time.monotonic()
    for i in range(1000):
        p.log("algo-1", f"line {i}")
        time.sleep(0.0015)
    burst_end = time.monotonic()
    p.finished(JobStatus("Completed", terminal=True, succeeded=True))
    sent = [t for t, kind, _data in RecordingComm.sent if kind == "comm_msg" and t >= start]
    burst = [t for t in sent if t < burst_end]
    assert burst, "the panel sent nothing while the lines arrived"
    busiest = max(sum(1 for u in burst if t <= u < t + 1.0) for t in burst)
    ending = len(sent) - len(burst)
    print(f"{len(burst)} messages in {burst_end - start:.2f} s (busiest second {busiest}), ")
    print(f"{ending} for the end")
    assert len(burst) / (burst_end - start) <= 10 and busiest <= 10
    assert ending <= 8  # the final state: badge, bar, log, buttons
    assert "line 999" in p._w.log.value and "800 earlier lines not shown" in p._w.log.value


# -- choosing a display -----------------------------------------------------------------------


def test_make_display_outside_a_kernel_is_text():
    assert isinstance(make_display(widgets=True), TextDisplay)
    assert isinstance(make_display(widgets=False), TextDisplay)


def test_loading_the_extension_does_not_import_ipywidgets():
    import subprocess

    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\nip.run_line_magic('load_ext', 'jupyter_remote')\n"
        "print('ipywidgets' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- %remote_jobs ---------------------------------------------------------------------------------


def _record(store, job_id: str, engine: str, state: str, created: float) -> None:
    store.record(
        JobRecord(job_id, engine, PROCESSING, state, created, created, {}, {}, {}, reason="")
    )


def test_jobs_panel_lists_newest_first_filters_and_removes(store):
    from jupyter_remote.display.jobs_panel import JobsPanel
    from jupyter_remote.display.text import jobs_table

    _record(store, "old-local", "local", "Completed", 100.0)
    _record(store, "mid-aws", "sagemaker", "Failed", 200.0)
    _record(store, "new-local", "local", "Failed", 300.0)
    jp = JobsPanel(store=store)
    ids = [row.record.job_id for row in jp._listed]
    assert ids == ["new-local", "mid-aws", "old-local"]
    assert list(jp.engine_filter.options) == ["all", "local", "sagemaker"]
    jp.engine_filter.value = "local"
    assert [row.record.job_id for row in jp._listed] == ["new-local", "old-local"]
    jp.state_filter.value = "Failed"
    assert [row.record.job_id for row in jp._listed] == ["new-local"]
    assert jp.text() == jobs_table(store.list(engine="local", states=["Failed"]), now=time.time())
    bundle = jp._repr_mimebundle_()
    assert "new-local" in bundle["text/plain"]
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == jp.box.model_id
    jp._listed[0].remove.click()  # ended: removed without asking
    assert [r.job_id for r in store.list()] == ["mid-aws", "old-local"]
    assert jp._listed == [] and "0 job(s)" in jp.count.value


def test_jobs_panel_attach_follows_and_writes_back_a_real_job():
    import jupyter_remote
    from jupyter_remote.display.jobs_panel import JobsPanel
    from jupyter_remote.jobstore import JobStore

    ns: dict[str, Any] = {"base": 40}
    job = jupyter_remote.remote_process(
        "import time\nprint('<b>working</b>', flush=True)\ntime.sleep(1.5)\nanswer = base + 2\n",
        user_ns=ns,
        wait=False,
        display=TextDisplay(io.StringIO()),
    )
    target: dict[str, Any] = {}
    jp = JobsPanel(store=JobStore(), user_ns=target, refresh_interval=0.2, poll_interval=0.1)
    row = jp._rows[job.job_id]
    assert row.active and row.stop.layout.display == ""
    row.logs.click()
    until(lambda: (jp.refresh() or True) and "&lt;b&gt;working" in row.log_view.value)
    row.attach.click()
    assert row.attach.disabled and row.panel is not None
    until(lambda: target.get("answer") == 42, what="the write-back")
    assert row.panel.settled.wait(30)
    assert row.panel.state.written_back
    assert "written back: answer, time" in row.panel.state.messages
    until(lambda: not row.active, what="the row to show the end")
    assert 'data-state="Completed"' in row.summary.value
    jp.close()


def test_threads_end_when_panels_are_done():
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith("jupyter-remote-follow-")], names
