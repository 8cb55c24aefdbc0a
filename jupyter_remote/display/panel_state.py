"""What a job panel knows, updated by the monitor's events (plain Python; no widgets here).

:class:`PanelState` is the model; :mod:`.panel` draws it. Keeping the two apart lets tests check
the state after each event without a frontend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..engines.base import S3BATCH, JobHandle, JobStatus
from .logtext import LogBuffer, clean_line
from .progress import (
    Progress,
    badge_html,
    console_links,
    duration,
    processing_progress,
    resource_text,
    s3batch_progress,
)

MAX_MESSAGES = 50

# How the panel relates to its job:
PREPARING = "preparing"  # the cell is uploading; nothing submitted yet
WAITING = "waiting"  # the cell waits in the foreground (the kernel is busy)
FOLLOWING = "following"  # a background thread follows the job; the kernel is free
DETACHED = "detached"  # nobody follows the job any more; it keeps running
ENDED = "ended"  # terminal status seen; results being written back (or not)
DONE = "done"  # nothing more will happen here


@dataclass
class PanelState:
    """One job as the panel shows it."""

    max_lines: int = 200
    job_id: str = ""
    title: str = ""
    engine: str = ""
    kind: str = ""
    resource: str = ""
    links: dict[str, str] = field(default_factory=dict)
    state: str = "Submitting"
    phase: str = ""
    reason: str = ""
    terminal: bool = False
    succeeded: bool = False
    progress: dict[str, Any] = field(default_factory=dict)
    created: float | None = None
    ended: float | None = None
    mode: str = PREPARING
    writes_back: bool = True
    written_back: bool = False
    messages: list[str] = field(default_factory=list)
    log: LogBuffer = field(init=False)
    streams: set[str] = field(default_factory=set)
    instances: int = 1

    def __post_init__(self) -> None:
        self.log = LogBuffer(self.max_lines)

    # -- events ---------------------------------------------------------------------------------
    def on_started(self, handle: JobHandle, title: str, now: float) -> None:
        """The job was submitted or re-attached."""
        self.job_id, self.title = handle.job_id, title
        self.engine, self.kind = handle.engine, handle.kind
        self.links = console_links(handle)
        self.instances = int(handle.data.get("instance_count") or 1)
        if self.created is None:
            self.created = now
        if self.mode == PREPARING:
            self.mode = WAITING
        if self.state == "Submitting":
            self.state = "InProgress"

    def on_job(self, record: Any) -> None:
        """Details only the job's record has: what it runs on and when it was created."""
        request = getattr(record, "request", None) or {}
        self.resource = resource_text(request) or self.resource
        created = getattr(record, "created", None)
        if created:
            self.created = created

    def on_status(self, status: JobStatus, now: float) -> None:
        """A new state or phase."""
        self.state, self.phase, self.reason = status.state, status.phase, status.reason
        self.terminal, self.succeeded = status.terminal, status.succeeded
        if status.progress:
            self.progress = dict(status.progress)
        if status.terminal and self.ended is None:
            self.ended = now
        if self.mode == PREPARING:
            self.mode = WAITING

    def on_log(self, stream: str, line: str) -> None:
        """A log line, named by its stream when the job has several."""
        self.streams.add(stream)
        several = self.instances > 1 or len(self.streams) > 1
        self.log.append(f"{stream} | {clean_line(line)}" if several else clean_line(line))

    def on_message(self, text: str) -> None:
        """One of jupyter-remote's own lines."""
        self.messages.extend(clean_line(part) for part in text.splitlines() or [""])
        del self.messages[:-MAX_MESSAGES]

    def on_finished(self, status: JobStatus, now: float) -> None:
        """The job is terminal (or the caller stopped watching)."""
        self.on_status(status, now)
        if status.terminal:
            self.mode = ENDED

    # -- what to draw ---------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether the job may still change."""
        return not self.terminal and self.mode not in (DETACHED, DONE)

    def elapsed(self, now: float) -> float:
        """Seconds since the job was created, up to its end."""
        if self.created is None:
            return 0.0
        return max(0.0, (self.ended or now) - self.created)

    def progress_view(self) -> Progress:
        """The progress bar for this kind of job."""
        if self.kind == S3BATCH:
            return s3batch_progress(
                self.progress, state=self.state, terminal=self.terminal, succeeded=self.succeeded
            )
        return processing_progress(
            state=self.state,
            phase=self.phase,
            terminal=self.terminal,
            succeeded=self.succeeded,
            has_logs=self.log.total > 0,
            submitted=self.mode != PREPARING,
            settled=self.mode == DONE or not self.writes_back,
            written_back=self.written_back,
        )

    def status_html(self, now: float, progress: Progress | None = None) -> str:
        """Badge, then the reason (when ended) or the progress label, elapsed time, a hint."""
        import html

        progress = progress or self.progress_view()
        parts = [badge_html(self.state)]
        detail = self.reason if self.terminal and self.reason else progress.label
        if detail:
            parts.append(f'<span class="jr-detail">{html.escape(detail)}</span>')
        parts.append(f'<span class="jr-elapsed">{duration(self.elapsed(now))}</span>')
        hint = self.hint()
        if hint:
            parts.append(f'<span class="jr-hint" style="opacity:0.7">{html.escape(hint)}</span>')
        return '<span class="jr-status-line">' + " · ".join(parts) + "</span>"

    def rerun_blocker(self) -> str:
        """Why the failed tasks of this S3 Batch job cannot be re-run now ("" when they can)."""
        if not self.terminal:
            return "The job has not ended yet: its failed tasks can be re-run once it has"
        # A task that failed has run, and a job that ran a task writes its completion report
        # whether it ended Complete, Failed or Cancelled: the report the re-run is built from.
        if int(self.progress.get("failed") or 0) <= 0:
            return "No task failed: there is nothing to re-run"
        return ""

    def hint(self) -> str:
        """A short line saying what the buttons (or the kernel) can do now."""
        if self.mode == WAITING and not self.terminal:
            return "this cell waits for the job: interrupt the kernel (■) to detach"
        if self.mode == DETACHED:
            return f"detached; the job keeps running: jupyter_remote.attach({self.job_id!r})"
        if self.terminal and not self.writes_back and self.mode == DONE and self.succeeded:
            return f"not written back yet: jupyter_remote.attach({self.job_id!r})"
        return ""

    def header_html(self) -> str:
        """Job name, engine, what it runs on, and the AWS console link."""
        import html

        parts = [f'<b class="jr-job-id">{html.escape(self.job_id or "new job")}</b>']
        if self.engine:
            parts.append(html.escape(self.engine))
        if self.resource:
            parts.append(html.escape(self.resource))
        for what, url in self.links.items():
            if not url.startswith(("https://", "http://")):
                continue
            href = html.escape(url, quote=True)
            label = "AWS console" if what == "job" else f"AWS console: {what}"
            parts.append(
                f'<a class="jr-link" href="{href}" target="_blank" rel="noopener" '
                f'style="text-decoration:underline">{html.escape(label)} ↗</a>'
            )
        return " · ".join(parts)

    def text(self, now: float | None = None) -> str:
        """A plain-text summary (the panel's text/plain form, for nbconvert and terminals)."""
        now = time.time() if now is None else now
        lines = [" · ".join(p for p in (self.job_id, self.engine, self.resource) if p)]
        detail = self.reason if self.terminal else self.phase
        detail = f" ({detail})" if detail else ""
        lines.append(f"{self.state}{detail} after {duration(self.elapsed(now))}")
        if self.log.dropped:
            lines.append(f"… {self.log.dropped:,} earlier log lines not shown")
        lines += list(self.log.lines)
        lines += self.messages
        return "\n".join(lines)
