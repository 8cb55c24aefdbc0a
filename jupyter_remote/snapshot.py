"""Capture the variables a cell reads into one signed payload, and restore results.

Objects defined in the notebook (``__main__``) travel by value (cloudpickle's default for them);
objects from installed modules travel by reference; a module bound to a name (``np``) travels as
an import instruction, not a pickle.
"""

from __future__ import annotations

import io
import os
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PayloadSignatureError, UnpicklableVariableError, describe_type
from .runtime import payload

# Names IPython puts in every namespace; shipping them makes no sense.
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "_ih", "_oh", "_dh", "_"})


@dataclass
class Snapshot:
    """What was captured for one cell."""

    path: Path
    sha256: str
    size: int
    names: list[str]
    imports: dict[str, str]
    missing: list[str] = field(default_factory=list)


def _is_ipython_internal(name: str) -> bool:
    return name in _IPYTHON_NAMES or (name.startswith("_") and name.lstrip("_i").isdigit())


def _refused_reason(value: Any) -> str | None:
    """Values cloudpickle could copy but that would mean something else remotely."""
    import socket
    import threading

    if isinstance(value, io.IOBase):
        return "an open file or stream refers to this machine; open it inside the cell"
    if isinstance(value, socket.socket):
        return "a socket is a connection from this machine; open it inside the cell"
    lock_types = (type(threading.Lock()), type(threading.RLock()))
    if isinstance(value, lock_types):
        return "a lock only synchronizes threads of this process"
    return None


def _unpicklable_reason(value: Any) -> str | None:
    import cloudpickle

    refused = _refused_reason(value)
    if refused:
        return refused

    try:
        cloudpickle.CloudPickler(_NullWriter(), protocol=payload.PROTOCOL).dump(value)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


class _NullWriter(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        return memoryview(data).nbytes


def capture(
    user_ns: Mapping[str, Any],
    names: Iterable[str],
    directory: str | os.PathLike[str],
    *,
    exclude: Iterable[str] = (),
) -> Snapshot:
    """Write the values of ``names`` found in ``user_ns`` to a payload file under ``directory``.

    Raises :class:`UnpicklableVariableError` naming the first variable that cannot travel.
    Names absent from the namespace are listed in ``Snapshot.missing`` (the remote cell raises
    ``NameError`` for them exactly as it would locally).
    """
    excluded = set(exclude)
    values: dict[str, Any] = {}
    imports: dict[str, str] = {}
    missing: list[str] = []
    for name in sorted(set(names)):
        if name in excluded or _is_ipython_internal(name):
            continue
        if name not in user_ns:
            missing.append(name)
            continue
        value = user_ns[name]
        if isinstance(value, types.ModuleType):
            imports[name] = value.__name__
            continue
        refused = _refused_reason(value)
        if refused:
            raise UnpicklableVariableError(name, describe_type(value), refused)
        values[name] = value
    path = Path(directory) / "payload.bin"
    try:
        digest = payload.dump(values, path)
    except Exception as exc:
        path.unlink(missing_ok=True)
        for name, value in values.items():
            reason = _unpicklable_reason(value)
            if reason is not None:
                raise UnpicklableVariableError(name, describe_type(value), reason) from exc
        raise UnpicklableVariableError(
            ", ".join(values), "several", f"{type(exc).__name__}: {exc}"
        ) from exc
    return Snapshot(
        path=path,
        sha256=digest,
        size=path.stat().st_size,
        names=sorted(values),
        imports=imports,
        missing=missing,
    )


def load_signed(
    path: str | os.PathLike[str], *, key: bytes, purpose: str, signature: str | None
) -> Any:
    """Load a payload written by the runtime, refusing unsigned or tampered files."""
    try:
        obj, _ = payload.load(path, key=key, purpose=purpose, signature=signature)
    except payload.SignatureError as exc:
        raise PayloadSignatureError(str(exc)) from exc
    return obj
