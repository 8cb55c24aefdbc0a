"""Images, prices, tags and network options of the sagemaker engine (pure functions)."""

from __future__ import annotations

import pytest

from jupyter_remote.errors import ConfigurationError
from jupyter_remote.spec import images, prices
from jupyter_remote.spec.processing import network_config
from jupyter_remote.spec.tags import sanitize_remote


@pytest.mark.parametrize(
    ("region", "instance", "python", "expected"),
    [
        (
            "us-east-1",
            "ml.m5.xlarge",
            "3.11",
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311",
        ),
        (
            "eu-west-1",
            "ml.g5.xlarge",
            "3.12",
            "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.8-gpu-py312",
        ),
        (
            "af-south-1",
            "ml.c5.xlarge",
            "3.10",
            "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-training:2.2-cpu-py310",
        ),
        (
            "cn-north-1",
            "ml.p3.2xlarge",
            "3.9",
            "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-training:1.13-gpu-py39",
        ),
    ],
)
def test_default_image_matches_python_region_and_processor(region, instance, python, expected):
    assert images.default_image(region, instance, python) == expected
    assert images.image_python(expected) == python


def test_unknown_python_has_no_default():
    with pytest.raises(ConfigurationError, match=r"no AWS-managed image with Python 3\.99"):
        images.default_image("us-east-1", "ml.m5.xlarge", "3.99")


@pytest.mark.parametrize(
    ("uri", "python"),
    [
        (
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
            "3.9",
        ),
        (
            "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
            "3.10",
        ),
        (
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.6.0-cpu-py312-ubuntu22.04-sagemaker",
            "3.12",
        ),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:py311", None),  # not AWS-managed
        ("python:3.11-slim", None),
    ],
)
def test_image_python_reads_known_images_only(uri, python):
    assert images.image_python(uri) == python


def test_known_image_with_other_python_is_refused_unless_allowed():
    sklearn = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    with pytest.raises(ConfigurationError, match=r"runs Python 3\.9.*--allow-python-mismatch"):
        images.choose_image(
            sklearn, region="us-east-1", instance_type="ml.m5.xlarge", python="3.11"
        )
    chosen = images.choose_image(
        sklearn,
        region="us-east-1",
        instance_type="ml.m5.xlarge",
        python="3.11",
        allow_mismatch=True,
    )
    assert chosen == sklearn
    own = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:latest"
    assert images.choose_image(own, region="us-east-1", instance_type="x", python="3.11") == own


def test_cost_line_names_price_total_and_date():
    line = prices.estimate_line("ml.m5.xlarge", 2, 30, 7200)
    hourly = 2 * (0.23 + 30 * 0.14 / 730)
    assert f"${hourly:.3f}/hour" in line and f"${hourly * 2:.2f}" in line
    assert prices.PRICES_DATE in line and "2 x ml.m5.xlarge" in line
    assert "no price listed" in prices.estimate_line("ml.x9.huge", 1, 30, 60)


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:ghp_SECRET@github.com/org/repo.git", "https://github.com/org/repo.git"),
        (
            "https://oauth2:glpat-XYZ@gitlab.com:8443/g/r.git?token=abc#x",
            "https://gitlab.com:8443/g/r.git",
        ),
        ("git@github.com:org/repo.git", "github.com:org/repo.git"),
        ("ssh://git@host.example/repo", "ssh://host.example/repo"),
        ("/home/me/secret-project", None),
        ("", None),
    ],
)
def test_git_remote_is_stripped_of_credentials(url, clean):
    assert sanitize_remote(url) == clean
    if clean:
        assert "SECRET" not in clean and "glpat" not in clean and "token" not in clean


def test_job_tags_never_carry_credentials(tmp_path):
    import subprocess

    from jupyter_remote.spec.tags import job_tags

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "remote", "add", "origin", "https://u:hunter2@example.com/r"],
        check=True,
    )
    tags = job_tags(tmp_path)
    assert tags["jupyter-remote:git-remote"] == "https://example.com/r"
    assert "hunter2" not in str(tags)


def test_network_config_from_options():
    assert network_config() is None
    assert network_config(isolation=True) == {"EnableNetworkIsolation": True}
    assert network_config(subnets=["subnet-1"], security_groups=["sg-1", "sg-2"]) == {
        "VpcConfig": {"SecurityGroupIds": ["sg-1", "sg-2"], "Subnets": ["subnet-1"]}
    }
    with pytest.raises(ConfigurationError, match="needs both"):
        network_config(security_groups=["sg-1"])
    with pytest.raises(ConfigurationError, match="at most 5"):
        network_config(subnets=["subnet-1"], security_groups=[f"sg-{i}" for i in range(6)])
    with pytest.raises(ConfigurationError, match="--subnet 'subnet_1'"):
        network_config(subnets=["subnet_1"], security_groups=["sg-1"])
