"""Parsing and joining ``s3://bucket/key`` URIs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigurationError

# S3's bucket naming rules (the part that matters for catching typos early).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Uri:
    """A bucket and a key (or key prefix)."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str, *, what: str = "S3 URI") -> S3Uri:
        """Parse ``s3://bucket/key``; raise :class:`ConfigurationError` saying what is wrong."""
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise ConfigurationError(f"{what} {uri!r} must start with s3://")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigurationError(f"{what} {uri!r} names no bucket (expected s3://BUCKET/...)")
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise ConfigurationError(
                f"{what} {uri!r}: {bucket!r} is not a valid bucket name (3-63 characters: "
                "lowercase letters, digits, dots and hyphens)"
            )
        return cls(bucket, key)

    def join(self, *parts: str) -> S3Uri:
        """Append path segments with single slashes."""
        key = self.key
        for part in parts:
            part = part.strip("/")
            if part:
                key = f"{key.rstrip('/')}/{part}" if key else part
        return S3Uri(self.bucket, key)

    def as_prefix(self) -> S3Uri:
        """The same location with a trailing slash (a "folder")."""
        return (
            self if not self.key or self.key.endswith("/") else S3Uri(self.bucket, self.key + "/")
        )

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"
