"""Validation of identifiers that reach paths and predicates: checked before any I/O."""

from __future__ import annotations

import datetime as dt

from jobs.config import TENANT_ID_PATTERN

MIN_DATE = dt.date(2000, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)


class InputError(ValueError):
    """A user-supplied value (flag, path segment, parameter) is not acceptable."""


def require_tenant_id(value: str, source: str) -> str:
    """Return `value` if it is a valid tenant id (SPEC §2), else raise naming `source`."""
    if not isinstance(value, str) or not TENANT_ID_PATTERN.fullmatch(value):
        raise InputError(
            f"{source}: {value!r} is not a valid tenant id "
            f"(lower-case letters, digits, '_' and '-', 1-63 chars, matching "
            f"{TENANT_ID_PATTERN.pattern})"
        )
    return value


def parse_date(value: str, source: str) -> dt.date:
    """Strict `YYYY-MM-DD` within a sane range, else an error naming `source`."""
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        parsed = dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{source}: {value!r} is not a date in YYYY-MM-DD form") from None
    if not MIN_DATE <= parsed <= MAX_DATE:
        raise InputError(f"{source}: {value} is outside {MIN_DATE}..{MAX_DATE}")
    return parsed
