"""How a job shows itself while it runs: one small interface, a text and a widget form.

The widget panel (:mod:`.panel`) is chosen inside a kernel with ipywidgets installed; ipywidgets
itself is imported only when a panel is first drawn.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..engines.base import JobHandle, JobStatus


class JobDisplay(Protocol):
    """What the monitor tells a display."""

    def started(self, handle: JobHandle, title: str) -> None:
        """The job was submitted (or re-attached)."""

    def status(self, status: JobStatus) -> None:
        """The status or phase changed."""

    def log(self, stream: str, line: str) -> None:
        """A new log line."""

    def message(self, text: str) -> None:
        """A line from jupyter-remote itself."""

    def finished(self, status: JobStatus) -> None:
        """The job reached a terminal status, or the caller stopped watching."""


def make_display(*, widgets: bool = True) -> JobDisplay:
    """The widget panel inside a kernel with ipywidgets (unless ``widgets`` is off), else text."""
    if widgets:
        from .kernel import widgets_available

        if widgets_available():
            from .panel import JobPanel

            return JobPanel()
    from .text import TextDisplay

    return TextDisplay()


def bind_job(display: JobDisplay, job: Any) -> None:
    """Give a display the job object it shows, if it wants one (the panel's buttons call it)."""
    bind = getattr(display, "bind", None)
    if callable(bind):
        bind(job)


def follow_in_background(display: JobDisplay, job: Any, *, poll_interval: float = 1.0) -> bool:
    """Keep a display updating from a background thread, if it can; return whether it does.

    The text display cannot (printing from a thread lands in whatever cell runs next).
    """
    follow = getattr(display, "follow", None)
    if not callable(follow):
        return False
    follow(job, poll_interval=poll_interval)
    return True
