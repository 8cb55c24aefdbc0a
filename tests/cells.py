"""Running cells in the real IPython shell of the ``shell`` fixture, as a notebook does."""

from __future__ import annotations

from typing import Any


def run(shell: Any, source: str) -> Any:
    """Run a cell like the notebook does; return the ExecutionResult."""
    return shell.run_cell(source, store_history=True)


def ok(shell: Any, source: str) -> Any:
    """Run a cell that must succeed: its error, if any, is raised here."""
    result = run(shell, source)
    if result.error_before_exec or result.error_in_exec:
        raise result.error_before_exec or result.error_in_exec
    return result
