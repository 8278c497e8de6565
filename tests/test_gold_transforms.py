"""Gold rollups (SPEC §6.1–6.3) on hand-built silver frames, every value computed by hand.

The account tree: P is the parent of A and B until 2026-01-28; on 2026-01-29 B is a root.
p1 is active in A and B on 01-01 (one person in two sub-accounts), p2 in B on 01-05, p3
unattributed on 01-05, p4 in A on 01-29; p5 only identified (events = 0, not activity).
"""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.transforms import gold

D = dt.date
T = "t1"


def day(n: int) -> dt.date:
    """The n-th day from 2026-01-01 (n > 31 runs into February)."""
    return D(2026, 1, 1) + dt.timedelta(days=n - 1)


ACTIVITY = [
    # event_date, person, account, events, admin, collab, features
    (day(1), "p1", "A", 2, 1, 0, ["f1"]),
    (day(1), "p1", "B", 1, 0, 0, ["f1", "f2"]),
    (day(5), "p2", "B", 3, 0, 2, ["f3"]),
    (day(5), "p3", None, 4, 0, 0, []),
    (day(5), "p5", "A", 0, 0, 0, []),
    (day(29), "p4", "A", 1, 0, 0, []),
]
TARGETS = [day(1), day(5), day(7), day(8), day(28), day(29)]


@pytest.fixture(scope="module")
def frames(spark):
    activity = spark.createDataFrame(
        [(T, *row) for row in ACTIVITY],
        "tenant_id string, event_date date, person_id string, account_id string, events long, "
        "admin_actions long, collaboration_actions long, features array<string>",
    )
    hierarchy = spark.createDataFrame(
        [
            (T, day(n), acct, anc)
            for n in range(1, 30)
            for acct, anc in (
                ("P", []),
                ("A", ["P"]),
                ("B", ["P"] if n < 29 else []),
            )
        ],
        "tenant_id string, as_of_date date, account_id string, ancestors array<string>",
    )
    targets = spark.createDataFrame(
        [(T, d) for d in TARGETS], "tenant_id string, activity_date date"
    )
    sessions = spark.createDataFrame(
        [(T, day(1), "A", "s1"), (T, day(5), "B", "s2"), (T, day(5), "B", "s3")],
        "tenant_id string, event_date date, account_id string, session_id string",
    )
    subscriptions = spark.createDataFrame(
        [
            (T, day(1), "A", "active", 10),
            (T, day(1), "B", "trialing", 5),
            (T, day(1), "B", "canceled", 7),
            (T, day(28), "A", "past_due", 4),
            (T, day(28), "B", "canceled", 5),
        ],
        "tenant_id string, delivery_date date, account_id string, status string, seats int",
    )
    in_force = spark.createDataFrame(
        [(T, d, day(1) if d < day(28) else day(28)) for d in TARGETS],
        "tenant_id string, activity_date date, snapshot_date date",
    )
    return activity, hierarchy, targets, sessions, gold.seats_in_force(subscriptions, in_force)


def _account_daily(frames) -> dict[tuple, tuple]:
    activity, hierarchy, targets, sessions, seats = frames
    rows = gold.account_daily(activity, sessions, seats, targets, hierarchy, "1", "run_x").collect()
    assert {r.metric_version for r in rows} == {"1"} and {r._run_id for r in rows} == {"run_x"}
    return {
        (r.activity_date.day, r.scope, r.account_id): (
            r.dau,
            r.wau_7d,
            r.mau_28d,
            r.events,
            r.sessions,
            r.admin_actions,
            r.collaboration_actions,
            r.distinct_features,
            r.seats,
        )
        for r in rows
    }


