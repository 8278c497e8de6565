"""Sessions (SPEC §4.7) on hand-built event sequences."""

from __future__ import annotations

import datetime as dt

from jobs.transforms.sessions import sessionize

SCHEMA = (
    "tenant_id string, person_id string, account_id string, event_date date, "
    "event_ts timestamp, message_id string"
)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def sessions(spark, rows):
    df = spark.createDataFrame(rows, SCHEMA).transform(sessionize())
    return sorted(
        (r.person_id, r.account_id, r.event_date, r.session_start_ts, r.events, r.duration_seconds)
        for r in df.collect()
    )


def test_gap_of_exactly_30_minutes_continues_and_one_second_more_splits(spark) -> None:
    d = dt.date(2026, 3, 5)
    rows = [
        ("acme", "p1", "a1", d, utc("2026-03-05 10:00:00"), "m1"),
        ("acme", "p1", "a2", d, utc("2026-03-05 10:30:00"), "m2"),  # exactly 30 min: same
        ("acme", "p1", "a2", d, utc("2026-03-05 11:00:01"), "m3"),  # 30 min 1 s: new session
        ("acme", "p2", "a9", d, utc("2026-03-05 10:10:00"), "m4"),  # other person, own session
    ]
    assert sessions(spark, rows) == [
        ("p1", "a1", d, utc("2026-03-05 10:00:00"), 2, 1800),
        ("p1", "a2", d, utc("2026-03-05 11:00:01"), 1, 0),
        ("p2", "a9", d, utc("2026-03-05 10:10:00"), 1, 0),
    ]


def test_session_across_local_midnight_belongs_to_its_first_day(spark) -> None:
    # acme is America/New_York: 04:50Z = 23:50 local on 03-05, 05:10Z = 00:10 local on 03-06
    rows = [
        ("acme", "p1", "a1", dt.date(2026, 3, 5), utc("2026-03-06 04:50:00"), "m1"),
        ("acme", "p1", "a2", dt.date(2026, 3, 6), utc("2026-03-06 05:10:00"), "m2"),
    ]
    assert sessions(spark, rows) == [
        ("p1", "a1", dt.date(2026, 3, 5), utc("2026-03-06 04:50:00"), 2, 1200)
    ]


def test_dst_jump_uses_real_elapsed_time(spark) -> None:
    # 2026-03-08 in New York: 01:50 EST (06:50Z) then 03:10 EDT (07:10Z) are 20 minutes apart
    d = dt.date(2026, 3, 8)
    rows = [
        ("acme", "p1", "a1", d, utc("2026-03-08 06:50:00"), "m1"),
        ("acme", "p1", "a1", d, utc("2026-03-08 07:10:00"), "m2"),
    ]
    assert sessions(spark, rows) == [("p1", "a1", d, utc("2026-03-08 06:50:00"), 2, 1200)]


def test_ties_and_row_order_do_not_change_the_result(spark) -> None:
    d = dt.date(2026, 3, 5)
    rows = [
        ("acme", "p1", "a2", d, utc("2026-03-05 09:00:00"), "m-b"),
        ("acme", "p1", "a1", d, utc("2026-03-05 09:00:00"), "m-a"),  # same instant, smaller id
    ]
    expected = [("p1", "a1", d, utc("2026-03-05 09:00:00"), 2, 0)]
    assert sessions(spark, rows) == expected
    assert sessions(spark, list(reversed(rows))) == expected
