"""A ``%%s3batch`` function's settings, checked against Lambda's limits before any call.

The limits are aws-contracts.md C.1 (the documented ones, not the newer model maxima that only
apply to other function kinds); key and ARN patterns come from botocore's Lambda model itself, so
a value this module accepts is one ``CreateFunction`` accepts. Every message names the option.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..errors import ConfigurationError

DEFAULT_TIMEOUT = 60  # seconds: Lambda's own default of 3 s is too short for a cell's imports
DEFAULT_MEMORY = 512  # MB
DEFAULT_EPHEMERAL = 512  # MB, Lambda's own default
MAX_TIMEOUT = 900
MIN_MEMORY, MAX_MEMORY = 128, 10_240
MIN_EPHEMERAL, MAX_EPHEMERAL = 512, 10_240
MAX_ENV_BYTES = 4096
MAX_LAYERS = 5
ZIPPED_LIMIT = 52_428_800  # CodeSizeZipped: the largest .zip Lambda takes inline (ZipFile)
UNZIPPED_LIMIT = 262_144_000  # CodeSizeUnzipped: the code plus all its layers
# Set by the Lambda runtime; CreateFunction refuses them in Environment (Lambda developer guide,
# "Defined runtime environment variables").
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


@cache
def _pattern(*path: str) -> re.Pattern[str]:
    """A member's pattern from botocore's CreateFunction model (``key`` for a map's keys)."""
    from .validation import input_shape

    shape = input_shape("lambda", "CreateFunction")
    for member in path:
        shape = getattr(shape, member) if member in ("key", "member") else shape.members[member]
    return re.compile(shape.metadata["pattern"])


def parse_env(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--env``) as a dict."""
    from .pairs import parse_pairs

    return parse_pairs(items, "--env")


@dataclass(frozen=True)
class FunctionSettings:
    """The function options: ``--timeout --memory --ephemeral-storage --env --layer``."""

    timeout: int = DEFAULT_TIMEOUT
    memory: int = DEFAULT_MEMORY
    ephemeral_storage: int = DEFAULT_EPHEMERAL
    environment: Mapping[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()

    def check(self, reserved: Iterable[str] = ()) -> None:
        """Raise :class:`ConfigurationError` for anything Lambda would refuse.

        ``reserved`` are variables jupyter-remote sets itself (the payload signing key).
        """
        if not 1 <= self.timeout <= MAX_TIMEOUT:
            raise ConfigurationError(
                f"--timeout must be 1-{MAX_TIMEOUT} seconds, got {self.timeout}"
            )
        if not MIN_MEMORY <= self.memory <= MAX_MEMORY:
            raise ConfigurationError(
                f"--memory must be {MIN_MEMORY}-{MAX_MEMORY} MB, got {self.memory}"
            )
        if not MIN_EPHEMERAL <= self.ephemeral_storage <= MAX_EPHEMERAL:
            raise ConfigurationError(
                f"--ephemeral-storage (/tmp) must be {MIN_EPHEMERAL}-{MAX_EPHEMERAL} MB, "
                f"got {self.ephemeral_storage}"
            )
        ours = set(reserved)
        key_pattern = _pattern("Environment", "Variables", "key")
        for name in self.environment:
            if name in RESERVED_ENV or name in ours:
                raise ConfigurationError(
                    f"--env {name}: the Lambda runtime (or jupyter-remote) sets this variable"
                )
            if not key_pattern.fullmatch(name):
                raise ConfigurationError(
                    f"--env {name!r}: a name is a letter then letters, digits or _ "
                    "(at least two characters)"
                )
        if len(self.layers) > MAX_LAYERS:
            raise ConfigurationError(
                f"--layer given {len(self.layers)} times; a function has at most {MAX_LAYERS}"
            )
        layer_pattern = _pattern("Layers", "member")
        for arn in self.layers:
            if not layer_pattern.fullmatch(arn):
                raise ConfigurationError(
                    f"--layer {arn!r} is not a layer version ARN "
                    "(arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)"
                )
        if len(set(self.layers)) != len(self.layers):
            raise ConfigurationError("--layer: the same layer version is given twice")

    def request_fields(self, extra_env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The CreateFunction members these settings fill (``extra_env`` added to the user's)."""
        variables = {**self.environment, **(extra_env or {})}
        size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
        if size > MAX_ENV_BYTES:
            raise ConfigurationError(
                f"--env: the function's environment variables take {size} bytes "
                f"(jupyter-remote's own included); Lambda allows {MAX_ENV_BYTES}"
            )
        fields: dict[str, Any] = {
            "Timeout": self.timeout,
            "MemorySize": self.memory,
            "EphemeralStorage": {"Size": self.ephemeral_storage},
            "Environment": {"Variables": variables},
        }
        if self.layers:
            fields["Layers"] = list(self.layers)
        return fields
