"""boto3 clients for botocore's Stubber: they never reach a network."""

from __future__ import annotations

from typing import Any


def offline_client(service: str) -> Any:
    """A client whose endpoint is never reached: the Stubber answers every call."""
    import boto3

    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        endpoint_url="http://127.0.0.1:9",
    )
