"""``ManifestGenerator``: the job lists its source bucket itself (aws-contracts.md A.2.3).

:func:`generator_request` builds the ``S3JobManifestGenerator`` that ``%%s3batch --bucket B
--prefix P --manifest-generator`` sends; :func:`generate` is what the local engine does with one
in Preparing: list the source bucket, keep the objects the ``Filter`` admits, and write them as
CSV rows (URL-encoded keys) for the tasks to read, streamed through a file.

With ``EnableManifestOutput`` the list is also written to ``ManifestOutputLocation`` in S3
Inventory layout. EMULATOR CHOICE (the layout is not documented; UNCONFIRMED):
``<ManifestPrefix>/job-<JobId>/manifest.json`` (an S3 Inventory ``manifest.json``: ``fileFormat``
CSV, ``fileSchema`` "Bucket, Key", ``files`` with key, size and MD5) and one gzipped data file
``<ManifestPrefix>/job-<JobId>/data/<md5>.csv.gz``; ``GeneratedManifestDescriptor`` points at the
``manifest.json``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .s3batch_manifest import encode_key
from .spec.s3batch import bucket_arn, bucket_from_arn

GENERATED_FORMAT = "S3InventoryReport_CSV_20211130"
# Filters that need object metadata a listing does not return (replication, encryption).
UNSUPPORTED_FILTERS = (
    "EligibleForReplication",
    "ObjectReplicationStatuses",
    "MatchAnyObjectEncryption",
)


class GeneratorError(Exception):
    """The generator cannot run; ``code`` becomes the job's FailureCode."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def generator_request(
    *,
    source_bucket: str,
    prefix: str,
    output_bucket: str,
    output_prefix: str,
    suffix: str | None = None,
) -> dict[str, Any]:
    """The ``ManifestGenerator`` member of CreateJob for ``source_bucket``/``prefix``.

    The generated list is kept (``EnableManifestOutput``) under ``output_prefix``, so a job's
    objects can be looked up (and re-run) after it ends.
    """
    generator: dict[str, Any] = {
        "SourceBucket": bucket_arn(source_bucket),
        "EnableManifestOutput": True,
        "ManifestOutputLocation": {
            "Bucket": bucket_arn(output_bucket),
            "ManifestPrefix": output_prefix.strip("/"),
            "ManifestFormat": GENERATED_FORMAT,
        },
    }
    constraint: dict[str, list[str]] = {}
    if prefix:
        constraint["MatchAnyPrefix"] = [prefix]
    if suffix:
        constraint["MatchAnySuffix"] = [suffix]
    if constraint:
        generator["Filter"] = {"KeyNameConstraint": constraint}
    return {"S3JobManifestGenerator": generator}


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


class _Filter:
    """``JobManifestGeneratorFilter`` as a predicate over ListObjectsV2 entries."""

    def __init__(self, spec: dict[str, Any]) -> None:
        unsupported = [name for name in UNSUPPORTED_FILTERS if spec.get(name) not in (None, [])]
        if unsupported:
            raise GeneratorError(
                "UnsupportedFilter",
                f"the local engine cannot evaluate {', '.join(unsupported)} (a listing does not "
                "show replication or encryption)",
            )
        names = spec.get("KeyNameConstraint") or {}
        self.prefixes = list(names.get("MatchAnyPrefix") or [])
        self.suffixes = list(names.get("MatchAnySuffix") or [])
        self.substrings = list(names.get("MatchAnySubstring") or [])
        self.after = _timestamp(spec["CreatedAfter"]) if spec.get("CreatedAfter") else None
        self.before = _timestamp(spec["CreatedBefore"]) if spec.get("CreatedBefore") else None
        self.larger = spec.get("ObjectSizeGreaterThanBytes")
        self.smaller = spec.get("ObjectSizeLessThanBytes")
        self.classes = set(spec.get("MatchAnyStorageClass") or [])

    @property
    def list_prefix(self) -> str:
        """A prefix for ListObjectsV2 that loses nothing: the one prefix, if there is one."""
        return self.prefixes[0] if len(self.prefixes) == 1 else ""

    def admits(self, obj: dict[str, Any]) -> bool:
        """Whether the listed object ``obj`` belongs in the manifest."""
        key = obj["Key"]
        if self.prefixes and not any(key.startswith(p) for p in self.prefixes):
            return False
        if self.suffixes and not any(key.endswith(s) for s in self.suffixes):
            return False
        if self.substrings and not any(s in key for s in self.substrings):
            return False
        # "Created" is the object's creation, which for S3 is its LastModified.
        modified = _timestamp(obj["LastModified"])
        if self.after is not None and modified <= self.after:
            return False
        if self.before is not None and modified >= self.before:
            return False
        size = int(obj.get("Size", 0))
        if self.larger is not None and size <= self.larger:
            return False
        if self.smaller is not None and size >= self.smaller:
            return False
        return not self.classes or obj.get("StorageClass", "STANDARD") in self.classes


