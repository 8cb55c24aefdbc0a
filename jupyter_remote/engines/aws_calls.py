"""Small helpers around boto3 calls: error codes, throttling backoff, STS identity, JSON.

botocore's own retries (standard mode, see :func:`jupyter_remote.storage.make_client`) already
back off on throttling; :func:`call_with_backoff` is the second line, for callers such as the
monitor that must survive a throttled minute instead of failing the watch.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Sleep = Callable[[float], None]

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    """The AWS error message of a botocore ``ClientError`` (``str(exc)`` otherwise)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")) or str(exc)


def is_throttling(exc: BaseException) -> bool:
    """Whether ``exc`` is AWS telling us to slow down."""
    return error_code(exc) in THROTTLING_CODES


def call_with_backoff(
    call: Callable[[], T],
    *,
    sleep: Sleep = time.sleep,
    attempts: int = 6,
    base: float = 1.0,
    cap: float = 20.0,
) -> T:
    """Run ``call``; on throttling wait (exponential backoff, full jitter) and try again."""
    from botocore.exceptions import ClientError

    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            if not is_throttling(exc) or attempt == attempts - 1:
                raise
            sleep(random.uniform(base, min(cap, base * 2**attempt)))
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class Identity:
    """Who the credentials belong to (STS GetCallerIdentity)."""

    account: str
    arn: str

    @property
    def partition(self) -> str:
        """``aws``, ``aws-cn`` or ``aws-us-gov``: taken from the caller's own ARN."""
        return self.arn.split(":")[1] if self.arn.startswith("arn:") else "aws"


def caller_identity(sts: Any) -> Identity:
    """Ask STS who we are; a missing or rejected credential becomes a clear error."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..errors import ConfigurationError

    try:
        response = sts.get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        raise ConfigurationError(
            f"AWS credentials did not work ({exc}). Configure them (AWS_PROFILE, --profile, "
            "aws configure or aws sso login), or run on the local engine with --engine local."
        ) from exc
    return Identity(account=response["Account"], arn=response["Arn"])


def jsonable(value: Any) -> Any:
    """A boto3 response or request as JSON-ready data (ISO datetimes, no ResponseMetadata)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
