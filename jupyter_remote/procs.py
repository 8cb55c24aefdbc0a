"""Processes that outlive the kernel: starting them detached and telling whether they live."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies count as dead; our own are reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # a child of ours that exited: reap it
        if done:
            return False
    except ChildProcessError:
        pass
    # An orphan that exited may linger as a zombie if nothing reaps it (as in some containers).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def spawn_detached(module: str, jobdir: Path) -> int:
    """Run ``python -m module JOBDIR`` in its own session (a kernel restart does not kill it).

    Its output goes to ``JOBDIR/supervisor.log``; returns the pid.
    """
    with open(jobdir / "supervisor.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, str(jobdir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=jobdir,
        )
    return proc.pid
