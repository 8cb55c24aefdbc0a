"""Settings: traitlets traits (``%config RemoteMagics.<name> = ...``) with environment defaults.

Precedence for every option: the magic's own argument, then ``%config``, then the environment
variable named in the trait's help, then the built-in default.
"""

from __future__ import annotations

import os
from functools import lru_cache

from traitlets import Bool, Float, Int, Unicode, default
from traitlets.config import Configurable

from .errors import ConfigurationError
from .s3uri import S3Uri
from .storage import Endpoint

ENGINES_WITHOUT_AWS = frozenset({"local"})


def _env(name: str, fallback: str) -> str:
    return os.environ.get(name, fallback)


class RemoteSettings(Configurable):
    """Defaults for ``%%remote_process`` and ``%%s3batch``."""

    engine = Unicode(
        "auto",
        help="Engine: 'auto' (AWS when credentials resolve, else 'local'), 'local', or a name "
        "registered under the 'jupyter_remote.engines' entry point. Env: JUPYTER_REMOTE_ENGINE.",
    ).tag(config=True)
    instance_type = Unicode(
        "ml.m5.xlarge", help="SageMaker instance type. Env: JUPYTER_REMOTE_INSTANCE_TYPE."
    ).tag(config=True)
    instance_count = Int(1, help="Number of instances.").tag(config=True)
    volume_size = Int(30, help="ML storage volume per instance, GB (1-16384).").tag(config=True)
    max_runtime = Int(
        86400, help="MaxRuntimeInSeconds (1-777600). Env: JUPYTER_REMOTE_MAX_RUNTIME."
    ).tag(config=True)
    image = Unicode("", help="Container image URI. Env: JUPYTER_REMOTE_IMAGE.").tag(config=True)
    staging = Unicode(
        "",
        help="s3://bucket/prefix/ for bundles and results. Env: JUPYTER_REMOTE_STAGING. "
        "Default: s3://jupyter-remote-staging/jupyter-remote/ on the embedded or a custom "
        "endpoint.",
    ).tag(config=True)
    role = Unicode("", help="IAM role ARN or name. Env: JUPYTER_REMOTE_ROLE.").tag(config=True)
    profile = Unicode("", help="AWS profile (boto3's own resolution when empty).").tag(config=True)
    region = Unicode("", help="AWS region (boto3's own resolution when empty).").tag(config=True)
    s3_endpoint = Unicode(
        "",
        help="S3 endpoint URL for the local engine. Empty: AWS_ENDPOINT_URL_S3 / "
        "AWS_ENDPOINT_URL if set, else AWS when credentials resolve, else the embedded "
        "endpoint. Env: JUPYTER_REMOTE_S3_ENDPOINT.",
    ).tag(config=True)
    widgets = Bool(True, help="Show ipywidgets panels when available.").tag(config=True)
    poll_interval = Float(1.0, help="Seconds between status polls.").tag(config=True)

    @default("engine")
    def _engine_default(self) -> str:
        return _env("JUPYTER_REMOTE_ENGINE", "auto")

    @default("instance_type")
    def _instance_type_default(self) -> str:
        return _env("JUPYTER_REMOTE_INSTANCE_TYPE", "ml.m5.xlarge")

    @default("max_runtime")
    def _max_runtime_default(self) -> int:
        return int(_env("JUPYTER_REMOTE_MAX_RUNTIME", "86400"))

    @default("image")
    def _image_default(self) -> str:
        return _env("JUPYTER_REMOTE_IMAGE", "")

    @default("staging")
    def _staging_default(self) -> str:
        return _env("JUPYTER_REMOTE_STAGING", "")

    @default("role")
    def _role_default(self) -> str:
        return _env("JUPYTER_REMOTE_ROLE", "")

    @default("s3_endpoint")
    def _s3_endpoint_default(self) -> str:
        return _env("JUPYTER_REMOTE_S3_ENDPOINT", "")


@lru_cache(maxsize=8)
def aws_credentials_available(profile: str = "") -> bool:
    """Whether boto3's own credential chain finds credentials (cached per process)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.Session(profile_name=profile or None)
        return session.get_credentials() is not None
    except BotoCoreError:
        return False


def choose_engine(requested: str, settings: RemoteSettings, kind: str) -> tuple[str, str]:
    """Resolve ``auto``; return ``(engine name, one-line explanation)``."""
    from .engines.registry import engine_names

    name = requested or settings.engine or "auto"
    if name != "auto":
        if name not in engine_names():
            raise ConfigurationError(
                f"unknown engine {name!r}; available: {', '.join(sorted(engine_names()))}"
            )
        return name, f"engine: {name}"
    aws_engine = {"processing": "sagemaker", "s3batch": "s3batch"}[kind]
    if aws_engine in engine_names() and aws_credentials_available(settings.profile):
        return aws_engine, f"engine: {aws_engine} (AWS credentials found)"
    why = (
        "no AWS credentials found"
        if aws_engine in engine_names()
        else f"the {aws_engine} engine is not installed"
    )
    return "local", (
        f"Running on the local engine ({why}). To run on AWS, configure credentials "
        f"(AWS_PROFILE or aws configure) and use --engine {aws_engine}."
    )


def resolve_endpoint(settings: RemoteSettings) -> Endpoint:
    """Decide where the local engine's S3 calls go (see ``RemoteSettings.s3_endpoint``)."""
    region = settings.region or None
    profile = settings.profile or None
    url = (
        settings.s3_endpoint
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    if url:
        return Endpoint(
            "custom",
            url=url,
            region=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            profile=profile,
            job_env={"AWS_ENDPOINT_URL_S3": url},
        )
    if aws_credentials_available(settings.profile):
        return Endpoint("aws", region=region, profile=profile)
    from . import embedded_s3

    server = embedded_s3.ensure_running()
    return Endpoint(
        "embedded",
        url=server.endpoint_url,
        region=server.region,
        access_key=server.access_key,
        secret_key=server.secret_key,
        job_env=server.env(),
    )


def staging_uri(settings: RemoteSettings, endpoint: Endpoint) -> S3Uri:
    """The staging prefix for this endpoint."""
    if settings.staging:
        return S3Uri.parse(settings.staging, what="staging location").as_prefix()
    if endpoint.kind == "aws":
        raise ConfigurationError(
            "no staging location: set %config RemoteMagics.staging = 's3://BUCKET/prefix/' "
            "or JUPYTER_REMOTE_STAGING"
        )
    return S3Uri("jupyter-remote-staging", "jupyter-remote/")
