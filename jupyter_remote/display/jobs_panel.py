"""``%remote_jobs`` as widgets: every recorded job, live while any runs, with per-row actions.

The job store is the source of truth, so the list is the same after a kernel restart. While a
listed job is active, a thread asks its engine for the real state every few seconds (nobody else
may be watching it) and records it. Attach follows a job in a job panel inside the row and writes
its results into the notebook when it ends; Remove forgets a job (``JobStore.remove``).
"""

from __future__ import annotations

import datetime as dt
import html
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import ipywidgets as w

from ..jobstore import TERMINAL_STATES, JobRecord, JobStore
from .logtext import LogBuffer, clean_line, log_html
from .panel import JobPanel
from .panel_actions import find_job
from .progress import badge_html
from .text import jobs_table

ALL = "all"
ACTIVE = "active"


def _when(created: float) -> str:
    stamp = dt.datetime.fromtimestamp(created)
    today = dt.datetime.now().date() == stamp.date()
    return stamp.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M")


def _button(description: str, handler: Callable[[], None], style: str = "") -> w.Button:
    button = w.Button(description=description, button_style=style, layout=w.Layout(width="auto"))
    button.on_click(lambda _b: handler())
    return button


class _Row:
    """One job: a summary line, its buttons, and a detail area (log, panel or confirmation)."""

    def __init__(self, owner: JobsPanel, record: JobRecord) -> None:
        self.owner, self.record = owner, record
        self.summary = w.HTML()
        self.summary.add_class("jr-row-summary")
        self.logs = _button("Logs", self.toggle_logs)
        self.attach = _button("Attach", self.attach_job, "primary")
        self.stop = _button("Stop", lambda: self.ask("stop"), "danger")
        self.remove = _button("Remove", self.ask_remove)
        self.detail = w.VBox()
        self.log_view: w.HTML | None = None
        self.log_buffer: LogBuffer | None = None
        self.tails: list[Any] = []
        self.panel: JobPanel | None = None
        self.box = w.VBox(
            [w.HBox([self.summary, self.logs, self.attach, self.stop, self.remove]), self.detail]
        )
        self.box.add_class("jr-job-row")
        self.update(record)

    @property
    def active(self) -> bool:
        return self.record.state not in TERMINAL_STATES

    def update(self, record: JobRecord) -> None:
        """Redraw from the record (unchanged values send nothing)."""
        self.record = record
        done = "written back" if record.written_back else ""
        self.summary.value = " · ".join(
            p
            for p in (
                f"<code>{html.escape(record.job_id)}</code>",
                html.escape(record.engine),
                f'<span title="{html.escape(record.reason, quote=True)}">'
                f"{badge_html(record.state)}</span>",
                _when(record.created),
                done,
            )
            if p
        )
        self.stop.layout.display = "" if self.active else "none"
        self.attach.disabled = self.panel is not None

    def toggle_logs(self) -> None:
        """Show or hide the last lines of the job's log."""
        if self.log_view is not None:
            self.log_view, self.log_buffer, self.tails = None, None, []
            self.detail.children = ()
            return
        job = self.owner.job(self.record.job_id)
        self.tails = job.engine.logs(job.handle)
        self.log_buffer = LogBuffer(self.owner.max_lines)
        self.log_view = w.HTML()
        self.log_view.add_class("jr-row-log")
        self.read_logs()
        self.detail.children = (self.log_view,)

    def read_logs(self) -> None:
        """Append new log lines to an open log view."""
        if self.log_view is None or self.log_buffer is None:
            return
        several = len(self.tails) > 1
        for tail in self.tails:
            for line in tail.read(final=not self.active):
                text = clean_line(line)
                self.log_buffer.append(f"{tail.stream} | {text}" if several else text)
        self.log_view.value = log_html(
            self.log_buffer.lines, dropped=self.log_buffer.dropped, empty="(the log is empty)"
        )

    def attach_job(self) -> None:
        """Follow the job in a job panel here; write its results into the notebook at the end."""
        job = self.owner.job(self.record.job_id)
        self.panel = JobPanel(show=lambda _view: None)
        self.panel.started(job.handle, f"attached to {job.job_id} on {job.engine.name}")
        self.panel.follow(job, user_ns=self.owner.user_ns, poll_interval=self.owner.poll_interval)
        self.log_view = None
        self.detail.children = (self.panel.widget,)
        self.attach.disabled = True

    def ask(self, action: str) -> None:
        """Ask before stopping or removing."""
        text = {
            "stop": f"Stop job {self.record.job_id}? It cannot be resumed.",
            "remove": f"Remove {self.record.job_id} from the list? It keeps running, but can "
            "no longer be attached to.",
        }[action]
        yes = _button("Stop the job" if action == "stop" else "Remove", lambda: self.do(action))
        yes.button_style = "danger"
        no = _button("Cancel", self.cancel)
        bar = w.HBox([w.HTML(html.escape(text)), yes, no])
        bar.add_class(f"jr-row-confirm-{action}")
        self.detail.children = (bar,)

    def ask_remove(self) -> None:
        """Remove at once when the job has ended; ask first when it still runs."""
        if self.active:
            self.ask("remove")
        else:
            self.do("remove")

    def cancel(self) -> None:
        """Drop a confirmation."""
        self.detail.children = (self.panel.widget,) if self.panel else ()

    def do(self, action: str) -> None:
        """Stop or remove, confirmed."""
        if action == "stop":
            self.owner.job(self.record.job_id).stop()
            self.cancel()
            self.owner.refresh()
        else:
            self.owner.store.remove(self.record.job_id)
            self.owner.refresh()


