"""A SQLite record of every submitted job, so a kernel restart or Ctrl-C never loses one.

Several kernels (processes) may use one store at once. Each operation opens its own short-lived
connection, so nothing is shared across threads or forks; the database is in WAL mode, waits up
to :data:`BUSY_TIMEOUT` seconds for a lock, and every write is one ``BEGIN IMMEDIATE``
transaction committed with ``synchronous = FULL``, so a record is on disk when the call returns.

The file holds each job's signing key (in ``handle``), so it is created ``0600``, and the default
data directory is kept ``0700``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import JupyterRemoteError
from .paths import data_dir

TERMINAL_STATES = frozenset({"Completed", "Failed", "Stopped", "Complete", "Cancelled"})
SCHEMA_VERSION = 1
BUSY_TIMEOUT = 10.0  # seconds to wait for another kernel's write
FILE_NAME = "jobs.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY NOT NULL,
    engine TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    request TEXT NOT NULL,
    handle TEXT NOT NULL,
    writeback TEXT NOT NULL,
    cell TEXT NOT NULL DEFAULT '',
    notebook TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    written_back INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created);
"""
_JSON_FIELDS = frozenset({"request", "handle", "writeback"})
_AMBIGUOUS_SHOWN = 10


class JobStoreError(JupyterRemoteError):
    """The job store file cannot be used (unreadable, corrupt, or from a newer version)."""


class JobNotFoundError(JobStoreError, KeyError):
    """No recorded job has this id (or, for :meth:`JobStore.get`, this id prefix)."""

    # KeyError would repr() the message; show it as written.
    __str__ = Exception.__str__

    def __init__(self, message: str, job_id: str = "") -> None:
        super().__init__(message)
        self.job_id = job_id


class AmbiguousJobIdError(JobNotFoundError):
    """An id prefix matches more than one recorded job."""

    def __init__(self, message: str, job_id: str = "", matches: Sequence[str] = ()) -> None:
        super().__init__(message, job_id)
        self.matches = list(matches)


@dataclass
class JobRecord:
    """What the store keeps about one job; ``request``, ``handle`` and ``writeback`` are JSON."""

    job_id: str
    engine: str
    kind: str
    state: str
    created: float
    updated: float
    request: dict[str, Any]
    handle: dict[str, Any]
    writeback: dict[str, Any]
    cell: str = ""
    notebook: str = ""
    reason: str = ""
    written_back: bool = False


_COLUMNS = tuple(f.name for f in fields(JobRecord))
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    encoded = {}
    for name, value in values.items():
        if name in _JSON_FIELDS:
            value = json.dumps(value)
        elif name == "written_back":
            value = int(bool(value))
        encoded[name] = value
    return encoded


def _decode(row: Sequence[Any]) -> JobRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name])
    values["written_back"] = bool(values["written_back"])
    return JobRecord(**values)


