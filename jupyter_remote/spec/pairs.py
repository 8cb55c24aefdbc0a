"""``KEY=VALUE`` options (``--env``, ``--user-arg``, ``--tag``) parsed one way everywhere."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ConfigurationError


def parse_pairs(items: Iterable[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` strings given with ``option`` as a dict (in order; the value may hold ``=``).

    A missing ``=`` or key, or a key given twice, is a :class:`ConfigurationError` naming the
    option: a repeated key is more likely a slip than a wish to override.
    """
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"{option} {item!r}: expected KEY=VALUE")
        if key in pairs:
            raise ConfigurationError(f"{option} {key!r} is given twice (keys are unique)")
        pairs[key] = value
    return pairs