class JobsPanel:
    """Every job of the store, newest first, filterable by engine and state."""

    def __init__(
        self,
        *,
        store: JobStore | None = None,
        engine: str | None = None,
        state: str | None = None,
        limit: int = 20,
        refresh_interval: float = 2.0,
        poll_interval: float = 1.0,
        max_lines: int = 200,
        user_ns: MutableMapping[str, Any] | None = None,
    ) -> None:
        self.store = store or JobStore()
        self.limit = limit
        self.refresh_interval = refresh_interval
        self.poll_interval = poll_interval
        self.max_lines = max_lines
        self.user_ns = user_ns
        self._jobs: dict[str, Any] = {}
        self._rows: dict[str, _Row] = {}
        self._listed: list[_Row] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        everything = self.store.list()
        engines = sorted({r.engine for r in everything} | ({engine} if engine else set()))
        states = sorted({r.state for r in everything} | ({state} if state else set()) - {ACTIVE})
        self.engine_filter = w.Dropdown(
            options=[ALL, *engines], value=engine or ALL, description="engine"
        )
        self.state_filter = w.Dropdown(
            options=[ALL, ACTIVE, *states], value=state or ALL, description="state"
        )
        self.count = w.HTML()
        self.rows = w.VBox()
        self.errors = w.HTML()
        refresh = _button("Refresh", self.refresh)
        for dropdown in (self.engine_filter, self.state_filter):
            dropdown.observe(lambda _change: self.refresh(), names="value")
        self.box = w.VBox(
            [
                w.HBox([self.engine_filter, self.state_filter, refresh, self.count]),
                self.rows,
                self.errors,
            ]
        )
        self.box.add_class("jupyter-remote-jobs")
        self.refresh()

    def records(self) -> list[JobRecord]:
        """The records the filters select, newest first."""
        engine = None if self.engine_filter.value == ALL else self.engine_filter.value
        state = self.state_filter.value
        return self.store.list(
            engine=engine,
            states=None if state in (ALL, ACTIVE) else [state],
            active_only=state == ACTIVE,
            limit=self.limit,
        )

    def job(self, job_id: str) -> Any:
        """The RemoteJob of a recorded job (made once per panel)."""
        if job_id not in self._jobs:
            self.remember(find_job(job_id, self.store))
        return self._jobs[job_id]

    def row(self, job_id: str) -> _Row:
        """The row of a listed job."""
        return self._rows[job_id]

    def remember(self, job: Any) -> None:
        """Reuse ``job`` for this id (an attached job)."""
        self._jobs[job.job_id] = job

    def refresh(self) -> None:
        """Ask the engines about active jobs, record their states, redraw changed rows."""
        with self._lock:
            errors = []
            records = self.records()
            for i, record in enumerate(records):
                if record.state in TERMINAL_STATES:
                    continue
                try:
                    status = self.job(record.job_id).status()
                    if status.state != record.state:
                        records[i] = self.store.update(
                            record.job_id, state=status.state, reason=status.reason
                        )
                except Exception as exc:
                    errors.append(f"{record.job_id}: {type(exc).__name__}: {exc}")
            rows = []
            for record in records:
                row = self._rows.get(record.job_id)
                if row is None:
                    row = self._rows[record.job_id] = _Row(self, record)
                else:
                    row.update(record)
                row.read_logs()
                rows.append(row.box)
            self._listed = [self._rows[r.job_id] for r in records]
            if tuple(rows) != self.rows.children:
                self.rows.children = tuple(rows)
            active = sum(r.state not in TERMINAL_STATES for r in records)
            self.count.value = f"{len(records)} job(s), {active} active"
            self.errors.value = (
                f'<pre class="jr-errors">{html.escape(chr(10).join(errors))}</pre>'
                if errors
                else ""
            )
            if active and (self._thread is None or not self._thread.is_alive()):
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._loop, name="jupyter-remote-jobs", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            self.refresh()
            with self._lock:
                if not any(row.active for row in self._listed):
                    return

    def close(self) -> None:
        """Stop refreshing."""
        self._stop.set()

    def text(self) -> str:
        """The text table of the listed jobs (the panel's text/plain form)."""
        return jobs_table(self.records(), now=time.time())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "text/plain": self.text(),
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.box.model_id,
            },
        }
