"""A small on-demand price table for ``--dry-run``'s cost line.

Prices are SageMaker *Processing* on-demand list prices for us-east-1 in USD per instance-hour,
as published on https://aws.amazon.com/sagemaker/pricing/ around :data:`PRICES_DATE`. They were
not re-checked against the live page (UNCONFIRMED); other regions cost more or less, and Savings
Plans change the bill. The line says all that, so it is an order of magnitude, not a quote.
"""

from __future__ import annotations

PRICES_DATE = "2024-06"
PRICES_REGION = "us-east-1"
STORAGE_PER_GB_MONTH = 0.14  # ML storage volume, USD per GB-month
HOURS_PER_MONTH = 730

HOURLY = {
    "ml.t3.medium": 0.05,
    "ml.t3.large": 0.10,
    "ml.t3.xlarge": 0.20,
    "ml.t3.2xlarge": 0.399,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.m5.12xlarge": 2.765,
    "ml.m5.24xlarge": 5.53,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
    "ml.c5.9xlarge": 1.836,
    "ml.c5.18xlarge": 3.672,
    "ml.r5.large": 0.151,
    "ml.r5.xlarge": 0.302,
    "ml.r5.2xlarge": 0.605,
    "ml.r5.4xlarge": 1.21,
    "ml.r5.12xlarge": 3.629,
    "ml.r5.24xlarge": 7.258,
    "ml.g4dn.xlarge": 0.736,
    "ml.g4dn.2xlarge": 1.053,
    "ml.g4dn.4xlarge": 1.686,
    "ml.g4dn.8xlarge": 3.046,
    "ml.g4dn.12xlarge": 5.474,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.g5.4xlarge": 2.03,
    "ml.p3.2xlarge": 3.825,
}


def hourly_cost(instance_type: str, instance_count: int, volume_size: int) -> float | None:
    """USD per hour of the cluster (instances + volumes), None for an unlisted type."""
    price = HOURLY.get(instance_type)
    if price is None:
        return None
    storage = volume_size * STORAGE_PER_GB_MONTH / HOURS_PER_MONTH
    return instance_count * (price + storage)


def estimate_line(
    instance_type: str, instance_count: int, volume_size: int, max_runtime: int
) -> str:
    """One line: the hourly cost and the most the job can cost before MaxRuntimeInSeconds."""
    hourly = hourly_cost(instance_type, instance_count, volume_size)
    source = f"{PRICES_REGION} on-demand list prices as of {PRICES_DATE}; other regions differ"
    if hourly is None:
        return (
            f"estimated cost: no price listed for {instance_type} in the table "
            f"({source}); see https://aws.amazon.com/sagemaker/pricing/"
        )
    worst = hourly * max_runtime / 3600
    return (
        f"estimated cost: ${hourly:.3f}/hour for {instance_count} x {instance_type} with "
        f"{volume_size} GB each; at most ${worst:.2f} if it runs the full {max_runtime} s "
        f"(--max-runtime) ({source})"
    )
