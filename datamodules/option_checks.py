"""Checks of a DataModule's size options at construction, so a bad value fails before any model loads."""

from __future__ import annotations

from gatera_lab.errors import ConfigError


def require_at_least(option: str, value: int | None, minimum: int, none_means: str | None = None) -> None:
    """Raise a `ConfigError` naming ``option`` unless ``value`` is an int ``>= minimum``.

    Args:
        option: the option's name as the user writes it.
        value: its value.
        minimum: the smallest value that works.
        none_means: when given, ``None`` is allowed and means this (e.g. ``"all rows"``).
    """
    if value is None and none_means is not None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f" (or null for {none_means})" if none_means is not None else ""
        raise ConfigError(f"option '{option}' must be >= {minimum}{allowed}, got {value!r}")
