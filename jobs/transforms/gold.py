"""Gold account rollups (SPEC §6.1–6.3) as pure DataFrame functions.

Every function takes silver-shaped frames already narrowed to the partitions a run must
recompute and returns the gold rows for those partitions; reading and publishing is the
job's business (`jobs/gold.py`). Distinct counts are exact: windows and hierarchy scopes
are built by expanding the compact per-day activity (`silver.person_account_daily`, one row
per tenant × date × person × account) to the dates and scope accounts it counts for, then
counting each person once per (date, scope account).

Inputs (columns used):
- activity: tenant_id, event_date, person_id, account_id, events, admin_actions,
  collaboration_actions, features — rows with events = 0 (identify/group only) are ignored.
- targets: tenant_id, activity_date — the dates to produce.
- hierarchy: tenant_id, as_of_date, account_id, ancestors (nearest first) — accounts missing
  from it are roots.
- sessions: tenant_id, event_date, account_id, session_id.
- seats: tenant_id, activity_date, account_id, seats — Σ seats of the account's own billable
  subscriptions in the snapshot in force on activity_date (see `seats_in_force`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, GroupedData, Window
from pyspark.sql import functions as F

WINDOW_DAYS = {"wau_7d": 7, "mau_28d": 28}
LONGEST_WINDOW = max(WINDOW_DAYS.values())
BILLABLE_STATUSES = ("trialing", "active", "past_due")
SCOPES = ("direct", "rollup")


def _qualifying(activity: DataFrame) -> DataFrame:
    return activity.where(F.col("events") > 0)


def counted_until(df: DataFrame, keys: Sequence[str], date_column: str = "event_date") -> DataFrame:
    """`df` (at most one row per `keys` and date) with `activity_date`: each date D the row
    is the latest of its key on or before, within the longest trailing window.

    A row of day d stands for [d, min(next day of its key − 1, d + 27)], not all 28 days
    after d: a key active every day gives one row per date instead of 28, and the latest
    row ≤ D — what distinct counts, "used today" and "last active" need — is kept.
    """
    following = F.lead(date_column).over(Window.partitionBy(*keys).orderBy(date_column))
    day = F.col(date_column)
    last = F.least(F.date_add(day, LONGEST_WINDOW - 1), F.date_sub(F.col("_next"), 1))
    return (
        df.withColumn("_next", following)
        .withColumn("activity_date", F.explode(F.sequence(day, F.greatest(day, last))))
        .drop("_next")
    )


def in_scope(df: DataFrame, hierarchy: DataFrame, date_column: str = "activity_date") -> DataFrame:
    """Each row once per scope it counts in: (`scope`, `scope_account_id`).

    `direct`: the row's own account. `rollup`: the account and every ancestor it has on the
    row's date (SPEC §4.6) — so a parent's rollup holds its own and all descendants' rows.
    Rows without an account (unattributed) are dropped: they count at tenant level only.
    """
    ancestors = hierarchy.select(
        "tenant_id",
        F.col("as_of_date").alias(date_column),
        "account_id",
        F.col("ancestors").alias("_ancestors"),
    )
    attributed = df.where(F.col("account_id").isNotNull()).join(
        ancestors, ["tenant_id", date_column, "account_id"], "left"
    )
    chain = F.concat(
        F.array(F.col("account_id")),
        F.coalesce(F.col("_ancestors"), F.array().cast("array<string>")),
    )
    scoped = F.array(
        F.struct(F.lit("direct").alias("scope"), F.array(F.col("account_id")).alias("ids")),
        F.struct(F.lit("rollup").alias("scope"), chain.alias("ids")),
    )
    return (
        attributed.select("*", F.explode(scoped).alias("_s"))
        .select(
            "*", F.col("_s.scope").alias("scope"), F.explode("_s.ids").alias("scope_account_id")
        )
        .drop("_s", "_ancestors")
    )


def _on_targets(df: DataFrame, targets: DataFrame) -> DataFrame:
    """Rows of `df` whose event_date is a target date, that date named activity_date."""
    return df.withColumnRenamed("event_date", "activity_date").join(
        F.broadcast(targets), ["tenant_id", "activity_date"], "left_semi"
    )


def _by_scope_account(scoped: DataFrame) -> GroupedData:
    """`in_scope` output grouped per gold key: (tenant, activity_date, scope, account)."""
    return scoped.groupBy(
        "tenant_id", "activity_date", "scope", F.col("scope_account_id").alias("account_id")
    )


def window_users(activity: DataFrame, targets: DataFrame, hierarchy: DataFrame) -> DataFrame:
    """Exact dau / wau_7d / mau_28d per (tenant, activity_date, scope, account).

    A person active on day d counts for every target date D in [d, d + 27]; the scope of a
    row counted for D uses the hierarchy as of D (SPEC §6.1: "in scope on activity_date").
    Each person is reduced to their latest active day ≤ D before counting, so a person seen
    in two sub-accounts or on several days counts once.
    """
    person_days = (
        _qualifying(activity)
        .select("tenant_id", "event_date", "person_id", "account_id")
        .distinct()
    )
    days = counted_until(person_days, ["tenant_id", "person_id", "account_id"]).join(
        F.broadcast(targets), ["tenant_id", "activity_date"], "left_semi"
    )
    last_seen = (
        in_scope(days, hierarchy)
        .groupBy("tenant_id", "activity_date", "scope", "scope_account_id", "person_id")
        .agg(F.max("event_date").alias("last_active"))
    )
    gap = F.datediff("activity_date", "last_active")
    return _by_scope_account(last_seen).agg(
        F.count(F.when(gap == 0, 1)).alias("dau"),
        F.count(F.when(gap < WINDOW_DAYS["wau_7d"], 1)).alias("wau_7d"),
        F.count(F.lit(1)).alias("mau_28d"),
    )


def day_activity(activity: DataFrame, targets: DataFrame, hierarchy: DataFrame) -> DataFrame:
    """Per (tenant, activity_date, scope, account): the date's events, admin and
    collaboration actions and distinct feature keys."""
    today = _on_targets(_qualifying(activity), targets)
    return _by_scope_account(in_scope(today, hierarchy)).agg(
        F.sum("events").alias("events"),
        F.sum("admin_actions").alias("admin_actions"),
        F.sum("collaboration_actions").alias("collaboration_actions"),
        F.size(F.array_distinct(F.flatten(F.collect_list("features")))).alias("distinct_features"),
    )


def session_starts(sessions: DataFrame, targets: DataFrame, hierarchy: DataFrame) -> DataFrame:
    """Sessions starting on the date (a session's date and account are its first event's)."""
    started = _on_targets(sessions, targets).select(
        "tenant_id", "activity_date", "account_id", "session_id"
    )
    return _by_scope_account(in_scope(started, hierarchy)).agg(
        F.countDistinct("session_id").alias("sessions")
    )


def seats_in_force(subscriptions: DataFrame, in_force: DataFrame) -> DataFrame:
    """Σ seats of billable subscriptions per (tenant, activity_date, account).

    `subscriptions`: silver.subscriptions rows (tenant_id, delivery_date, account_id, status,
    seats). `in_force`: (tenant_id, activity_date, snapshot_date) — the latest snapshot with
    delivery_date ≤ activity_date, chosen by the caller.
    """
    billable = subscriptions.where(F.col("status").isin(*BILLABLE_STATUSES)).select(
        "tenant_id", F.col("delivery_date").alias("snapshot_date"), "account_id", "seats"
    )
    return (
        billable.join(in_force, ["tenant_id", "snapshot_date"])
        .groupBy("tenant_id", "activity_date", "account_id")
        .agg(F.sum("seats").cast("long").alias("seats"))
    )


def scoped_seats(seats: DataFrame, hierarchy: DataFrame) -> DataFrame:
    """Seats per scope: an account's own (direct) and its whole rollup scope's (rollup)."""
    return _by_scope_account(in_scope(seats, hierarchy)).agg(
        F.sum("seats").cast("long").alias("seats")
    )


def _ratio(numerator: Column, denominator: Column) -> Column:
    return F.when(denominator > 0, numerator.cast("double") / denominator)


def account_daily(
    activity: DataFrame,
    sessions: DataFrame,
    seats: DataFrame,
    targets: DataFrame,
    hierarchy: DataFrame,
    metric_version: str,
    run_id: str,
) -> DataFrame:
    """`gold.account_daily` rows for `targets`: one per account and scope with mau_28d > 0."""
    keys = ["tenant_id", "activity_date", "scope", "account_id"]
    zero = F.lit(0).cast("long")
    rows = (
        window_users(activity, targets, hierarchy)
        .join(day_activity(activity, targets, hierarchy), keys, "left")
        .join(session_starts(sessions, targets, hierarchy), keys, "left")
        .join(scoped_seats(seats, hierarchy), keys, "left")
    )
    return rows.select(
        "tenant_id",
        "activity_date",
        "account_id",
        "scope",
        F.col("dau").cast("long").alias("dau"),
        F.col("wau_7d").cast("long").alias("wau_7d"),
        F.col("mau_28d").cast("long").alias("mau_28d"),
        *(
            F.coalesce(F.col(c).cast("long"), zero).alias(c)
            for c in (
                "events",
                "sessions",
                "admin_actions",
                "collaboration_actions",
                "distinct_features",
            )
        ),
        "seats",
        _ratio(F.col("mau_28d"), F.col("seats")).alias("seat_utilization"),
        _ratio(F.col("dau"), F.col("mau_28d")).alias("stickiness"),
        F.lit(metric_version).alias("metric_version"),
        F.lit(run_id).alias("_run_id"),
    )


def hour_start_utc(event_ts: Column, timezone: Column) -> Column:
    """The UTC instant at which the tenant-local clock hour containing `event_ts` began.

    Computed as event_ts minus the minutes and seconds elapsed on the local clock, so the two
    01:00 hours of a DST fall-back day stay apart and +05:30 hours start at :30 UTC.
    """
    local = F.from_utc_timestamp(event_ts, timezone)
    into_hour = F.unix_micros(local) % F.lit(3_600_000_000)
    return F.timestamp_micros(F.unix_micros(event_ts) - into_hour)


def _local_hour(event_ts: Column, timezone: Column) -> Column:
    """0–23 on the tenant's clock (independent of the session time zone)."""
    local_micros = F.unix_micros(F.from_utc_timestamp(event_ts, timezone))
    return F.floor((local_micros % F.lit(86_400_000_000)) / F.lit(3_600_000_000)).cast("int")


