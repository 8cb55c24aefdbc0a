"""Everything the sagemaker engine needs resolved before a cell is uploaded.

Region, endpoint, account, staging bucket, image and role are checked here, so every mistake is a
clear error before any byte leaves the notebook; :func:`prepare_resources` then makes the side
effects (the managed role and its policy) right before the upload, never on ``--dry-run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..config import RemoteSettings, aws_region, staging_uri
from ..errors import ConfigurationError
from ..s3uri import S3Uri
from ..spec import images
from ..storage import Endpoint, make_client
from . import iam
from .aws_calls import Identity, caller_identity, error_code


@dataclass
class SageMakerTarget:
    """Where and as whom a processing job will run."""

    endpoint: Endpoint
    identity: Identity
    region: str
    staging: S3Uri
    default_staging: bool
    role: iam.RoleChoice
    image: str


def aws_endpoint(*, region: str, profile: str | None) -> Endpoint:
    """AWS itself, or an AWS-compatible endpoint named by boto3's own variables (moto in tests).

    S3 alone pointing elsewhere cannot work: SageMaker would read the staging bucket from AWS.
    """
    s3_url = os.environ.get("AWS_ENDPOINT_URL_S3")
    all_url = os.environ.get("AWS_ENDPOINT_URL")
    if s3_url and not (all_url or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER")):
        raise ConfigurationError(
            f"AWS_ENDPOINT_URL_S3 sends S3 calls to {s3_url}, but SageMaker runs on AWS and "
            "could not read the job's files there. Unset it for the sagemaker engine, or run "
            "on the local engine (--engine local)."
        )
    url = s3_url or all_url
    if url:
        return Endpoint("custom", url=url, region=region, profile=profile)
    return Endpoint("aws", region=region, profile=profile)


def resolve_target(
    settings: RemoteSettings,
    *,
    python: str,
    instance_type: str,
    region: str | None = None,
    profile: str | None = None,
    role: str | None = None,
    image: str | None = None,
    allow_python_mismatch: bool = False,
) -> SageMakerTarget:
    """Resolve region, endpoint, image, account, staging and role; no side effects."""
    profile = profile or settings.profile or None
    region = region or aws_region(settings, profile=profile)
    if not region:
        raise ConfigurationError(
            "no AWS region: pass --region, set %config RemoteMagics.region, AWS_DEFAULT_REGION, "
            "or a region in your AWS profile"
        )
    endpoint = aws_endpoint(region=region, profile=profile)
    image_uri = images.choose_image(
        image or settings.image or None,
        region=region,
        instance_type=instance_type,
        python=python,
        allow_mismatch=allow_python_mismatch,
    )
    identity = caller_identity(make_client(endpoint, "sts"))
    staging = staging_uri(settings, endpoint, account=identity.account)
    choice = iam.resolve_role(
        role or settings.role or None,
        iam=make_client(endpoint, "iam"),
        sagemaker=make_client(endpoint, "sagemaker"),
        identity=identity,
    )
    return SageMakerTarget(
        endpoint=endpoint,
        identity=identity,
        region=region,
        staging=staging,
        default_staging=not settings.staging,
        role=choice,
        image=image_uri,
    )


def check_staging_owner(target: SageMakerTarget, s3: Any) -> None:
    """Refuse a default staging bucket that exists in someone else's account.

    ``sagemaker-<region>-<account>`` is a guessable name; SageMaker's SDK checks the owner too.
    A missing bucket is fine: the upload creates it.
    """
    from botocore.exceptions import ClientError

    if not target.default_staging:
        return
    bucket = target.staging.bucket
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=target.identity.account)
    except ClientError as exc:
        if error_code(exc) in ("403", "AccessDenied", "Forbidden"):
            raise ConfigurationError(
                f"the default staging bucket {bucket} exists but is not owned by account "
                f"{target.identity.account} (or you may not read it). Set %config "
                "RemoteMagics.staging = 's3://YOUR-BUCKET/prefix/'."
            ) from exc
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise


def prepare_resources(target: SageMakerTarget, request: dict[str, Any], s3: Any) -> bool:
    """Check the staging bucket and make the managed role fit ``request``; True if IAM changed."""
    check_staging_owner(target, s3)
    if not target.role.managed:
        return False
    return iam.ensure_processing_role(
        make_client(target.endpoint, "iam"),
        request=request,
        staging=target.staging,
        identity=target.identity,
        region=target.region,
    )
