"""Tags put on every job: where it came from, without anything secret.

A git remote URL may carry credentials (``https://user:token@host/repo``) or tokens in its query
string; only scheme, host, port and path are kept, and a value AWS would reject is left out.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

# The CreateProcessingJob Tag.Value pattern, with \p{L}\p{Z}\p{N} narrowed to what we emit.
_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{0,256}$")
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def sanitize_remote(url: str) -> str | None:
    """A git remote without user, password, query or fragment; None if nothing safe is left."""
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        if not parts.hostname:
            return None
        port = f":{parts.port}" if parts.port else ""
        clean = f"{parts.scheme}://{parts.hostname}{port}{parts.path}"
    else:
        match = _SCP_LIKE.match(url)
        if not match:
            return None  # a local path: nothing useful to tag, and it may name a home folder
        clean = f"{match['host']}:{match['path']}"
    return clean if _TAG_VALUE.match(clean) else None


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def job_tags(cwd: str | Path | None = None) -> dict[str, str]:
    """``jupyter-remote:python`` and, inside a git checkout, its sanitized remote and commit."""
    folder = Path(cwd or Path.cwd())
    tags = {"jupyter-remote:python": PYTHON}
    remote = sanitize_remote(_git(folder, "config", "--get", "remote.origin.url"))
    if remote:
        tags["jupyter-remote:git-remote"] = remote
    commit = _git(folder, "rev-parse", "HEAD")
    if re.fullmatch(r"[0-9a-f]{40}", commit):
        tags["jupyter-remote:git-commit"] = commit
    return tags
