"""A rough cost estimate of a ``%%s3batch`` job on AWS, for ``--dry-run``.

List prices (us-east-1, x86, as of writing; other regions differ): S3 Batch Operations charges
$0.25 per job and $1.00 per million objects; Lambda charges $0.20 per million requests and
$0.0000166667 per GB-second, and $0.0000000309 per GB-second of ``/tmp`` beyond the free 512 MB.
The duration per object is the caller's guess (``expected
seconds``): nothing has run yet, so it is an input, not a measurement.
"""

from __future__ import annotations

from typing import Any

BATCH_PER_JOB = 0.25
BATCH_PER_MILLION_OBJECTS = 1.00
LAMBDA_PER_MILLION_REQUESTS = 0.20
LAMBDA_PER_GB_SECOND = 0.0000166667
LAMBDA_EPHEMERAL_PER_GB_SECOND = 0.0000000309
FREE_EPHEMERAL_MB = 512


def estimate(
    objects: int,
    *,
    memory_mb: int,
    expected_seconds: float,
    ephemeral_mb: int = FREE_EPHEMERAL_MB,
) -> dict[str, Any]:
    """The estimated cost (USD) of one job over ``objects`` objects, by line item."""
    seconds = objects * expected_seconds
    gb_seconds = seconds * memory_mb / 1024
    extra_tmp_gb = max(ephemeral_mb - FREE_EPHEMERAL_MB, 0) / 1024
    items = {
        "s3batch_job": BATCH_PER_JOB,
        "s3batch_objects": objects / 1e6 * BATCH_PER_MILLION_OBJECTS,
        "lambda_requests": objects / 1e6 * LAMBDA_PER_MILLION_REQUESTS,
        "lambda_compute": gb_seconds * LAMBDA_PER_GB_SECOND,
        "lambda_ephemeral_storage": seconds * extra_tmp_gb * LAMBDA_EPHEMERAL_PER_GB_SECOND,
    }
    return {
        "objects": objects,
        "memory_mb": memory_mb,
        "expected_seconds_per_object": expected_seconds,
        "lambda_gb_seconds": round(gb_seconds, 3),
        "usd": {k: round(v, 6) for k, v in items.items()},
        "total_usd": round(sum(items.values()), 4),
        "note": "list prices, us-east-1, x86; S3 requests, data transfer and logs not included",
    }


def describe(cost: dict[str, Any]) -> str:
    """One line for the notebook."""
    return (
        f"Estimated cost: ${cost['total_usd']:.4f} for {cost['objects']:,} objects "
        f"(S3 Batch ${cost['usd']['s3batch_job'] + cost['usd']['s3batch_objects']:.4f}, "
        f"Lambda {cost['lambda_gb_seconds']:,} GB-s at {cost['memory_mb']} MB x "
        f"{cost['expected_seconds_per_object']} s/object)"
    )
