"""The ipywidgets job panel: one job, live, under the cell that started it.

A :class:`JobPanel` is a :class:`~jupyter_remote.display.JobDisplay`. Events only change its
:class:`~.panel_state.PanelState`; a :class:`~.throttle.Throttle` thread draws that state at most
twice a second (a handful of widget messages per flush), so a job printing thousands of lines
cannot flood the frontend. :meth:`JobPanel.follow` watches the job from a thread of its own, which
is what lets ``--no-wait`` return at once while the panel keeps updating; only then can the
buttons act, since a cell that waits keeps the kernel from handling clicks.

ipywidgets is imported when the panel is first drawn, never before.
"""

from __future__ import annotations

import contextlib
import html
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, MutableMapping
from types import SimpleNamespace
from typing import Any

from ..engines.base import S3BATCH, JobHandle, JobStatus
from ..monitor import watch
from . import bind_job, follow_in_background, kernel
from .logtext import log_html
from .panel_actions import download_report, find_job, read_full_log
from .panel_state import DETACHED, DONE, ENDED, FOLLOWING, PREPARING, WAITING, PanelState
from .throttle import Throttle

BUSY_TIP = (
    "This cell waits for the job, so the kernel cannot handle clicks: interrupt the kernel (■) "
    "to detach; the panel then keeps following the job and its buttons work."
)
FULL_LOG_LINES = 20_000
FULL_LOG_REDRAW = 5.0  # seconds between redraws of the whole log while it grows
RERUN_SUBMITTING = "submitting"  # Re-run failed was clicked; the new job is not submitted yet


# The panel following each job in this kernel: a newer panel of the same job takes over.
_FOLLOWING: weakref.WeakValueDictionary[str, JobPanel] = weakref.WeakValueDictionary()


class _Detached(Exception):
    """Raised in the follower thread when Detach is clicked."""


class _View:
    """What ``display()`` shows: the widget, with a plain-text summary for nbconvert and co."""

    def __init__(self, panel: JobPanel) -> None:
        self.panel = panel

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "text/plain": self.panel.text(),
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.panel.widget.model_id,
            },
        }


