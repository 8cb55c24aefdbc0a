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


def aws_region(settings: RemoteSettings, *, profile: str | None = None) -> str | None:
    """The AWS region: ``%config``/``--region`` first, then boto3's own resolution."""
    if settings.region:
        return settings.region
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(profile_name=profile or settings.profile or None).region_name
    except BotoCoreError:
        return None


def s3_endpoint_override(settings: RemoteSettings | None = None) -> str | None:
    """An S3 endpoint URL that is not AWS's own (``s3_endpoint``, ``AWS_ENDPOINT_URL[_S3]``)."""
    return (
        (settings.s3_endpoint if settings is not None else "")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def choose_engine(
    requested: str,
    settings: RemoteSettings,
    kind: str,
    *,
    profile: str | None = None,
    region: str | None = None,
) -> tuple[str, str]:
    """Resolve ``auto``; return ``(engine name, one-line explanation)``.

    ``auto`` picks the AWS engine when it is installed, credentials and a region resolve, and S3
    is AWS's own: with an S3 endpoint override (an S3-compatible server, moto in tests) the AWS
    service could not read the staged bundle, so the local engine runs instead.
    """
    from .engines.registry import engine_names

    name = requested or settings.engine or "auto"
    if name != "auto":
        if name not in engine_names():
            raise ConfigurationError(
                f"unknown engine {name!r}; available: {', '.join(sorted(engine_names()))}"
            )
        return name, f"engine: {name}"
    aws_engine = {"processing": "sagemaker", "s3batch": "s3batch"}[kind]
    profile = profile or settings.profile or ""
    override = s3_endpoint_override(settings)
    if aws_engine not in engine_names():
        why = f"the {aws_engine} engine is not installed"
    elif not aws_credentials_available(profile):
        why = "no AWS credentials found"
    elif not (region or aws_region(settings, profile=profile)):
        why = "AWS credentials found but no region (--region or AWS_DEFAULT_REGION)"
    elif override:
        why = f"S3 goes to {override}, which AWS cannot read"
    else:
        return aws_engine, f"engine: {aws_engine} (AWS credentials and region found)"
    return "local", (
        f"Running on the local engine ({why}). To run on AWS, configure credentials "
        f"(AWS_PROFILE or aws configure) and use --engine {aws_engine}."
    )


def resolve_endpoint(
    settings: RemoteSettings, *, profile: str | None = None, region: str | None = None
) -> Endpoint:
    """Decide where the local engine's S3 calls go (see ``RemoteSettings.s3_endpoint``).

    ``profile`` and ``region`` (the magic's ``--profile``/``--region``) override the settings.
    """
    region = region or settings.region or None
    profile = profile or settings.profile or None
    url = s3_endpoint_override(settings)
    if url:
        return Endpoint(
            "custom",
            url=url,
            region=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            profile=profile,
            job_env={"AWS_ENDPOINT_URL_S3": url},
        )
    if aws_credentials_available(profile or ""):
        return Endpoint("aws", region=region, profile=profile)
    return embedded_endpoint()


def embedded_endpoint() -> Endpoint:
    """The embedded S3 server's endpoint, starting the server if none runs."""
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


STAGING_PREFIX = "jupyter-remote/"


def default_aws_bucket(region: str, account: str) -> str:
    """SageMaker's own default bucket name, ``sagemaker-<region>-<account>``."""
    return f"sagemaker-{region}-{account}"


def staging_uri(
    settings: RemoteSettings, endpoint: Endpoint, *, account: str | None = None
) -> S3Uri:
    """The staging prefix for this endpoint.

    ``staging`` wins. Otherwise AWS (and an AWS engine on any endpoint, which passes the
    ``account``) uses ``s3://sagemaker-<region>-<account>/jupyter-remote/``, created on first
    upload as SageMaker's own tools do; the embedded or a custom endpoint for the local engine
    uses ``s3://jupyter-remote-staging/jupyter-remote/``.
    """
    if settings.staging:
        return S3Uri.parse(settings.staging, what="staging location").as_prefix()
    if account is None and endpoint.kind == "aws":
        from .engines.aws_calls import caller_identity
        from .storage import make_client

        account = caller_identity(make_client(endpoint, "sts")).account
    if account is not None:
        region = endpoint.region or aws_region(settings, profile=endpoint.profile)
        if not region:
            raise ConfigurationError(
                "no AWS region for the default staging bucket: pass --region, set "
                "AWS_DEFAULT_REGION, or set %config RemoteMagics.staging = 's3://BUCKET/prefix/'"
            )
        return S3Uri(default_aws_bucket(region, account), STAGING_PREFIX)
    return S3Uri("jupyter-remote-staging", STAGING_PREFIX)
