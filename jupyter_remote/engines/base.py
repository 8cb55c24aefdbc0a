"""The engine interface: submit a request, describe it, stop it, read its logs."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..jobstore import JobRecord, JobStore
from ..storage import Endpoint, Storage

PROCESSING = "processing"
S3BATCH = "s3batch"


@dataclass
class JobStatus:
    """A job's state in its engine's own vocabulary, plus what a display needs."""

    state: str
    terminal: bool = False
    succeeded: bool = False
    reason: str = ""
    exit_message: str = ""
    phase: str = ""
    progress: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobHandle:
    """Everything needed to find a job again, even from another kernel (JSON-serializable)."""

    engine: str
    kind: str
    job_id: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Serializable form, as stored in the job store."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobHandle:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


class LogTail:
    """Follows one growing log file; remembers a byte offset so nothing is read twice."""

    def __init__(self, stream: str, path: str | os.PathLike[str], offset: int = 0) -> None:
        self.stream = stream
        self.path = Path(path)
        self.offset = offset
        self._partial = b""

    @property
    def cursor(self) -> int:
        """Offset of the first byte not yet returned as a line (what a re-attach resumes from)."""
        return self.offset - len(self._partial)

    def read(self, *, final: bool = False) -> list[str]:
        """Return complete new lines (and, when ``final``, a trailing partial line)."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if final and self._partial:
            lines.append(self._partial)
            self._partial = b""
        return [line.decode("utf-8", errors="replace").rstrip("\r") for line in lines]


class Engine(ABC):
    """Base of every engine.

    :meth:`submit` is fixed: it records the job in the store *before* the engine launches it and
    updates the record afterwards, so a crash or Ctrl-C never loses a submitted job. Subclasses
    write :meth:`_submit`, :meth:`describe`, :meth:`stop` and :meth:`logs`.
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]

    def __init__(self, *, endpoint: Endpoint, storage: Storage, store: JobStore) -> None:
        self.endpoint = endpoint
        self.storage = storage
        self.store = store

    def submit(self, record: JobRecord) -> JobHandle:
        """Record, then launch, the job described by ``record`` (its request and handle data)."""
        if record.kind not in self.kinds:
            raise ValueError(f"engine {self.name} does not run {record.kind} jobs")
        record.state = "Submitting"
        self.store.record(record)
        handle = JobHandle(self.name, record.kind, record.job_id, dict(record.handle))
        try:
            handle = self._submit(handle, record.request)
        except BaseException as exc:
            self.store.update(record.job_id, state="Failed", reason=f"submit failed: {exc!r}")
            raise
        self.store.update(record.job_id, state="InProgress", handle=handle.data)
        return handle

    @abstractmethod
    def _submit(self, handle: JobHandle, request: dict[str, Any]) -> JobHandle:
        """Launch the job; return the handle with any engine data added."""

    @abstractmethod
    def describe(self, handle: JobHandle) -> JobStatus:
        """Current status of the job."""

    @abstractmethod
    def stop(self, handle: JobHandle) -> None:
        """Ask the job to stop (returns at once; the status moves through Stopping)."""

    @abstractmethod
    def logs(self, handle: JobHandle, cursors: dict[str, int] | None = None) -> list[LogTail]:
        """Log followers for the job, starting at ``cursors`` (stream name → offset) if given."""
