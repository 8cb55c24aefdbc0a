"""The processing bootstrap refuses a Python version mismatch before touching the payload."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "jupyter_remote" / "runtime"


def test_python_mismatch_fails_fast_with_a_message(tmp_path):
    root = tmp_path / "opt" / "ml"
    code = root / "processing" / "input" / "code" / "abc"
    code.mkdir(parents=True)
    for name in ("processing_bootstrap.py", "payload.py"):
        shutil.copy(RUNTIME / name, code / name)
    (code / "job.json").write_text(json.dumps({"python": "2.7"}))
    (root / "config").mkdir()
    (root / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    (root / "config" / "processingjobconfig.json").write_text("{}")
    proc = subprocess.run(
        [
            sys.executable,
            str(code / "processing_bootstrap.py"),
            "/opt/ml/processing/input/code/abc/job.json",
        ],
        env={**os.environ, "JUPYTER_REMOTE_OPT_ML": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    message = (root / "output" / "message").read_text()
    assert "notebook runs Python 2.7" in message
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in message
