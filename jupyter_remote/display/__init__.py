"""How a job shows itself while it runs: one small interface, a text and (later) a widget form."""

from __future__ import annotations

from typing import Protocol

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
    """The best display for where we run (text until the widget panel lands)."""
    from .text import TextDisplay

    return TextDisplay()
