"""Shared fixtures: an isolated data dir, no real AWS, moto's HTTP server, a real IPython shell."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# No test may reach real AWS or read the developer's credentials; decided before boto3 loads.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="jupyter-remote-tests-"))
for _name in (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "JUPYTER_REMOTE_ENGINE",
    "JUPYTER_REMOTE_STAGING",
    "JUPYTER_REMOTE_S3_ENDPOINT",
):
    os.environ.pop(_name, None)
os.environ.update(
    AWS_CONFIG_FILE=str(_SESSION_DIR / "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE=str(_SESSION_DIR / "no-aws-credentials"),
    AWS_EC2_METADATA_DISABLED="true",
    AWS_DEFAULT_REGION="us-east-1",
    JUPYTER_REMOTE_DATA_DIR=str(_SESSION_DIR / "data"),
    JUPYTER_REMOTE_STOP_GRACE="3",
)


@pytest.fixture(scope="session", autouse=True)
def _embedded_s3_teardown() -> Iterator[None]:
    """Stop the session's embedded S3 server (if a test started one) at the end."""
    yield
    from jupyter_remote import embedded_s3

    embedded_s3.stop()
    _stop_leftover_supervisors()


def _stop_leftover_supervisors() -> None:
    """End job supervisors this session left running (a failed test's Suspended job waits
    30 days), then remove the session's folder."""
    import shutil

    import psutil

    ours = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "jupyter_remote.engines.local_" in cmdline and str(_SESSION_DIR) in cmdline:
            ours.append(proc)
    for proc in ours:
        proc.terminate()
    _, alive = psutil.wait_procs(ours, timeout=5)
    for proc in alive:
        proc.kill()
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture
def store(tmp_path: Path):
    """A job store of this test's own."""
    from jupyter_remote.jobstore import JobStore

    return JobStore(tmp_path / "jobs.sqlite3")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's HTTP server on a free loopback port; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point every boto3 client (ours and the jobs') at moto, with dummy credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from jupyter_remote.config import aws_credentials_available

    aws_credentials_available.cache_clear()
    yield moto_server
    aws_credentials_available.cache_clear()


@pytest.fixture
def shell(tmp_path: Path):
    """A real IPython shell with the extension loaded and a clean namespace."""
    from IPython.core.interactiveshell import InteractiveShell

    real_main = sys.modules["__main__"]
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_remote")
    ip.user_ns.clear()
    ip.init_user_ns()
    yield ip
    ip.user_ns.clear()
    ip.init_user_ns()
    # IPython installs its own __main__; multiprocessing's spawn (later tests) needs the real one.
    sys.modules["__main__"] = real_main