def account_hourly(
    events: DataFrame, timezones: DataFrame, metric_version: str, run_id: str
) -> DataFrame:
    """`gold.account_hourly` from silver.events of the dates to produce (direct scope).

    `timezones`: tenant_id, timezone. activity_date is the event's local date (its
    `event_date`), which is also the local date of the hour's start.
    """
    qualifying = events.where(F.col("is_activity") & F.col("account_id").isNotNull()).join(
        F.broadcast(timezones), "tenant_id"
    )
    start = hour_start_utc(F.col("event_ts"), F.col("timezone"))
    return (
        qualifying.select(
            "tenant_id",
            F.col("event_date").alias("activity_date"),
            "account_id",
            start.alias("hour_start_utc"),
            _local_hour(F.col("event_ts"), F.col("timezone")).alias("local_hour"),
            "person_id",
            "category",
        )
        .groupBy("tenant_id", "activity_date", "account_id", "hour_start_utc", "local_hour")
        .agg(
            F.countDistinct("person_id").alias("active_users"),
            F.count(F.lit(1)).alias("events"),
            F.count(F.when(F.col("category") == "admin", 1)).alias("admin_actions"),
        )
        .select(
            "tenant_id",
            "activity_date",
            "account_id",
            "hour_start_utc",
            "local_hour",
            "active_users",
            "events",
            "admin_actions",
            F.lit(metric_version).alias("metric_version"),
            F.lit(run_id).alias("_run_id"),
        )
    )


def tenant_daily(
    activity: DataFrame, targets: DataFrame, metric_version: str, run_id: str
) -> DataFrame:
    """`gold.tenant_daily`: dau over all persons (attributed or not), events, unattributed."""
    today = _on_targets(_qualifying(activity), targets)
    return (
        today.groupBy("tenant_id", "activity_date")
        .agg(
            F.countDistinct("person_id").alias("dau"),
            F.sum("events").cast("long").alias("events"),
            F.coalesce(F.sum(F.when(F.col("account_id").isNull(), F.col("events"))), F.lit(0))
            .cast("long")
            .alias("unattributed_events"),
        )
        .select("*", F.lit(metric_version).alias("metric_version"), F.lit(run_id).alias("_run_id"))
    )
