"""Which container image a processing job runs, and which Python that image has.

The notebook and the image must run the same Python major.minor (pickled code and bytecode do not
move between versions), so the default image is an AWS-managed one whose Python equals this
kernel's, and a known image with another Python is refused before anything is uploaded.

Sources (aws-contracts.md B.5, and the image repositories' release notes):

- Deep Learning Containers (``pytorch-training`` ...) live in account 763104351884 in most
  regions, with the exceptions in :data:`DLC_ACCOUNTS`; their tags carry the Python version
  (``2.5-cpu-py311``), so :func:`image_python` reads it from the tag.
- ``sagemaker-scikit-learn`` uses one account per region (:data:`SKLEARN_ACCOUNTS`) and tags say
  only ``py3``; the Python per version in :data:`SKLEARN_PYTHON` was read from the container
  repository's Dockerfiles. Those tags are rebuilt in place, so this is UNCONFIRMED for the
  image you pull today; the bootstrap checks the real interpreter again at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigurationError

DLC_DEFAULT_ACCOUNT = "763104351884"
DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-7": "590183813437",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}
SKLEARN_ACCOUNTS = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-central-1": "492215442770",
    "ap-northeast-1": "354813040037",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-south-1": "720646828776",
    "ca-central-1": "341280168497",
    "sa-east-1": "737474898029",
}
SKLEARN_PYTHON = {"1.2-1": "3.9", "1.4-2": "3.10"}
# Newest pytorch-training release per Python (release notes of aws/deep-learning-containers).
PYTORCH_FOR_PYTHON = {"3.12": "2.8", "3.11": "2.5", "3.10": "2.2", "3.9": "1.13", "3.8": "1.12"}
DLC_REPOSITORIES = frozenset(
    {"pytorch-training", "pytorch-inference", "tensorflow-training", "tensorflow-inference"}
)
_ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+):(?P<tag>[\w.-]+)$"
)
_DLC_PY_TAG = re.compile(r"-py(?P<major>3)(?P<minor>\d{1,2})(?:-|$)")
_GPU_FAMILIES = ("ml.g", "ml.p")


@dataclass(frozen=True)
class ImageInfo:
    """An image URI taken apart: registry account, region, repository, tag."""

    account: str
    region: str
    repository: str
    tag: str


def parse_ecr_uri(uri: str) -> ImageInfo | None:
    """Split an ECR image URI; None for anything else (Docker Hub, a digest, a local name)."""
    match = _ECR_URI.match(uri)
    if not match:
        return None
    return ImageInfo(match["account"], match["region"], match["repo"], match["tag"])


def registry(account: str, region: str) -> str:
    """The ECR registry host (China regions use the ``amazonaws.com.cn`` domain)."""
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}"


def image_python(uri: str) -> str | None:
    """The Python major.minor of a known AWS-managed image, None when we do not know."""
    info = parse_ecr_uri(uri)
    if info is None:
        return None
    if info.repository in DLC_REPOSITORIES and info.account in {
        DLC_DEFAULT_ACCOUNT,
        *DLC_ACCOUNTS.values(),
    }:
        match = _DLC_PY_TAG.search(info.tag)
        return f"{match['major']}.{match['minor']}" if match else None
    if info.repository == "sagemaker-scikit-learn" and info.account in SKLEARN_ACCOUNTS.values():
        version = info.tag.split("-cpu")[0]
        return SKLEARN_PYTHON.get(version)
    return None


def default_image(region: str, instance_type: str, python: str) -> str:
    """The pytorch-training DLC whose Python is ``python`` (CPU or GPU build by instance type)."""
    framework = PYTORCH_FOR_PYTHON.get(python)
    if framework is None:
        known = ", ".join(sorted(PYTORCH_FOR_PYTHON))
        raise ConfigurationError(
            f"no AWS-managed image with Python {python} is known (known: {known}). Pass --image "
            f"with an image that has Python {python} and python3 on its PATH."
        )
    processor = "gpu" if instance_type.startswith(_GPU_FAMILIES) else "cpu"
    account = DLC_ACCOUNTS.get(region, DLC_DEFAULT_ACCOUNT)
    tag = f"{framework}-{processor}-py{python.replace('.', '')}"
    return f"{registry(account, region)}/pytorch-training:{tag}"


def choose_image(
    requested: str | None,
    *,
    region: str,
    instance_type: str,
    python: str,
    allow_mismatch: bool = False,
) -> str:
    """The image to run: ``requested`` (checked when known) or the default for ``python``."""
    if not requested:
        return default_image(region, instance_type, python)
    found = image_python(requested)
    if found is not None and found != python and not allow_mismatch:
        try:
            default = default_image(region, instance_type, python)
            hint = f" (the default for Python {python} is {default})"
        except ConfigurationError:
            hint = ""
        raise ConfigurationError(
            f"--image {requested} runs Python {found}, but this notebook runs Python {python}: "
            f"pickled variables and code cannot move between them. Use an image with Python "
            f"{python}{hint}, or --allow-python-mismatch if you know this image has Python "
            f"{python} (the job checks its real interpreter again when it starts)."
        )
    return requested
