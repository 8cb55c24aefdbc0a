"""Validate request dicts with botocore's service models, offline."""

from __future__ import annotations

from functools import cache
from typing import Any

from ..errors import ConfigurationError


@cache
def service_model(service: str) -> Any:
    """Botocore's model for ``service`` (loaded once; no network)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def input_shape(service: str, operation: str) -> Any:
    """The input shape of one operation."""
    return service_model(service).operation_model(operation).input_shape


def validate_with_botocore(service: str, operation: str, params: dict[str, Any]) -> None:
    """Run botocore's parameter validation (types, required members, minimums)."""
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, input_shape(service, operation))
    if report.has_errors():
        raise ConfigurationError(
            f"{service} {operation} request is invalid:\n{report.generate_report()}"
        )


def enum_values(service: str, operation: str, *path: str) -> list[str]:
    """The enum of a nested member, e.g. ``ProcessingResources.ClusterConfig.InstanceType``."""
    shape = input_shape(service, operation)
    for member in path:
        shape = shape.members[member]
    return list(shape.enum)
