"""Where jupyter-remote keeps its files on this machine."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "JUPYTER_REMOTE_DATA_DIR"


def data_dir() -> Path:
    """Return the per-user data directory (job store, sandboxes, embedded S3), creating it.

    ``$JUPYTER_REMOTE_DATA_DIR`` overrides the platform default, which tests and CI use to keep
    every run apart.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        path = Path(override).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("jupyter-remote", appauthor=False))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