class JobStore:
    """The jobs recorded in one SQLite file (by default ``data_dir() / "jobs.sqlite3"``)."""

    path: Path

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            directory = data_dir()
            os.chmod(directory, 0o700)  # it may predate us, or have been made under a loose umask
            self.path = directory / FILE_NAME
        else:
            self.path = Path(path).expanduser().absolute()
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # SQLite gives its -wal and -shm files the database file's mode, so this covers them too.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        self._initialize()

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

    # -- connections -----------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            raise JobStoreError(f"cannot open the job store {self.path}: {exc}") from exc
        try:
            connection.execute("PRAGMA synchronous = FULL")
            yield connection
        except sqlite3.Error as exc:
            raise JobStoreError(f"job store {self.path}: {exc}") from exc
        finally:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection:
            # IMMEDIATE takes the write lock up front (waiting on the busy timeout), so a
            # read-then-write never fails half-way because another kernel wrote in between.
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _initialize(self) -> None:
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                with self._connect() as connection:
                    connection.execute("PRAGMA journal_mode = WAL")
                break
            except JobStoreError as exc:
                # Switching to WAL needs a moment alone with the file and does not always wait
                # on the busy timeout, so two kernels creating the store together retry here.
                cause = exc.__cause__
                locked = isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)
                if not locked or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        with self._transaction() as connection:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JobStoreError(
                    f"the job store {self.path} has schema version {version}, newer than this "
                    f"jupyter-remote understands ({SCHEMA_VERSION}); upgrade jupyter-remote"
                )
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- operations ------------------------------------------------------------------------

    def record(self, rec: JobRecord) -> None:
        """Insert ``rec``, replacing any record with the same ``job_id``; durable on return."""
        values = _encode({name: getattr(rec, name) for name in _COLUMNS})
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._transaction() as connection:
            connection.execute(
                f"INSERT OR REPLACE INTO jobs ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                [values[name] for name in _COLUMNS],
            )

    def update(self, job_id: str, **changes: Any) -> JobRecord:
        """Change the given fields of job ``job_id`` (exact id), stamp ``updated``, return it.

        Raises :class:`JobNotFoundError` if no such job is recorded.
        """
        unknown = sorted(set(changes) - set(_COLUMNS[1:]))
        if unknown:
            raise TypeError(f"JobStore.update() got unknown or read-only field(s): {unknown}")
        values = _encode({"updated": time.time(), **changes})
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._transaction() as connection:
            cursor = connection.execute(
                f"UPDATE jobs SET {assignments} WHERE job_id = ?", [*values.values(), job_id]
            )
            if cursor.rowcount == 0:
                raise self._not_found(job_id)
            row = connection.execute(f"{_SELECT} WHERE job_id = ?", (job_id,)).fetchone()
        return _decode(row)

    def get(self, job_id: str) -> JobRecord:
        """The job with this id, or the only job whose id starts with it.

        Raises :class:`JobNotFoundError` if none matches and :class:`AmbiguousJobIdError` if the
        prefix matches several.
        """
        with self._connect() as connection:
            row = connection.execute(f"{_SELECT} WHERE job_id = ?", (job_id,)).fetchone()
            if row is not None:
                return _decode(row)
            # substr, not LIKE: job ids may contain "_" and "%", which LIKE treats as wildcards.
            rows = connection.execute(
                f"{_SELECT} WHERE ? != '' AND substr(job_id, 1, length(?)) = ? "
                f"ORDER BY created DESC LIMIT {_AMBIGUOUS_SHOWN + 1}",
                (job_id, job_id, job_id),
            ).fetchall()
        if len(rows) == 1:
            return _decode(rows[0])
        if not rows:
            raise self._not_found(job_id)
        matches = [row[0] for row in rows[:_AMBIGUOUS_SHOWN]]
        more = ", ..." if len(rows) > _AMBIGUOUS_SHOWN else ""
        raise AmbiguousJobIdError(
            f"{job_id!r} matches several recorded jobs ({', '.join(matches)}{more}); "
            "give more of the job id",
            job_id,
            matches,
        )

    def list(
        self,
        *,
        engine: str | None = None,
        states: Iterable[str] | None = None,
        active_only: bool = False,
        limit: int | None = None,
    ) -> list[JobRecord]:
        """Recorded jobs, newest first, optionally only one engine's, in ``states``, or active."""
        clauses: list[str] = []
        params: list[Any] = []
        if engine is not None:
            clauses.append("engine = ?")
            params.append(engine)
        if states is not None:
            wanted = sorted(set(states))
            if not wanted:
                return []
            clauses.append(f"state IN ({', '.join('?' for _ in wanted)})")
            params += wanted
        if active_only:
            clauses.append(f"state NOT IN ({', '.join('?' for _ in TERMINAL_STATES)})")
            params += sorted(TERMINAL_STATES)
        query = _SELECT
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY created DESC, rowid DESC"
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be 0 or more, not {limit}")
            query += " LIMIT ?"
            params.append(limit)
        with self._connect() as connection:
            rows = connection.execute(query, params).fetchall()
        return [_decode(row) for row in rows]

    def remove(self, job_id: str) -> None:
        """Forget job ``job_id`` (exact id); raises :class:`JobNotFoundError` if unknown."""
        with self._transaction() as connection:
            cursor = connection.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            if cursor.rowcount == 0:
                raise self._not_found(job_id)

    def _not_found(self, job_id: str) -> JobNotFoundError:
        return JobNotFoundError(
            f"no recorded job matches {job_id!r} (job store {self.path}); "
            "jupyter_remote.jobs() lists the recorded jobs",
            job_id,
        )