# (day, scope, account): dau, wau, mau, events, sessions, admin, collab, features, seats
EXPECTED = {
    (1, "direct", "A"): (1, 1, 1, 2, 1, 1, 0, 1, 10),
    (1, "direct", "B"): (1, 1, 1, 1, 0, 0, 0, 2, 5),
    (1, "rollup", "A"): (1, 1, 1, 2, 1, 1, 0, 1, 10),
    (1, "rollup", "B"): (1, 1, 1, 1, 0, 0, 0, 2, 5),
    (1, "rollup", "P"): (1, 1, 1, 3, 1, 1, 0, 2, 15),  # p1 once, features f1, f2
    (5, "direct", "A"): (0, 1, 1, 0, 0, 0, 0, 0, 10),
    (5, "direct", "B"): (1, 2, 2, 3, 2, 0, 2, 1, 5),
    (5, "rollup", "A"): (0, 1, 1, 0, 0, 0, 0, 0, 10),
    (5, "rollup", "B"): (1, 2, 2, 3, 2, 0, 2, 1, 5),
    (5, "rollup", "P"): (1, 2, 2, 3, 2, 0, 2, 1, 15),
    (7, "direct", "A"): (0, 1, 1, 0, 0, 0, 0, 0, 10),  # 6 days after: still in wau_7d
    (7, "direct", "B"): (0, 2, 2, 0, 0, 0, 0, 0, 5),
    (7, "rollup", "A"): (0, 1, 1, 0, 0, 0, 0, 0, 10),
    (7, "rollup", "B"): (0, 2, 2, 0, 0, 0, 0, 0, 5),
    (7, "rollup", "P"): (0, 2, 2, 0, 0, 0, 0, 0, 15),
    (8, "direct", "A"): (0, 0, 1, 0, 0, 0, 0, 0, 10),  # 7 days after: out of wau_7d
    (8, "direct", "B"): (0, 1, 2, 0, 0, 0, 0, 0, 5),
    (8, "rollup", "A"): (0, 0, 1, 0, 0, 0, 0, 0, 10),
    (8, "rollup", "B"): (0, 1, 2, 0, 0, 0, 0, 0, 5),
    (8, "rollup", "P"): (0, 1, 2, 0, 0, 0, 0, 0, 15),
    (28, "direct", "A"): (0, 0, 1, 0, 0, 0, 0, 0, 4),  # 27 days after: still in mau_28d
    (28, "direct", "B"): (0, 0, 2, 0, 0, 0, 0, 0, None),  # only a canceled subscription
    (28, "rollup", "A"): (0, 0, 1, 0, 0, 0, 0, 0, 4),
    (28, "rollup", "B"): (0, 0, 2, 0, 0, 0, 0, 0, None),
    (28, "rollup", "P"): (0, 0, 2, 0, 0, 0, 0, 0, 4),
    (29, "direct", "A"): (1, 1, 1, 1, 0, 0, 0, 0, 4),  # p1 (day 1) left the window; p4 came
    (29, "direct", "B"): (0, 0, 1, 0, 0, 0, 0, 0, None),
    (29, "rollup", "A"): (1, 1, 1, 1, 0, 0, 0, 0, 4),
    (29, "rollup", "B"): (0, 0, 1, 0, 0, 0, 0, 0, None),
    (29, "rollup", "P"): (1, 1, 1, 1, 0, 0, 0, 0, 4),  # B is a root now: P has only A
}


def test_account_daily_every_column_by_hand(frames) -> None:
    got = _account_daily(frames)
    assert got == EXPECTED


def test_windows_cross_the_month_end(spark, frames) -> None:
    """2026-02-01's 28-day window is 01-05 … 02-01: p2's day-5 activity is its first day."""
    activity, hierarchy, _, sessions, _ = frames
    feb1 = D(2026, 2, 1)
    hierarchy = hierarchy.unionByName(
        spark.createDataFrame(
            [(T, feb1, "P", []), (T, feb1, "A", ["P"]), (T, feb1, "B", [])],
            "tenant_id string, as_of_date date, account_id string, ancestors array<string>",
        )
    )
    targets = spark.createDataFrame([(T, feb1)], "tenant_id string, activity_date date")
    seats = spark.createDataFrame(
        [(T, feb1, "A", 4)], "tenant_id string, activity_date date, account_id string, seats long"
    )
    rows = {
        (r.scope, r.account_id): (r.dau, r.wau_7d, r.mau_28d, r.events, r.seats)
        for r in gold.account_daily(
            activity, sessions, seats, targets, hierarchy, "1", "r"
        ).collect()
    }
    assert rows == {
        ("direct", "A"): (0, 1, 1, 0, 4),  # p4 (01-29, 3 days before: in wau_7d too)
        ("direct", "B"): (0, 0, 1, 0, None),  # p2 (01-05), the window's first day
        ("rollup", "A"): (0, 1, 1, 0, 4),
        ("rollup", "B"): (0, 0, 1, 0, None),
        ("rollup", "P"): (0, 1, 1, 0, 4),  # B is a root: only A's p4
    }


def test_account_daily_ratios(frames) -> None:
    activity, hierarchy, targets, sessions, seats = frames
    rows = {
        (r.activity_date.day, r.scope, r.account_id): r
        for r in gold.account_daily(
            activity, sessions, seats, targets, hierarchy, "1", "r"
        ).collect()
    }
    assert rows[(1, "rollup", "P")].seat_utilization == pytest.approx(1 / 15)
    assert rows[(5, "direct", "B")].stickiness == pytest.approx(1 / 2)
    assert rows[(28, "direct", "B")].seat_utilization is None  # seats NULL
    assert rows[(8, "direct", "A")].stickiness == 0.0


def test_tenant_daily_counts_unattributed_persons(frames) -> None:
    activity, _, targets, _, _ = frames
    got = {
        r.activity_date.day: (r.dau, r.events, r.unattributed_events)
        for r in gold.tenant_daily(activity, targets, "1", "r").collect()
    }
    assert got == {1: (1, 3, 0), 5: (2, 7, 4), 29: (1, 1, 0)}


