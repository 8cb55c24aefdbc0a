"""The signed payload file format shared by the notebook and the remote runtime.

Standard library + cloudpickle only: this file is shipped inside every job bundle.

Layout of a payload file::

    MAGIC | pickle stream (protocol 5) | buffer 0 | buffer 1 | ... | index | u64 len(index)

The index is JSON: ``{"pickle": n, "buffers": [n0, n1, ...]}``. Large buffers (numpy arrays,
bytes-like objects) travel out of band, so writing never holds a second in-memory copy of them
and reading makes exactly one. The content-address of a payload is the sha256 of the whole file;
its signature is ``HMAC-SHA256(key, purpose + ":" + sha256)``, kept outside the file so an
unchanged payload keeps its address across jobs while each job signs it with its own key.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pickle
import struct
from typing import IO, Any

import cloudpickle

MAGIC = b"JRPAYLD1"
PROTOCOL = 5
_CHUNK = 8 * 1024 * 1024


class SignatureError(Exception):
    """The payload's signature is missing or wrong, or the file is not a payload."""


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        self._raw.write(view)
        self.sha.update(view)
        self.count += view.nbytes
        return view.nbytes


def sign(key: bytes, purpose: str, sha256_hex: str) -> str:
    """Return the hex HMAC-SHA256 that binds a payload digest to one job and one purpose."""
    return hmac.new(key, f"{purpose}:{sha256_hex}".encode(), hashlib.sha256).hexdigest()


def verify(key: bytes, purpose: str, sha256_hex: str, signature: str | None) -> None:
    """Raise :class:`SignatureError` unless ``signature`` matches."""
    if not signature:
        raise SignatureError(f"the {purpose} payload is unsigned; refusing to load it")
    if not hmac.compare_digest(sign(key, purpose, sha256_hex), signature):
        raise SignatureError(
            f"the {purpose} payload's signature does not match this job's key; it was changed "
            "after it was written or belongs to another job. Refusing to load it."
        )


def dump(obj: Any, path: str | os.PathLike[str]) -> str:
    """Pickle ``obj`` into a payload file at ``path`` and return the file's sha256 hex digest."""
    buffers: list[pickle.PickleBuffer] = []
    with open(path, "wb") as raw:
        out = _HashingWriter(raw)
        out.write(MAGIC)
        start = out.count
        cloudpickle.CloudPickler(out, protocol=PROTOCOL, buffer_callback=buffers.append).dump(obj)
        lengths = [len(MAGIC), out.count - start]
        sizes = []
        for buf in buffers:
            view = buf.raw()
            out.write(view)
            sizes.append(view.nbytes)
            view.release()
        index = json.dumps({"pickle": lengths[1], "buffers": sizes}).encode()
        out.write(index)
        out.write(struct.pack("<Q", len(index)))
    return out.sha.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the sha256 hex digest of a file, read in chunks."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _read_exact(handle: IO[bytes], size: int, sha: Any) -> bytearray:
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        n = handle.readinto(view[got : got + _CHUNK])  # type: ignore[attr-defined]
        if not n:
            raise SignatureError("payload file is truncated")
        got += n
    sha.update(data)
    return data


def load(
    path: str | os.PathLike[str], *, key: bytes, purpose: str, signature: str | None
) -> tuple[Any, str]:
    """Verify and unpickle a payload file; return ``(obj, sha256_hex)``.

    Nothing is unpickled before the whole file has been hashed and the signature checked.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        handle.seek(size - 8)
        (index_len,) = struct.unpack("<Q", handle.read(8))
        handle.seek(size - 8 - index_len)
        index_raw = handle.read(index_len)
        handle.seek(0)
        sha = hashlib.sha256()
        magic = _read_exact(handle, len(MAGIC), sha)
        if bytes(magic) != MAGIC:
            raise SignatureError(f"{path} is not a jupyter-remote payload")
        index = json.loads(index_raw)
        stream = _read_exact(handle, index["pickle"], sha)
        buffers = [_read_exact(handle, n, sha) for n in index["buffers"]]
        sha.update(handle.read())  # the index and its length
    digest = sha.hexdigest()
    verify(key, purpose, digest, signature)
    return pickle.loads(stream, buffers=buffers), digest


def value_digest(value: Any) -> str | None:
    """Return a digest of a value's pickled form, or None if it cannot be pickled.

    Used to notice variables a cell changed in place (``lst.append(x)``): the runtime compares the
    digest before and after the cell.
    """
    sha = hashlib.sha256()

    def take(buf: pickle.PickleBuffer) -> bool:
        with buf.raw() as view:
            sha.update(view)
        return False  # the buffer is hashed here, so keep it out of the stream

    try:
        sha.update(cloudpickle.dumps(value, protocol=PROTOCOL, buffer_callback=take))
    except Exception:
        return None
    return sha.hexdigest()
