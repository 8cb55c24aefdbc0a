"""JobBundle: the files a job needs, each content-addressed by sha256.

A part is stored at ``parts/<sha256>/<name>`` under the staging prefix, where the sha256 covers
the part's name and bytes. Parts that must sit in one folder (the bootstrap and the payload module
it imports) form one group with one address. Archives are deterministic (sorted entries, fixed
timestamps and modes), so an unchanged module folder keeps its address and is not uploaded again.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".mypy_cache", ".venv"})
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Part:
    """One file of a bundle: its relative path (``<sha>/<name>``) and where its bytes are."""

    relpath: str
    size: int
    data: bytes | None = None
    path: Path | None = None

    def open(self) -> io.BufferedIOBase:
        """Open the part's bytes for reading."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")


def _group_digest(members: Mapping[str, str]) -> str:
    sha = hashlib.sha256()
    for name in sorted(members):
        sha.update(f"{name}\0{members[name]}\n".encode())
    return sha.hexdigest()


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def zip_tree(root: Path) -> bytes:
    """Zip a folder deterministically; entries are ``<folder name>/<relative path>``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for filename in sorted(filenames):
                if filename.endswith((".pyc", ".pyo")):
                    continue
                full = Path(dirpath) / filename
                arcname = f"{root.name}/{full.relative_to(root).as_posix()}"
                info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, full.read_bytes())
    return buffer.getvalue()


class JobBundle:
    """The parts of one job, in the order they were added."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def _add(self, part: Part) -> str:
        if all(p.relpath != part.relpath for p in self.parts):
            self.parts.append(part)
        return part.relpath

    def add_group(self, files: Mapping[str, bytes]) -> dict[str, str]:
        """Add files that must share one folder; return ``{name: relpath}``."""
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        group = _group_digest(digests)
        return {
            name: self._add(Part(relpath=f"{group}/{name}", size=len(data), data=data))
            for name, data in files.items()
        }

    def add_bytes(self, name: str, data: bytes) -> str:
        """Add one in-memory file; return its relative path."""
        return self.add_group({name: data})[name]

    def add_file(self, name: str, path: str | os.PathLike[str], sha256: str | None = None) -> str:
        """Add a file from disk without reading it into memory; pass ``sha256`` if known."""
        path = Path(path)
        digest = _group_digest({name: sha256 or _file_sha256(path)})
        return self._add(Part(relpath=f"{digest}/{name}", size=path.stat().st_size, path=path))

    def add_module(self, path: str | os.PathLike[str]) -> str:
        """Add a local module: a ``.py`` file as is, a folder as a deterministic zip."""
        path = Path(path).expanduser()
        if not path.exists():
            raise ConfigurationError(f"--module {path}: no such file or folder")
        if path.is_dir():
            return self.add_bytes(f"{path.name}.zip", zip_tree(path.resolve()))
        if path.suffix != ".py":
            raise ConfigurationError(
                f"--module {path}: expected a .py file or a package folder, got {path.suffix!r}"
            )
        return self.add_bytes(path.name, path.read_bytes())

    @property
    def size(self) -> int:
        """Total bytes of all parts."""
        return sum(p.size for p in self.parts)

    @property
    def digest(self) -> str:
        """One sha256 for the whole bundle (over its parts' addresses)."""
        return hashlib.sha256("\n".join(sorted(p.relpath for p in self.parts)).encode()).hexdigest()

    def manifest(self, parts_prefix_uri: str) -> list[object]:
        """The SageMaker ``ManifestFile`` document that lists every part under the prefix."""
        prefix = parts_prefix_uri if parts_prefix_uri.endswith("/") else parts_prefix_uri + "/"
        return [{"prefix": prefix}, *(p.relpath for p in self.parts)]