@pytest.mark.parametrize(
    ("timezone", "event_ts", "hour_start", "local_hour"),
    [
        # fall back: the two 01:xx hours of 2026-11-01 in New York are different hours
        ("America/New_York", "2026-11-01 05:30:00", "2026-11-01 05:00:00", 1),
        ("America/New_York", "2026-11-01 06:30:00", "2026-11-01 06:00:00", 1),
        # spring forward: 01:59 EST then 03:15 EDT
        ("America/New_York", "2026-03-08 06:59:00", "2026-03-08 06:00:00", 1),
        ("America/New_York", "2026-03-08 07:15:00", "2026-03-08 07:00:00", 3),
        # +05:30: local 15:40 is in the hour that began at 09:30 UTC
        ("Asia/Kolkata", "2026-03-05 10:10:00", "2026-03-05 09:30:00", 15),
        ("UTC", "2026-03-05 23:59:59.999", "2026-03-05 23:00:00", 23),
    ],
)
def test_hour_start_utc(spark, timezone, event_ts, hour_start, local_hour) -> None:
    from pyspark.sql import functions as F

    row = (
        spark.createDataFrame([(timezone, event_ts)], "tz string, ts string")
        .select(
            gold.hour_start_utc(F.to_timestamp("ts"), F.col("tz")).alias("start"),
            gold._local_hour(F.to_timestamp("ts"), F.col("tz")).alias("hour"),
        )
        .first()
    )
    assert row.start == dt.datetime.fromisoformat(hour_start)
    assert row.hour == local_hour


def test_account_hourly_direct_scope_on_a_fall_back_day(spark) -> None:
    events = spark.createDataFrame(
        [
            # New York, 2026-11-01: two events in the first 01:00 hour, one in the second
            ("m1", "2026-11-01 05:10:00", "u1", "A", "admin", True),
            ("m2", "2026-11-01 05:50:00", "u2", "A", "core", True),
            ("m3", "2026-11-01 06:10:00", "u1", "A", "core", True),
            ("m4", "2026-11-01 06:20:00", "u1", None, "core", True),  # unattributed
            ("m5", "2026-11-01 06:25:00", "u1", "A", "system", False),  # not activity
        ],
        "message_id string, ts string, person_id string, account_id string, category string, "
        "is_activity boolean",
    ).selectExpr(
        "'acme' AS tenant_id",
        "DATE'2026-11-01' AS event_date",
        "to_timestamp(ts) AS event_ts",
        "*",
    )
    zones = spark.createDataFrame(
        [("acme", "America/New_York")], "tenant_id string, timezone string"
    )
    got = sorted(
        (r.hour_start_utc.hour, r.local_hour, r.active_users, r.events, r.admin_actions)
        for r in gold.account_hourly(events, zones, "1", "r").collect()
    )
    assert got == [(5, 1, 2, 2, 1), (6, 1, 1, 1, 0)]


def test_window_users_of_people_active_on_many_days_match_a_count_by_hand(spark) -> None:
    """Each person-day counts only until the person's next day in that account
    (`counted_until`); the counts must still equal a plain count over each window."""
    activity_days = {  # person → account → days active (the bounded rows overlap and gap)
        "p1": {"A": [1, 2, 3, 10, 38], "B": [2, 30]},
        "p2": {"A": [5, 6, 7, 8, 9, 40]},
        "p3": {"B": [1, 29, 31]},
        "p4": {"A": [12], "B": [12, 13, 39]},
    }
    rows = [
        (T, day(n), person, account, 1, 0, 0, [])
        for person, accounts in activity_days.items()
        for account, days in accounts.items()
        for n in days
    ]
    activity = spark.createDataFrame(
        rows,
        "tenant_id string, event_date date, person_id string, account_id string, events long, "
        "admin_actions long, collaboration_actions long, features array<string>",
    )
    dates = [day(n) for n in range(1, 46)]
    hierarchy = spark.createDataFrame(
        [(T, d, a, anc) for d in dates for a, anc in (("P", []), ("A", ["P"]), ("B", []))],
        "tenant_id string, as_of_date date, account_id string, ancestors array<string>",
    )
    targets = spark.createDataFrame([(T, d) for d in dates], "tenant_id string, activity_date date")
    got = {
        (r.activity_date, r.scope, r.account_id): (r.dau, r.wau_7d, r.mau_28d)
        for r in gold.window_users(activity, targets, hierarchy).collect()
    }
    scopes = {("direct", "A"): {"A"}, ("direct", "B"): {"B"}, ("rollup", "A"): {"A"},
              ("rollup", "B"): {"B"}, ("rollup", "P"): {"A"}}  # fmt: skip

    def active(d: dt.date, members: set[str], within: int) -> int:
        """Persons with a day in `members` among the `within` days ending on d."""
        return sum(
            any(0 <= (d - day(n)).days < within for a in members for n in accounts.get(a, []))
            for accounts in activity_days.values()
        )

    expected = {
        (d, scope, account): (active(d, m, 1), active(d, m, 7), active(d, m, 28))
        for d in dates
        for (scope, account), m in scopes.items()
        if active(d, m, 28)
    }
    assert got == expected
