"""Engines are found through the ``jupyter_remote.engines`` entry-point group.

A third party adds one (AWS Batch, say) by declaring an entry point; nothing here changes. The
built-in engines are also listed directly so a source checkout that was never installed works.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .base import Engine

GROUP = "jupyter_remote.engines"
BUILTIN = {
    "local": "jupyter_remote.engines.local:LocalEngine",
    "sagemaker": "jupyter_remote.engines.sagemaker:SageMakerEngine",
    "s3batch": "jupyter_remote.engines.s3batch_aws:S3BatchEngine",
}


@lru_cache(maxsize=1)
def _targets() -> dict[str, str]:
    targets = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        targets[ep.name] = ep.value
    return targets


def engine_names() -> list[str]:
    """Names of every registered engine."""
    return sorted(_targets())


def engine_class(name: str) -> type[Engine]:
    """Import and return the engine class registered as ``name``."""
    try:
        target = _targets()[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown engine {name!r}; available: {', '.join(engine_names())}"
        ) from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