class JobPanel:
    """A live job panel (header, status badge, progress, bounded log, buttons)."""

    coalesces = True  # tells wrappers that thin updates for text output to pass everything on

    def __init__(
        self,
        *,
        max_lines: int = 200,
        interval: float = 0.5,
        show: Callable[[Any], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = PanelState(max_lines=max_lines)
        self.job: Any = None
        self._clock = clock
        self._show = show
        self._lock = threading.RLock()
        self._throttle = Throttle(self._flush, interval=interval, tick=1.0)
        self._w: SimpleNamespace | None = None
        self._shown = False
        self._display_handle: Any = None
        self._view = _View(self)
        self._detach = threading.Event()
        self._full_log: deque[str] | None = None
        self._full_drawn = float("-inf")
        self._confirming = False
        self._poll_interval = 1.0
        self._rerun = ""  # "", RERUN_SUBMITTING, or the id of the job Re-run failed submitted
        self.rerun_panel: JobPanel | None = None  # the panel of that job, shown under this one
        self._finalized = False
        self._hooked = False  # whether the end of the showing cell settles the panel
        self.settled = threading.Event()  # set once the panel drew its final state

    # -- JobDisplay ---------------------------------------------------------------------------
    def started(self, handle: JobHandle, title: str) -> None:
        """The job was submitted or re-attached (a panel that followed it hands over)."""
        previous = _FOLLOWING.pop(handle.job_id, None)
        if previous is not None and previous is not self:
            previous.message("Followed by a newer panel of this job from now on.")
            previous.detach()
        self._event(lambda: self.state.on_started(handle, title, self._clock()))

    def status(self, status: JobStatus) -> None:
        """A new state or phase."""
        self._event(lambda: self.state.on_status(status, self._clock()))

    def log(self, stream: str, line: str) -> None:
        """A log line (buffered; drawn with the next flush)."""

        def apply() -> None:
            self.state.on_log(stream, line)
            if self._full_log is not None:
                self._full_log.append(self.state.log.lines[-1])

        self._event(apply)

    def message(self, text: str) -> None:
        """One of jupyter-remote's own lines."""
        self._event(lambda: self.state.on_message(text))

    def finished(self, status: JobStatus) -> None:
        """The job is terminal: draw it now, so the cell ends with the final state sent."""
        with self._lock:
            self.state.on_finished(status, self._clock())
        self._ensure_shown()
        if self._hooked:
            self._throttle.flush_now()  # the cell may still write back; settled when it ends
        else:
            self._finalize()

    # -- binding and following ------------------------------------------------------------------
    def bind(self, job: Any) -> None:
        """The job object behind the panel (its buttons call its methods)."""
        self.job = job
        self._event(lambda: self.state.on_job(getattr(job, "record", None)))

    def follow(
        self,
        job: Any,
        *,
        user_ns: MutableMapping[str, Any] | None = None,
        poll_interval: float = 1.0,
    ) -> threading.Thread:
        """Watch ``job`` from a background thread; write its results into ``user_ns`` if given.

        The write-back runs on the kernel's main thread between cells, never inside one.
        """
        self.bind(job)
        self._poll_interval = poll_interval
        with self._lock:
            self.state.mode = FOLLOWING
            self.state.writes_back = user_ns is not None
        self._detach.clear()
        self._ensure_shown()
        self._finalized = False
        self.settled.clear()
        self._throttle.start()
        thread = threading.Thread(
            target=self._follow,
            args=(job, user_ns, poll_interval),
            name=f"jupyter-remote-follow-{job.job_id}",
            daemon=True,
        )
        _FOLLOWING[job.job_id] = self
        thread.start()
        return thread

    def detach(self) -> None:
        """Stop following (the job keeps running); what the Detach button does."""
        self._detach.set()

    def _sleep(self, seconds: float) -> None:
        if self._detach.wait(seconds):
            raise _Detached

    def _follow(self, job: Any, user_ns: MutableMapping[str, Any] | None, interval: float) -> None:
        try:
            status = watch(
                job.engine,
                job.handle,
                self,
                store=job.engine.store,
                poll_interval=interval,
                sleep=self._sleep,
            )
        except _Detached:
            self._end_following(f"Detached from {job.job_id}; it keeps running.")
            return
        except Exception as exc:
            self._end_following(f"Stopped following {job.job_id}: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            self.state.on_finished(status, self._clock())
        self._throttle.poke()
        if user_ns is None:
            self._finalize()
        else:
            kernel.call_in_kernel_thread(lambda: self._write_back(job, status, user_ns))

    def _end_following(self, text: str) -> None:
        with self._lock:
            self.state.on_message(text)
            self.state.mode = DETACHED
        self._finalize()

    def _write_back(self, job: Any, status: JobStatus, user_ns: MutableMapping[str, Any]) -> None:
        try:
            job.write_back(status, user_ns, self)
            with self._lock:
                self.state.written_back = True
        except Exception as exc:
            # No cell to raise into: the panel is where the remote error is seen.
            self.message(f"{type(exc).__name__}: {exc}")
        finally:
            self._finalize()

    # -- drawing --------------------------------------------------------------------------------
    @property
    def widget(self) -> Any:
        """The panel's root widget (built on first use)."""
        return self._ensure_widgets().box

    def flush(self) -> None:
        """Draw the current state now (normally the throttle thread does, twice a second)."""
        self._throttle.flush_now()

    def text(self) -> str:
        """The plain-text form of the panel."""
        with self._lock:
            return self.state.text(self._clock())

    def _event(self, apply: Callable[[], None]) -> None:
        with self._lock:
            apply()
        self._ensure_shown()
        if self._throttle.running:
            self._throttle.poke()
        else:
            self._throttle.flush_now()

    def _ensure_shown(self) -> None:
        if self._shown:
            return
        self._shown = True
        self._ensure_widgets()
        if self._show is not None:
            self._display_handle = self._show(self._view)
        else:
            from IPython.display import display

            self._display_handle = display(self._view, display_id=True)
            if kernel.in_cell():
                self._hooked = True
                kernel.after_cell(self._cell_ended)
        if not self._finalized:
            self._throttle.start()

    def _cell_ended(self) -> None:
        """The cell that showed the panel ended: settle a panel nobody will update."""
        with self._lock:
            mode = self.state.mode
            if mode in (PREPARING, WAITING):
                # The cell raised, timed out or was interrupted without a follower taking over.
                self.state.mode = DETACHED if self.state.job_id else DONE
                if not self.state.job_id:
                    self.state.state = "Not submitted"
        if mode != FOLLOWING:
            self._finalize()

    def _finalize(self) -> None:
        with self._lock:
            if self._finalized:
                return
            self._finalized = True
            if self.state.mode in (ENDED, WAITING, PREPARING):
                self.state.mode = DONE
            job = self.job
        if job is not None and self.state.writes_back and not self.state.written_back:
            # The store may be gone; the badge still tells the outcome.
            with contextlib.suppress(Exception):
                record = job.engine.store.get(job.job_id)
                with self._lock:
                    self.state.written_back = bool(record.written_back)
        self._throttle.stop(final=True)
        if self._display_handle is not None:
            # Refresh the text/plain form saved in the notebook; the widget is unchanged.
            with contextlib.suppress(Exception):
                self._display_handle.update(self._view)
        self.settled.set()

    def _ensure_widgets(self) -> SimpleNamespace:
        if self._w is not None:
            return self._w
        from .panel_widgets import build_panel_widgets

        self._w = build_panel_widgets(
            on_stop=self._guard("Stop", self._ask_stop),
            on_stop_yes=self._guard("Stop", self._stop),
            on_stop_no=self._guard("Stop", self._cancel_stop),
            on_detach=self._guard("Detach", self.detach),
            on_confirm=self._guard("Confirm", self._confirm),
            on_report=self._guard("Download report", self._report),
            on_rerun=self._guard("Re-run", self._rerun_failed),
            on_show_all=self._guard("Show all", self._toggle_full_log),
        )
        return self._w

    def _flush(self) -> None:
        w = self._w
        if w is None:
            return
        now = self._clock()
        with self._lock:
            st = self.state
            progress = st.progress_view()
            header = st.header_html()
            status = st.status_html(now, progress)
            if self._full_log is not None:
                # Up to 20,000 lines: redrawn every few seconds, not with each flush.
                if self._finalized or now - self._full_drawn >= FULL_LOG_REDRAW:
                    self._full_drawn = now
                    log = log_html(self._full_log, height=480, empty="(the log is empty)")
                else:
                    log = w.log.value
            else:
                log = log_html(st.log.lines, dropped=st.log.dropped, empty="(no log lines yet)")
            messages = _messages_html(st.messages)
            buttons = self._button_states()
            confirm_text = f"Stop job {html.escape(st.job_id)}? It cannot be resumed."
        # Assigning an unchanged value sends nothing, so each flush sends only what changed.
        w.header.value = header
        w.status.value = status
        with w.bar.hold_sync():
            w.bar.value = progress.fraction
            w.bar.bar_style = progress.style
        w.log.value = log
        w.messages.value = messages
        w.messages.layout.display = "" if messages else "none"
        for name, (visible, disabled, tooltip) in buttons.items():
            button = getattr(w, name)
            button.layout.display = "" if visible else "none"
            if visible:  # a hidden button keeps its old state: one message fewer
                with button.hold_sync():
                    button.disabled = disabled
                    button.tooltip = tooltip
                    if name == "show_all":
                        button.description = (
                            "Show last lines" if self._full_log is not None else "Show all"
                        )
        w.confirm_text.value = confirm_text
        w.confirm_bar.layout.display = "" if self._confirming else "none"

    def _button_states(self) -> dict[str, tuple[bool, bool, str]]:
        st, job = self.state, self.job
        busy = st.mode in (PREPARING, WAITING) and not st.terminal
        tip = BUSY_TIP if busy else ""

        def has(name: str) -> bool:
            # Not bound yet (re-attached by id): the job is found when a button is clicked.
            return job is None or callable(getattr(job, name, None))

        submitted = bool(st.job_id)
        confirmable = job is not None and callable(getattr(job, "confirm", None))
        if self._rerun == RERUN_SUBMITTING:
            rerun_tip = "Submitting a job over the failed tasks…"
        elif self._rerun:
            rerun_tip = f"Re-run as {self._rerun}: its panel is below"
        else:
            # Not the busy tip: while the cell waits the job runs, and running is the reason.
            rerun_tip = st.rerun_blocker()
        return {
            "stop": (submitted and not st.terminal and has("stop"), busy, tip or "Stop the job"),
            "detach": (
                st.mode in (WAITING, FOLLOWING) and not st.terminal,
                busy,
                tip or "Stop following; the job keeps running",
            ),
            "confirm": (
                st.state == "Suspended" and confirmable,
                busy,
                tip or "Confirm the job so it runs",
            ),
            "report": (
                st.terminal
                and job is not None
                and any(callable(getattr(job, n, None)) for n in ("download_report", "table")),
                False,
                "Save the completion report as CSV in the notebook's folder",
            ),
            "rerun": (
                submitted and st.kind == S3BATCH and has("rerun_failed"),
                bool(rerun_tip),
                rerun_tip or "Submit a new job over the failed tasks only (its panel shows below)",
            ),
            "show_all": (submitted, busy, tip or "Show the whole log"),
        }

    # -- buttons --------------------------------------------------------------------------------
    def _guard(self, what: str, action: Callable[[], None]) -> Callable[[Any], None]:
        def handler(_button: Any = None) -> None:
            try:
                action()
            except Exception as exc:
                self.message(f"{what} failed: {type(exc).__name__}: {exc}")
            self._event(lambda: None)

        return handler

    def resolve_job(self) -> Any:
        """The bound job, or the recorded job of this id (found in the job store)."""
        if self.job is None:
            self.bind(find_job(self.state.job_id))
        return self.job

    def _ask_stop(self) -> None:
        self._confirming = True

    def _cancel_stop(self) -> None:
        self._confirming = False

    def _stop(self) -> None:
        self._confirming = False
        self.resolve_job().stop()
        self.message(f"Stop requested for {self.state.job_id}.")

    def _confirm(self) -> None:
        self.resolve_job().confirm()
        self.message(f"Confirmed {self.state.job_id}; it will run.")

    def _report(self) -> None:
        self.message(download_report(self.resolve_job()))

    def _rerun_failed(self) -> None:
        with self._lock:
            if self._rerun:  # clicked again before the button was drawn disabled
                return
            blocker = self.state.rerun_blocker()
            if not blocker:
                self._rerun = RERUN_SUBMITTING
        if blocker:
            self.message(f"Re-run: {blocker}.")
            return
        self.message(f"Re-running the failed tasks of {self.state.job_id}: submitting…")
        # Reading the report and submitting take a while (on AWS, seconds): not in the handler,
        # which runs on the kernel's message loop.
        threading.Thread(
            target=self._submit_rerun,
            name=f"jupyter-remote-rerun-{self.state.job_id}",
            daemon=True,
        ).start()

    def _submit_rerun(self) -> None:
        try:
            job = self.resolve_job()
            new = job.rerun_failed()
        except Exception as exc:
            with self._lock:
                self._rerun = ""  # nothing was submitted: the button may be clicked again
            self.message(f"Re-run failed: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            self._rerun = new.job_id
        try:
            self._show_rerun(job, new)
        except Exception as exc:
            self.message(
                f"Re-run submitted as {new.job_id}, but its panel failed: "
                f"{type(exc).__name__}: {exc}"
            )
        # The line naming the new job belongs in the text form the notebook saves.
        if self._display_handle is not None:
            with contextlib.suppress(Exception):
                self._display_handle.update(self._view)

    def _show_rerun(self, job: Any, new: Any) -> None:
        # The click came through a widget message, which no output area listens to: a panel
        # displayed from here would show nowhere, so the new job's panel goes inside this one.
        child = JobPanel(show=self._adopt)
        self.rerun_panel = child
        bind_job(child, new)
        child.started(new.handle, f"{new.job_id}: the failed tasks of {job.job_id} again")
        var = getattr(new, "output_var", None) or ""
        child.message(
            f"Submitted {new.job_id}, a re-run of the failed tasks of {job.job_id}; not waiting. "
            f"jupyter_remote.attach({new.job_id!r}) waits for it"
            + (f" and stores its table in {var}." if var else ".")
        )
        follow_in_background(child, new, poll_interval=self._poll_interval)
        self.message(f"Re-running the failed tasks of {job.job_id} as {new.job_id} (panel below).")

    def _adopt(self, view: _View) -> None:
        reruns = self._ensure_widgets().reruns
        reruns.children = (*reruns.children, view.panel.widget)

    def _toggle_full_log(self) -> None:
        if self._full_log is not None:
            self._full_log = None
            return
        lines, note = read_full_log(self.resolve_job(), FULL_LOG_LINES)
        self._full_log = deque(lines, maxlen=FULL_LOG_LINES)
        self._full_drawn = float("-inf")
        if note:
            self.message(note)


def _messages_html(messages: list[str]) -> str:
    if not messages:
        return ""
    return (
        '<pre class="jr-messages" style="margin:0;white-space:pre-wrap;'
        'font-size:var(--jp-code-font-size,12px)">' + html.escape("\n".join(messages)) + "</pre>"
    )
