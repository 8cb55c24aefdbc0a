"""JupyterLab on 127.0.0.1 and Debian's chromium driven by Playwright (see .ci/install-browser)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("JUPYTER_REMOTE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server with fresh workspaces and settings; yields (URL, its root folder)."""
    if shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("JupyterLab is not installed: pip install -e '.[test]'")
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    # No "official Jupyter news?" toast over the screenshots.
    notification = base / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port = _free_port()
    log = open(base / "lab.log", "wb")  # noqa: SIM115 - the server writes it until the end
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--allow-root",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.workspaces_dir={base / 'workspaces'}",
            f"--LabApp.user_settings_dir={base / 'settings'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # A data dir (job store, embedded S3) of its own: the demo's buckets stay out of the rest.
        env={
            **os.environ,
            "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
            "JUPYTER_REMOTE_DATA_DIR": str(base / "data"),
        },
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"JupyterLab did not start:\n{(base / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.25)
    try:
        yield url, root
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        # The kernel started an embedded S3 server in that data dir; it outlives kernels.
        subprocess.run(
            [sys.executable, "-c", "from jupyter_remote import embedded_s3; embedded_s3.stop()"],
            env={**os.environ, "JUPYTER_REMOTE_DATA_DIR": str(base / "data")},
            check=False,
            timeout=30,
        )


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's chromium (Playwright cannot download its own browser here)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
            "Install it with .ci/install-browser (apt-get install -y chromium)."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright's Python package: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
