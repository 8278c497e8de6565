"""Account attribution precedence (SPEC §4.5) on hand-built events."""

from __future__ import annotations

import datetime as dt

from jobs.transforms.attribution import attribute_accounts

CALLS = "tenant_id string, person_id string, event_ts timestamp, group_id string, message_id string"
EVENTS = CALLS


def ts(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, 5, hour, minute)


def test_precedence_own_then_latest_then_earliest_then_none(spark) -> None:
    calls = spark.createDataFrame(
        [
            ("acme", "p1", ts(9), "acc-a", "g1"),
            ("acme", "p1", ts(12), "acc-b", "g2"),
            ("acme", "p2", ts(15), "acc-c", "g3"),
            ("globex", "p1", ts(8), "other-tenant", "g4"),  # same person id, other tenant
        ],
        CALLS,
    )
    events = spark.createDataFrame(
        [
            ("acme", "p1", ts(10), "acc-own", "e1"),  # own group_id wins
            ("acme", "p1", ts(10), None, "e2"),  # latest call ≤ 10:00 → acc-a
            ("acme", "p1", ts(12), None, "e3"),  # a call at the same instant counts → acc-b
            ("acme", "p1", ts(13), None, "e4"),  # → acc-b
            ("acme", "p2", ts(14), None, "e5"),  # before p2's only call → earliest → acc-c
            ("acme", "p3", ts(14), None, "e6"),  # no group call at all → unattributed
            ("acme", "p1", ts(8), None, "e7"),  # before p1's first call → earliest → acc-a
        ],
        EVENTS,
    )
    got = {
        r.message_id: (r.account_id, r.attribution)
        for r in events.transform(attribute_accounts(calls)).collect()
    }
    assert got == {
        "e1": ("acc-own", "own"),
        "e2": ("acc-a", "latest_group"),
        "e3": ("acc-b", "latest_group"),
        "e4": ("acc-b", "latest_group"),
        "e5": ("acc-c", "earliest_group"),
        "e6": (None, "none"),
        "e7": ("acc-a", "earliest_group"),
    }


def test_no_event_is_dropped_or_duplicated(spark) -> None:
    calls = spark.createDataFrame([("acme", "p1", ts(9), "acc-a", "g1")], CALLS)
    rows = [("acme", "p1", ts(10), None, "same-id") for _ in range(3)]
    out = spark.createDataFrame(rows, EVENTS).transform(attribute_accounts(calls))
    assert out.count() == 3
