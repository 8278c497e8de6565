"""Malformed event lines, one fault each, for every reject reason of SPEC §4.1.

`make_fault(reason, base, ...)` mutates a copy of a valid event into a line whose *only*
defect is `reason`, so its expected reject reason is unambiguous. `unknown_tenant` is not
produced here: the unregistered tenant's whole folder covers it.
"""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from typing import Any

import numpy as np

from jobs.generate import vocab

REASONS: tuple[str, ...] = (
    "invalid_json",
    "missing_field",
    "invalid_type",
    "invalid_timestamp",
    "timestamp_out_of_range",
    "future_timestamp",
    "tenant_mismatch",
    "unsupported_schema_version",
    "field_too_long",
    "oversized_record",
)
SMALL_REASONS: tuple[str, ...] = tuple(r for r in REASONS if r != "oversized_record")
MAX_LINE_BYTES = 1 << 20
MAX_FIELD_CHARS = 128

_BAD_TIMESTAMPS = (
    "yesterday",
    "2026-13-45T00:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-03-05T25:61:00Z",
    "not-a-timestamp",
    "05/03/2026 10:15:00",
    "2026-03-05T10:15:00+25:00",
)
_OLD_TIMESTAMPS = (
    "1999-12-31T23:59:59Z",
    "1970-01-01T00:00:00.000Z",
    "1999-03-05T10:00:00+01:00",
    "1995-07-14T08:30:00Z",
)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _drop_clock_fields(ev: dict[str, Any]) -> None:
    """Without sent_at/received_at, event_ts = timestamp (no skew correction can rescue it)."""
    ev.pop("sent_at", None)
    ev.pop("received_at", None)


def make_fault(
    reason: str,
    base: dict[str, Any],
    rng: np.random.Generator,
    *,
    delivery_date: date,
    other_tenant: str,
    message_id: str,
) -> str:
    """One malformed line whose only defect is `reason`.

    `base` is a valid `track` event carrying user_id and anonymous_id; it is not modified.
    """
    ev = copy.deepcopy(base)
    ev.pop("tenant_id", None)
    ev["message_id"] = message_id
    variant = int(rng.integers(0, 16))
    if reason == "invalid_json":
        text = _dumps(ev)
        v = variant % 5
        if v == 0:  # truncated mid-record
            return text[: int(rng.integers(len(text) // 3, len(text) - 1))]
        if v == 1:
            return _dumps([ev])
        if v == 2:
            return _dumps(f"{ev['type']} {ev.get('event', '')}".strip())
        if v == 3:  # a Python repr, not JSON
            return repr({"message_id": message_id, "type": ev["type"]})
        return "null"
    if reason == "missing_field":
        v = variant % 10
        if v == 0:
            del ev["message_id"]
        elif v == 1:
            ev["message_id"] = ""
        elif v == 2:
            ev["message_id"] = None
        elif v == 3:
            del ev["timestamp"]
        elif v == 4:
            del ev["event"]
        elif v == 5:  # only a blocked identifier, no anonymous_id
            ev.pop("anonymous_id", None)
            ev["user_id"] = vocab.BLOCKED_IDS[int(rng.integers(len(vocab.BLOCKED_IDS)))]
        elif v == 6:
            del ev["type"]
        elif v == 7:  # group call without group_id
            ev["type"] = "group"
            ev.pop("event", None)
            ev.pop("properties", None)
            ev.pop("group_id", None)
            ev["traits"] = {"name": "Unknown workspace"}
        elif v == 8:  # alias without previous_id
            ev["type"] = "alias"
            ev.pop("event", None)
            ev.pop("properties", None)
            ev.pop("group_id", None)
        else:
            ev["timestamp"] = None
        return _dumps(ev)
    if reason == "invalid_type":
        v = variant % 5
        if v == 0:
            ev["message_id"] = int(rng.integers(10**8, 10**12))
        elif v == 1:
            ev["properties"] = "feature=reports&source=web"
        elif v == 2:
            ev["context"] = "ip=10.0.0.1"
        elif v == 3:
            ev["type"] = "identify"
            ev.pop("event", None)
            ev.pop("properties", None)
            ev["traits"] = ["email", "name"]
        else:
            ev["event"] = int(rng.integers(1, 1000))
        return _dumps(ev)
    if reason == "invalid_timestamp":
        ev["timestamp"] = _BAD_TIMESTAMPS[variant % len(_BAD_TIMESTAMPS)]
        return _dumps(ev)
    if reason == "timestamp_out_of_range":
        ev["timestamp"] = _OLD_TIMESTAMPS[variant % len(_OLD_TIMESTAMPS)]
        _drop_clock_fields(ev)
        return _dumps(ev)
    if reason == "future_timestamp":
        limit = delivery_date + timedelta(days=2)
        v = variant % 3
        if v == 0:  # exactly on the boundary: still rejected (>=)
            ev["timestamp"] = f"{limit.isoformat()}T00:00:00.000Z"
        elif v == 1:
            when = limit + timedelta(days=int(rng.integers(1, 60)))
            ev["timestamp"] = f"{when.isoformat()}T{int(rng.integers(0, 24)):02d}:17:05.250Z"
        else:
            ev["timestamp"] = f"{delivery_date.year + 1}-01-01T09:00:00+09:00"
        _drop_clock_fields(ev)
        return _dumps(ev)
    if reason == "tenant_mismatch":
        ev["tenant_id"] = other_tenant
        return _dumps(ev)
    if reason == "unsupported_schema_version":
        ev["schema_version"] = (3, 4, 0)[variant % 3]
        return _dumps(ev)
    if reason == "field_too_long":
        key = ("message_id", "user_id", "anonymous_id", "event", "group_id")[variant % 5]
        value = str(ev.get(key) or "g_")
        ev[key] = value + "x" * (MAX_FIELD_CHARS + 1 - len(value) + int(rng.integers(0, 200)))
        return _dumps(ev)
    if reason == "oversized_record":
        props = dict(ev.get("properties") or {})
        props["payload"] = "A" * (MAX_LINE_BYTES + int(rng.integers(1_000, 60_000)))
        ev["properties"] = props
        return _dumps(ev)
    raise ValueError(f"unknown fault reason {reason!r}")
