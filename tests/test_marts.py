"""Gold marts (SPEC §6.4) on hand-built frames; every expected value is worked out by hand in
the comments next to it."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.config import ActivationConf, HealthBands, HealthConf, HealthTargets
from jobs.transforms import marts

T = "t1"


def day(n: int, month: int = 1) -> dt.date:
    return dt.date(2026, month, n)


def _hierarchy(spark, dates):
    """P is the parent of A and B on every date; S is a root."""
    return spark.createDataFrame(
        [
            (T, d, acct, anc)
            for d in dates
            for acct, anc in (("P", []), ("A", ["P"]), ("B", ["P"]), ("S", []))
        ],
        "tenant_id string, as_of_date date, account_id string, ancestors array<string>",
    )


def _targets(spark, dates):
    return spark.createDataFrame([(T, d) for d in dates], "tenant_id string, activity_date date")


# --------------------------------------------------------------------------- feature adoption


def test_feature_adoption_counts_day_users_events_and_28_day_adopters(spark):
    activity = spark.createDataFrame(
        [
            (T, day(1), "p1", "A", 2, [("f1", 2)]),
            (T, day(1), "p1", "B", 1, [("f1", 1)]),
            (T, day(3), "p2", "B", 3, [("f1", 1), ("f2", 2)]),
            (T, day(3), "p3", "A", 1, []),
            (T, day(30), "p2", "B", 1, [("f2", 1)]),
        ],
        "tenant_id string, event_date date, person_id string, account_id string, events long, "
        "feature_events array<struct<feature_key: string, events: long>>",
    )
    dates = [day(1), day(3), day(30)]
    mau = spark.createDataFrame(
        [
            (T, day(1), "direct", "A", 1),
            (T, day(1), "direct", "B", 1),
            (T, day(1), "rollup", "A", 1),
            (T, day(1), "rollup", "B", 1),
            (T, day(1), "rollup", "P", 1),
            (T, day(3), "direct", "A", 2),
            (T, day(3), "direct", "B", 2),
            (T, day(3), "rollup", "A", 2),
            (T, day(3), "rollup", "B", 2),
            (T, day(3), "rollup", "P", 3),
            (T, day(30), "direct", "A", 1),
            (T, day(30), "direct", "B", 1),
            (T, day(30), "rollup", "A", 1),
            (T, day(30), "rollup", "B", 1),
            (T, day(30), "rollup", "P", 2),
        ],
        "tenant_id string, activity_date date, scope string, account_id string, mau_28d long",
    )
    rows = marts.feature_adoption_daily(
        activity, _targets(spark, dates), _hierarchy(spark, dates), mau, "7", "run-1"
    ).collect()
    got = {
        (r.activity_date, r.scope, r.account_id, r.feature_key): (
            r.users,
            r.events,
            r.adopters_28d,
            round(r.adoption_share, 4),
        )
        for r in rows
    }
    assert got == {
        # day 1: p1 uses f1 in A (2 events) and B (1); P's rollup counts p1 once, 3 events
        (day(1), "direct", "A", "f1"): (1, 2, 1, 1.0),
        (day(1), "direct", "B", "f1"): (1, 1, 1, 1.0),
        (day(1), "rollup", "A", "f1"): (1, 2, 1, 1.0),
        (day(1), "rollup", "B", "f1"): (1, 1, 1, 1.0),
        (day(1), "rollup", "P", "f1"): (1, 3, 1, 1.0),
        # day 3: p1's day-1 use keeps adopting A's f1 (no users today); B adds p2
        (day(3), "direct", "A", "f1"): (0, 0, 1, 0.5),
        (day(3), "direct", "B", "f1"): (1, 1, 2, 1.0),
        (day(3), "direct", "B", "f2"): (1, 2, 1, 0.5),
        (day(3), "rollup", "A", "f1"): (0, 0, 1, 0.5),
        (day(3), "rollup", "B", "f1"): (1, 1, 2, 1.0),
        (day(3), "rollup", "B", "f2"): (1, 2, 1, 0.5),
        (day(3), "rollup", "P", "f1"): (1, 1, 2, round(2 / 3, 4)),
        (day(3), "rollup", "P", "f2"): (1, 2, 1, round(1 / 3, 4)),
        # day 30: the window is [day 3, day 30]; p1's day-1 use has left it
        (day(30), "direct", "B", "f1"): (0, 0, 1, 1.0),
        (day(30), "direct", "B", "f2"): (1, 1, 1, 1.0),
        (day(30), "rollup", "B", "f1"): (0, 0, 1, 1.0),
        (day(30), "rollup", "B", "f2"): (1, 1, 1, 1.0),
        (day(30), "rollup", "P", "f1"): (0, 0, 1, 0.5),
        (day(30), "rollup", "P", "f2"): (1, 1, 1, 0.5),
    }
    assert {(r.metric_version, r._run_id) for r in rows} == {("7", "run-1")}


# --------------------------------------------------------------------------- health

HEALTH = HealthConf(
    targets=HealthTargets(
        features_28d=4,
        events_per_user_week=10,
        dau_per_wau=0.5,
        admin_actions_28d=4,
        collaboration_per_user_week=1,
        weighted_tickets_28d=4,
        trend_full_change=0.5,
    ),
    bands=HealthBands(healthy=70, watch=40),
    ticket_weights={"low": 0.5, "normal": 1.0, "high": 2.0, "urgent": 4.0},
    weights={
        "default": {
            "breadth": 1.0,
            "depth": 1.0,
            "consistency": 1.0,
            "admin_engagement": 1.0,
            "collaboration": 1.0,
            "support_load": 1.0,
            "seat_utilization": 2.0,
            "trend": 1.0,
        },
        "strategic": {"trend": 3.0},
    },
)


@pytest.fixture(scope="module")
def health_rows(spark):
    d = day(29)
    account_days = spark.createDataFrame(
        [
            (T, *row)
            for row in (
                # date, scope, account, dau, wau, mau, events, admin, collaboration
                (day(29), "direct", "A", 2, 3, 4, 10, 1, 2),
                (day(27), "direct", "A", 1, 3, 4, 5, 0, 1),
                (day(23), "direct", "A", 1, 2, 3, 3, 2, 0),  # D−6: last day of the 7-day sums
                (day(22), "direct", "A", 1, 2, 3, 100, 1, 5),  # D−7: only admin (28 days) counts
                (day(1), "direct", "A", 1, 1, 2, 1, 7, 0),  # D−28: the trend's prior mau only
                (day(29), "rollup", "P", 1, 1, 1, 2, 0, 0),
                (day(1), "direct", "B", 3, 3, 3, 9, 0, 0),  # active 28 days ago only: no row
            )
        ],
        "tenant_id string, activity_date date, scope string, account_id string, dau long, "
        "wau_7d long, mau_28d long, events long, admin_actions long, "
        "collaboration_actions long",
    )
    seats = spark.createDataFrame(
        [(T, d, "direct", "A", 8), (T, d, "direct", "S", 5)],
        "tenant_id string, activity_date date, scope string, account_id string, seats long",
    )
    adoption = spark.createDataFrame(
        [(T, d, "direct", "A", f) for f in ("f1", "f2", "f3")],
        "tenant_id string, activity_date date, scope string, account_id string, feature_key string",
    )
    tickets = spark.createDataFrame(
        [(T, "A", day(20), "urgent"), (T, "A", day(1), "low")],  # day 1 is before D−27
        "tenant_id string, account_id string, created_date date, priority string",
    )
    targets = _targets(spark, [d])
    hierarchy = _hierarchy(spark, [d])
    tiers = spark.createDataFrame(
        [(T, d, "A", "strategic")],
        "tenant_id string, activity_date date, account_id string, tier string",
    )
    rows = marts.account_health_daily(
        account_days,
        seats,
        adoption,
        marts.tickets_in_window(tickets, targets, hierarchy, HEALTH),
        tiers,
        targets,
        HEALTH,
        "3",
        "run-2",
    ).collect()
    return {(r.scope, r.account_id): r.asDict() for r in rows}


def test_health_components_of_an_active_strategic_account(health_rows):
    a = health_rows[("direct", "A")]
    # 7-day sums over D, D−2, D−6: dau 4, events 18, collaboration 3; admin over 28 days 4
    assert a["breadth_score"] == 75.0  # 3 features / 4
    assert a["depth_score"] == 60.0  # 18 events / 3 weekly users = 6 / 10
    assert a["consistency_score"] == 38.1  # 4 / (7 × 3) = 0.1905 / 0.5
    assert a["admin_engagement_score"] == 100.0  # 4 / 4
    assert a["collaboration_score"] == 100.0  # 3 / 3 users = 1 / 1
    assert a["support_load_score"] == 0.0  # one urgent ticket = 4 / 4; the day-1 one is out
    assert a["seat_utilization_score"] == 50.0  # mau 4 / 8 seats
    assert a["trend_score"] == 100.0  # mau 2 → 4 = +100%, capped
    # strategic: trend weighs 3, seats 2, the rest 1: 773.1 / 11 = 70.28
    assert (a["tier"], a["health_score"], a["band"]) == ("strategic", 70.3, "healthy")
    # costs: seats 2 × 50 = 100 and support 1 × 100 = 100 (tie: alphabetical), consistency 61.9
    assert a["top_negative_drivers"] == ["seat_utilization", "support_load"]
    assert (a["metric_version"], a["_run_id"]) == ("3", "run-2")


def test_health_without_seats_or_prior_shares_their_weight(health_rows):
    p = health_rows[("rollup", "P")]
    assert (p["seat_utilization_score"], p["trend_score"]) == (None, None)
    # A's urgent ticket is in P's rollup scope
    assert p["support_load_score"] == 0.0
    # breadth 0, depth 2/10 = 20, consistency 1/7/0.5 = 28.6, admin 0, collaboration 0,
    # support 0: 48.6 / 6 = 8.1 with the default weights (no tier)
    assert (p["tier"], p["health_score"], p["band"]) == ("unknown", 8.1, "at_risk")
    assert p["top_negative_drivers"] == ["admin_engagement", "breadth"]


def test_health_covers_idle_accounts_holding_seats_only(health_rows):
    s = health_rows[("direct", "S")]
    # nothing active: 0 everywhere except support (no tickets) 100; seats 0 / 5 weighs 2
    assert s["depth_score"] == 0.0 and s["support_load_score"] == 100.0
    assert s["seat_utilization_score"] == 0.0 and s["trend_score"] is None
    assert (s["health_score"], s["band"]) == (12.5, "at_risk")  # 100 / 8
    assert s["top_negative_drivers"] == ["seat_utilization", "admin_engagement"]
    assert ("direct", "B") not in health_rows  # inactive for 28 days and no seats
    assert set(health_rows) == {("direct", "A"), ("rollup", "P"), ("direct", "S")}


# --------------------------------------------------------------------------- activation


def test_activation_dates_and_time_to_value(spark):
    activity = spark.createDataFrame(
        [
            (T, day(1), "p1", "A", 1, ["f1"]),
            (T, day(2), "p2", "A", 1, ["f1"]),
            (T, day(3), "p2", "A", 2, ["f2"]),
            (T, day(1), "p1", "B", 1, ["f1", "f2"]),
            (T, day(6), "p2", "B", 1, []),  # after B's 5-day window: too late
            (T, day(10), "p1", "C", 1, ["f1"]),
            (T, day(10), "p2", "C", 1, ["f2"]),
            (T, day(11), "p1", "D", 4, ["f1", "f2"]),  # D was first active earlier: settled
            (T, day(2), "p9", "E", 0, []),  # identify only: not activity
            (T, day(2), "p8", None, 3, ["f1"]),  # unattributed
        ],
        "tenant_id string, event_date date, person_id string, account_id string, events long, "
        "features array<string>",
    )
    settled = spark.createDataFrame([(T, "D")], "tenant_id string, account_id string")
    horizons = spark.createDataFrame([(T, day(12))], "tenant_id string, horizon date")
    conf = ActivationConf(min_active_users=2, min_features=2, within_days=5)
    rows = marts.account_activation(activity, settled, horizons, conf, "1", "run-3").collect()
    got = {
        r.account_id: (
            r.first_active_date,
            r.activated,
            r.activation_date,
            r.days_to_activate,
            r.active_users_in_window,
            r.features_in_window,
            r.window_closed,
        )
        for r in rows
    }
    assert got == {
        # 2nd person on day 2, 2nd feature on day 3 → activated day 3, 2 days to value
        "A": (day(1), True, day(3), 2, 2, 2, True),
        # two features on day 1, but the 2nd person came on day 6, outside days 1–5
        "B": (day(1), False, None, None, 1, 2, True),
        # both on the first day; the window (days 10–14) is still open at horizon day 12
        "C": (day(10), True, day(10), 0, 2, 2, False),
    }


# --------------------------------------------------------------------------- retention


def test_monthly_retention_by_first_active_month(spark):
    cohorts = spark.createDataFrame(
        [(T, "a1", day(15)), (T, "a2", day(20)), (T, "a3", day(3, 2))],
        "tenant_id string, account_id string, first_active_date date",
    )
    active = spark.createDataFrame(
        [
            (T, "a1", day(1)),
            (T, "a2", day(1)),
            (T, "a1", day(1, 2)),
            (T, "a3", day(1, 2)),
            (T, "a1", day(1, 3)),
            (T, "a3", day(1, 3)),
        ],
        "tenant_id string, account_id string, activity_month date",
    )
    months = spark.createDataFrame(
        [(T, day(1, 2), True), (T, day(1, 3), False)],
        "tenant_id string, activity_month date, month_complete boolean",
    )
    rows = marts.account_retention_monthly(cohorts, active, months, "1", "run-4").collect()
    got = {
        (r.activity_month, r.cohort_month): (
            r.months_since_first,
            r.cohort_accounts,
            r.retained_accounts,
            r.retention_rate,
            r.month_complete,
        )
        for r in rows
    }
    assert got == {
        (day(1, 2), day(1)): (1, 2, 1, 0.5, True),  # January's a1 and a2; a1 back in February
        (day(1, 2), day(1, 2)): (0, 1, 1, 1.0, True),
        (day(1, 3), day(1)): (2, 2, 1, 0.5, False),
        (day(1, 3), day(1, 2)): (1, 1, 1, 1.0, False),
    }
