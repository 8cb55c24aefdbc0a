"""S3 Batch CSV manifests: read them streamed, find their shape, or make one by listing a prefix.

A CSV manifest (``S3BatchOperations_CSV_20180820``) has no header; each row holds the columns the
request's ``Fields`` name, and keys are URL-encoded (aws-contracts.md A.2.2). Reading never holds
more than one chunk and one row in memory, so a manifest of millions of rows costs no more than
one of ten. A row that cannot be read becomes a :class:`ManifestRow` with ``error`` set: the
engine reports it as a failed task instead of failing the whole job.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import quote

from .errors import ConfigurationError
from .s3uri import S3Uri
from .spec.s3batch import ManifestLocation

_CHUNK = 1024 * 1024
_PEEK_BYTES = 64 * 1024
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{1,254}$")  # legacy names too


class ManifestRow(NamedTuple):
    """One manifest row: its 0-based position, fields as written, and what is wrong with it."""

    index: int
    bucket: str
    key: str  # URL-encoded, exactly as in the manifest
    version: str | None
    error: str = ""


def encode_key(key: str) -> str:
    """URL-encode a key for a manifest (``%20`` for spaces, ``%2B`` for ``+``; ``/`` kept)."""
    return quote(key, safe="/")


def iter_lines(
    stream: IO[bytes] | Any, chunk: int = _CHUNK, *, keepends: bool = False
) -> Iterator[str]:
    r"""Yield the lines of a UTF-8 byte stream, one chunk at a time.

    Lines end at ``\n`` only (a trailing ``\r`` is dropped unless ``keepends``): the other
    characters ``str.splitlines`` breaks on may appear inside a key or a result message.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while True:
        data = stream.read(chunk)
        pending += decoder.decode(data or b"", final=not data)
        if data and "\n" not in pending:
            continue
        lines = pending.split("\n")
        # The last piece is a line cut by the chunk boundary (or "" after a final newline).
        pending = lines.pop()
        for line in lines:
            yield line + "\n" if keepends else line.rstrip("\r")
        if not data:
            if pending:
                yield pending if keepends else pending.rstrip("\r")
            return


def parse_rows(lines: Iterable[str], fields: list[str] | tuple[str, ...]) -> Iterator[ManifestRow]:
    """Turn manifest lines into rows; blank lines are skipped, malformed ones carry an error."""
    width = len(fields)
    b_at, k_at = fields.index("Bucket"), fields.index("Key")
    v_at = fields.index("VersionId") if "VersionId" in fields else None
    index = 0
    for line in lines:
        if not line.strip():
            continue  # EMULATOR CHOICE (aws-contracts.md A.2.2): a blank line is not a task
        try:
            cols = next(csv.reader([line]))
        except csv.Error as exc:
            yield ManifestRow(index, "", line, None, f"row {index + 1} is not valid CSV: {exc}")
            index += 1
            continue
        error = ""
        if len(cols) != width:
            error = (
                f"row {index + 1} has {len(cols)} field(s), the manifest's Fields name {width} "
                f"({','.join(fields)}); a key containing a comma must be URL-encoded"
            )
            cols += [""] * (width - len(cols))
        bucket, key = cols[b_at].strip(), cols[k_at]
        version = (cols[v_at] or None) if v_at is not None else None
        if not error and not _BUCKET.match(bucket):
            error = f"row {index + 1}: {bucket!r} is not a bucket name"
        elif not error and not key:
            error = f"row {index + 1} has an empty key"
        yield ManifestRow(index, bucket, key, version, error)
        index += 1


def count_rows(lines: Iterable[str]) -> int:
    """The number of tasks a manifest holds (its non-blank lines)."""
    return sum(1 for line in lines if line.strip())


def _head(client: Any, uri: S3Uri, what: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        return client.head_object(Bucket=uri.bucket, Key=uri.key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            raise ConfigurationError(f"{what} {uri} does not exist") from exc
        raise


def locate_manifest(client: Any, uri: S3Uri) -> ManifestLocation:
    """Find a manifest's ETag and, from its first row, whether it carries version ids."""
    head = _head(client, uri, "--manifest")
    if head.get("ContentLength", 0) == 0:
        raise ConfigurationError(f"--manifest {uri} is empty")
    body = client.get_object(Bucket=uri.bucket, Key=uri.key, Range=f"bytes=0-{_PEEK_BYTES - 1}")
    first = next((ln for ln in iter_lines(body["Body"]) if ln.strip()), "")
    width = len(next(csv.reader([first]), []))
    if width not in (2, 3):
        raise ConfigurationError(
            f"--manifest {uri}: the first row has {width} field(s); a CSV manifest has "
            "Bucket,Key or Bucket,Key,VersionId per row, URL-encoded keys, no header"
        )
    fields = ("Bucket", "Key", "VersionId")[:width]
    return ManifestLocation(uri=uri, etag=head["ETag"].strip('"'), fields=fields)


def generate_manifest(
    client: Any, source: S3Uri, dest: S3Uri, *, upload: bool = True
) -> tuple[ManifestLocation, int]:
    """List ``source`` (bucket + prefix) into a CSV manifest of its objects, stored at ``dest``.

    Streamed: pages of the listing go to a temporary file, which is then uploaded. Folder
    markers (keys ending in ``/``) are left out. Returns the manifest and its row count. Without
    ``upload`` nothing is written and the ETag is the MD5 S3 would give the file (a dry run).
    """
    paginator = client.get_paginator("list_objects_v2")
    count = 0
    md5 = hashlib.md5()
    fd, name = tempfile.mkstemp(prefix="jupyter-remote-manifest-", suffix=".csv")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            for page in paginator.paginate(Bucket=source.bucket, Prefix=source.key):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/"):
                        continue
                    line = f"{source.bucket},{encode_key(obj['Key'])}\n".encode()
                    out.write(line)
                    md5.update(line)
                    count += 1
        if count == 0:
            raise ConfigurationError(f"no objects under {source}: nothing to process")
        if not upload:
            return ManifestLocation(uri=dest, etag=md5.hexdigest()), count
        client.upload_file(str(path), dest.bucket, dest.key)
    finally:
        path.unlink(missing_ok=True)
    head = _head(client, dest, "generated manifest")
    return ManifestLocation(uri=dest, etag=head["ETag"].strip('"')), count