def _objects(client: Any, bucket: str, rules: _Filter) -> Iterator[dict[str, Any]]:
    from botocore.exceptions import ClientError

    paginator = client.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=rules.list_prefix):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/") and rules.admits(obj):
                    yield obj
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "") or "AccessDenied"
        raise GeneratorError(code, f"cannot list the source bucket {bucket}: {exc}") from exc


def generate(client: Any, generator: dict[str, Any], dest: Path) -> int:
    """List and filter the source bucket into ``dest`` (CSV ``Bucket,Key`` rows); the count."""
    spec = generator.get("S3JobManifestGenerator") or {}
    bucket = bucket_from_arn(spec["SourceBucket"])
    rules = _Filter(spec.get("Filter") or {})
    count = 0
    with open(dest, "w", encoding="utf-8", newline="\n") as out:
        for obj in _objects(client, bucket, rules):
            out.write(f"{bucket},{encode_key(obj['Key'])}\n")
            count += 1
    return count


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def publish_generated(
    client: Any, generator: dict[str, Any], rows: Path, *, job_id: str
) -> dict[str, Any] | None:
    """Write the generated list to ``ManifestOutputLocation``; the ``GeneratedManifestDescriptor``.

    Nothing is written (and None returned) unless ``EnableManifestOutput`` is set.
    """
    spec = generator.get("S3JobManifestGenerator") or {}
    output = spec.get("ManifestOutputLocation")
    if not spec.get("EnableManifestOutput") or not output:
        return None
    bucket = bucket_from_arn(output["Bucket"])
    base = "/".join(p for p in (output.get("ManifestPrefix", "").strip("/"), f"job-{job_id}") if p)
    packed = rows.with_suffix(".csv.gz")
    # Streamed, file to file: a generated list may hold millions of rows.
    with open(rows, "rb") as src, gzip.GzipFile(packed, "wb", mtime=0) as out:
        shutil.copyfileobj(src, out, 1024 * 1024)
    md5 = _file_md5(packed)
    data_key = f"{base}/data/{md5}.csv.gz"
    client.upload_file(str(packed), bucket, data_key)
    document = {
        "sourceBucket": bucket_from_arn(spec["SourceBucket"]),
        "destinationBucket": output["Bucket"],
        "version": "2021-11-30",
        "creationTimestamp": str(int(time.time() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key",
        "files": [{"key": data_key, "size": packed.stat().st_size, "MD5checksum": md5}],
    }
    put = client.put_object(
        Bucket=bucket, Key=f"{base}/manifest.json", Body=json.dumps(document, indent=2).encode()
    )
    arn_prefix = output["Bucket"].split(":::", 1)[0]
    return {
        "Format": output.get("ManifestFormat", GENERATED_FORMAT),
        "Location": {
            "ObjectArn": f"{arn_prefix}:::{bucket}/{base}/manifest.json",
            "ETag": put["ETag"].strip('"'),
        },
    }
