"""One exception root for everything jupyter-remote raises."""

from __future__ import annotations

from typing import Any


class JupyterRemoteError(Exception):
    """Root of every error raised by jupyter-remote."""


class ConfigurationError(JupyterRemoteError, ValueError):
    """A setting, option or argument is invalid; raised before anything is uploaded."""


class UnpicklableVariableError(JupyterRemoteError):
    """A variable the cell reads cannot be sent to the remote job."""

    def __init__(self, name: str, type_name: str, reason: str) -> None:
        self.name = name
        self.type_name = type_name
        self.reason = reason
        super().__init__(
            f"Variable {name!r} of type {type_name} cannot be sent to the remote job: {reason}. "
            f"Recreate it inside the cell, or leave it out with --exclude {name}."
        )


class PayloadSignatureError(JupyterRemoteError):
    """A payload's signature is missing or does not match: it was not written by this job."""


class JobFailedError(JupyterRemoteError):
    """The job ended Failed or Stopped without a Python exception to re-raise."""

    def __init__(self, job_id: str, state: str, reason: str, log_tail: str = "") -> None:
        self.job_id = job_id
        self.state = state
        self.reason = reason
        self.log_tail = log_tail
        message = f"Job {job_id} ended {state}: {reason or 'no reason given'}"
        if log_tail:
            message += f"\nLast log lines:\n{log_tail}"
        super().__init__(message)


class JobTimeoutError(JupyterRemoteError, TimeoutError):
    """Waiting for a job took longer than the caller allowed; the job keeps running."""


class RemoteExecutionError(JupyterRemoteError):
    """The cell raised on the remote side.

    The error raised in the notebook is also an instance of the remote exception's own type
    (see :func:`jupyter_remote.results.remote_exception`), so ``except ValueError`` still works.
    """

    remote_traceback: str = ""
    job_id: str = ""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of formatting local frames, so the user sees where the
        # cell failed remotely rather than our result-handling code.
        lines = [f"Remote traceback (job {self.job_id}):"]
        lines.extend(self.remote_traceback.rstrip("\n").splitlines())
        return lines


def describe_type(value: Any) -> str:
    """Return ``module.QualName`` of a value's type, for messages."""
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
