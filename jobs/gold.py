"""Gold: exact account rollups for the (tenant, activity_date) partitions that changed.

What to recompute comes from `ops.restatements` (written by silver, one row per tenant, date
and reason) and the tenant's horizon. `ops.gold_progress` remembers, per tenant, the
horizon gold is built to and the newest restatement it has consumed, so a run whose gold
stage failed leaves its restatements pending for the next run instead of losing them:

- reasons `events`, `identity`, `attribution` on date d → account_daily for d … d + 27 (the
  trailing windows that include d), account_hourly and tenant_daily for d;
- `hierarchy`, `subscriptions` on d → account_daily for d (scope and seats are as of d);
- the horizon moving from H to H' → account_daily for H + 1 … H' (windows still open);
- the marts (`jobs/marts.py`): feature adoption follows account_daily; health follows every
  account_daily date x to x … x + 6 and x + 28 (its 7-day sums and 28-day trend), plus
  `tickets` on d → d … d + 27 and `accounts` (tier) on d → d; activation and retention
  follow the `activity` dates;
- everything capped at the tenant's horizon (SPEC §6.1).

Each table is published with one Delta commit replacing exactly those partitions.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.context import RunContext
from jobs.delta_io import (
    Dates,
    date_range,
    partition_predicate,
    read_table,
    replace_partitions,
    tenants_predicate,
)
from jobs.ledger import utc_now
from jobs.tables import (
    GOLD_ACCOUNT_DAILY,
    GOLD_ACCOUNT_HOURLY,
    GOLD_TENANT_DAILY,
    OPS_GOLD_PROGRESS,
    OPS_RESTATEMENTS,
    SILVER_ACCOUNT_HIERARCHY,
    SILVER_EVENTS,
    SILVER_PERSON_ACCOUNT_DAILY,
    SILVER_SESSIONS,
    SILVER_SUBSCRIPTIONS,
    TableSpec,
)
from jobs.transforms import gold as rollups
from jobs.transforms.marts import SHORT_WINDOW, TREND_LAG_DAYS

ACTIVITY_REASONS = frozenset({"events", "identity", "attribution"})
AS_OF_REASONS = frozenset({"hierarchy", "subscriptions"})
WINDOW = rollups.LONGEST_WINDOW

PROGRESS_SCHEMA = T.StructType(
    [
        T.StructField("tenant_id", T.StringType(), False),
        T.StructField("horizon", T.DateType(), False),
        T.StructField("restatements_through", T.TimestampType(), True),
        T.StructField("_run_id", T.StringType(), False),
        T.StructField("updated_at", T.TimestampType(), False),
    ]
)


@dataclass
class Plan:
    """The partitions one gold run recomputes, per tenant."""

    daily: Dates = field(default_factory=lambda: defaultdict(set))  # account_daily
    activity: Dates = field(default_factory=lambda: defaultdict(set))  # hourly, tenant_daily
    health: Dates = field(default_factory=lambda: defaultdict(set))  # account_health_daily
    consumed: dict[str, dt.datetime | None] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(
            d for parts in (self.daily, self.activity, self.health) for d in parts.values()
        )


def plan(ctx: RunContext, horizons: Mapping[str, dt.date]) -> Plan:
    """Read pending restatements and progress; decide which partitions to recompute."""
    spark, tenants = ctx.spark, sorted(horizons)
    result = Plan()
    progress = read_table(spark, ctx.path(OPS_GOLD_PROGRESS.name))
    done = {}
    if progress is not None:
        done = {r.tenant_id: r for r in progress.where(tenants_predicate(tenants)).collect()}
    restatements = read_table(spark, ctx.path(OPS_RESTATEMENTS.name))
    pending = []
    if restatements is not None:
        rows = restatements.where(tenants_predicate(tenants))
        for t, row in done.items():
            if row.restatements_through is not None:
                rows = rows.where(
                    (F.col("tenant_id") != t) | (F.col("recorded_at") > row.restatements_through)
                )
        # one row per pending (tenant, date): dates and reasons are metadata, not events
        pending = (
            rows.groupBy("tenant_id", "event_date")
            .agg(
                F.array_distinct(F.flatten(F.collect_list("reasons"))).alias("reasons"),
                F.max("recorded_at").alias("recorded_at"),
            )
            .collect()
        )
    for t in tenants:
        result.consumed[t] = done[t].restatements_through if t in done else None
    for row in pending:
        t, d, horizon = row.tenant_id, row.event_date, horizons[row.tenant_id]
        reasons = set(row.reasons)
        if d <= horizon and reasons & ACTIVITY_REASONS:
            result.activity[t].add(d)
            result.daily[t].update(date_range(d, min(d + dt.timedelta(days=WINDOW - 1), horizon)))
        if d <= horizon and reasons & AS_OF_REASONS:
            result.daily[t].add(d)
        if d <= horizon and "tickets" in reasons:
            result.health[t].update(date_range(d, min(d + dt.timedelta(days=WINDOW - 1), horizon)))
        if d <= horizon and "accounts" in reasons:
            result.health[t].add(d)
        seen = result.consumed[t]
        result.consumed[t] = row.recorded_at if seen is None else max(seen, row.recorded_at)
    for t, horizon in horizons.items():
        if t in done and done[t].horizon < horizon:
            result.daily[t].update(date_range(done[t].horizon + dt.timedelta(days=1), horizon))
    for t, days in result.daily.items():
        for x in days:
            last = min(x + dt.timedelta(days=SHORT_WINDOW - 1), horizons[t])
            result.health[t].update(date_range(x, last))
            if x + dt.timedelta(days=TREND_LAG_DAYS) <= horizons[t]:
                result.health[t].add(x + dt.timedelta(days=TREND_LAG_DAYS))
    return result


def read_parts(ctx: RunContext, table: str, parts: Dates, column: str, schema: str) -> DataFrame:
    """The `parts` partitions of `table`; no rows (of `schema`) before the table exists."""
    df = read_table(ctx.spark, ctx.path(table))
    if df is None:
        return ctx.spark.createDataFrame([], schema)
    return df.where(partition_predicate(parts, column))


def publish(ctx: RunContext, table: TableSpec, rows: DataFrame, parts: Dates, column: str) -> None:
    """Replace the `parts` partitions (dates in `column`) of `table` with `rows`, through
    the table's quality gate."""
    ctx.gates.publish(table, rows, partition_predicate(parts, column))


def targets(ctx: RunContext, parts: Dates) -> DataFrame:
    return ctx.spark.createDataFrame(
        [(t, d) for t, days in sorted(parts.items()) for d in sorted(days)],
        "tenant_id string, activity_date date",
    )


def lookback(parts: Dates, offsets: Iterable[int]) -> Dates:
    """The dates `offsets` days before each date of `parts` (what trailing windows read)."""
    offsets = list(offsets)
    return {
        t: {d - dt.timedelta(days=k) for d in days for k in offsets}
        for t, days in parts.items()
        if days
    }


HIERARCHY_SCHEMA = "tenant_id string, as_of_date date, account_id string, ancestors array<string>"


def hierarchy_on(ctx: RunContext, parts: Dates) -> DataFrame:
    """silver.account_hierarchy rows as of the dates of `parts`."""
    return read_parts(
        ctx, SILVER_ACCOUNT_HIERARCHY.name, parts, "as_of_date", HIERARCHY_SCHEMA
    ).select("tenant_id", "as_of_date", "account_id", "ancestors")


def seats_on(ctx: RunContext, parts: Dates) -> DataFrame:
    """Σ billable seats per (tenant, activity_date, account) from the snapshot in force on
    each date of `parts` (see `transforms.gold.seats_in_force`)."""
    snapshot_dates, snapshots = _in_force(ctx, parts)
    subscriptions = read_parts(
        ctx, SILVER_SUBSCRIPTIONS.name, snapshots, "delivery_date",
        "tenant_id string, delivery_date date, account_id string, status string, seats int",
    )  # fmt: skip
    return rollups.seats_in_force(subscriptions, snapshot_dates)


def _in_force(ctx: RunContext, daily: Dates) -> tuple[DataFrame, Dates]:
    """(tenant, activity_date, snapshot_date): the latest billing snapshot on or before each
    date, and the snapshot partitions to read."""
    subs = read_table(ctx.spark, ctx.path(SILVER_SUBSCRIPTIONS.name))
    snapshots: dict[str, list[dt.date]] = defaultdict(list)
    if subs is not None:
        listed = subs.where(tenants_predicate(daily)).select("tenant_id", "delivery_date")
        for r in listed.distinct().collect():
            snapshots[r.tenant_id].append(r.delivery_date)
    rows, needed = [], defaultdict(set)
    for t, days in daily.items():
        known = sorted(snapshots.get(t, ()))
        for d in days:
            earlier = [s for s in known if s <= d]
            if earlier:
                rows.append((t, d, earlier[-1]))
                needed[t].add(earlier[-1])
    df = ctx.spark.createDataFrame(rows, "tenant_id string, activity_date date, snapshot_date date")
    return df, needed


def build(ctx: RunContext, horizons: Mapping[str, dt.date]) -> Plan:
    """Recompute and publish the account_daily, tenant_daily and account_hourly partitions
    `plan` selects for these tenants; the plan is returned for the marts and for
    `record_progress`, which the caller runs once everything is published."""
    todo = plan(ctx, horizons)
    if not any(todo.daily.values()) and not any(todo.activity.values()):
        return todo
    metrics = ctx.settings.metrics
    daily = {t: d for t, d in todo.daily.items() if d}
    activity_days = {t: d for t, d in todo.activity.items() if d}
    with ctx.stage("gold.inputs"):
        inputs = lookback(daily, range(WINDOW))
        for t, days in activity_days.items():
            inputs.setdefault(t, set()).update(days)
        activity = read_parts(
            ctx, SILVER_PERSON_ACCOUNT_DAILY.name, inputs, "event_date",
            "tenant_id string, event_date date, person_id string, account_id string, "
            "events long, admin_actions long, collaboration_actions long, features array<string>",
        ).localCheckpoint()  # fmt: skip
        hierarchy = hierarchy_on(ctx, daily)
        sessions = read_parts(
            ctx, SILVER_SESSIONS.name, daily, "event_date",
            "tenant_id string, event_date date, account_id string, session_id string",
        )  # fmt: skip
        seats = seats_on(ctx, daily)
    with ctx.stage(GOLD_ACCOUNT_DAILY.name):
        rows = rollups.account_daily(
            activity,
            sessions,
            seats,
            targets(ctx, daily),
            hierarchy,
            metrics.version_of(GOLD_ACCOUNT_DAILY.name),
            ctx.run_id,
        )
        publish(ctx, GOLD_ACCOUNT_DAILY, rows, daily, "activity_date")
    if activity_days:
        with ctx.stage(GOLD_TENANT_DAILY.name):
            publish(
                ctx,
                GOLD_TENANT_DAILY,
                rollups.tenant_daily(
                    activity,
                    targets(ctx, activity_days),
                    metrics.version_of(GOLD_TENANT_DAILY.name),
                    ctx.run_id,
                ),
                activity_days,
                "activity_date",
            )
        with ctx.stage(GOLD_ACCOUNT_HOURLY.name):
            events = read_parts(
                ctx, SILVER_EVENTS.name, activity_days, "event_date",
                "tenant_id string, event_date date, event_ts timestamp, person_id string, "
                "account_id string, category string, is_activity boolean",
            )  # fmt: skip
            zones = ctx.spark.createDataFrame(
                [(t, ctx.settings.timezone_of(t)) for t in sorted(activity_days)],
                "tenant_id string, timezone string",
            )
            publish(
                ctx,
                GOLD_ACCOUNT_HOURLY,
                rollups.account_hourly(
                    events, zones, metrics.version_of(GOLD_ACCOUNT_HOURLY.name), ctx.run_id
                ),
                activity_days,
                "activity_date",
            )
    ctx.log.info(
        "gold: account_daily %d partitions, hourly and tenant_daily %d partitions, %d tenants",
        sum(len(d) for d in daily.values()),
        sum(len(d) for d in activity_days.values()),
        len(daily.keys() | activity_days.keys()),
    )
    return todo


def record_progress(ctx: RunContext, horizons: Mapping[str, dt.date], todo: Plan) -> None:
    """After gold is published: the tenants' horizons and the restatements consumed."""
    horizons = {t: h for t, h in horizons.items() if t not in ctx.gates.blocked}
    if not horizons:
        return
    now = utc_now()
    rows = [(t, h, todo.consumed.get(t), ctx.run_id, now) for t, h in sorted(horizons.items())]
    replace_partitions(
        ctx.spark.createDataFrame(rows, PROGRESS_SCHEMA),
        ctx.path(OPS_GOLD_PROGRESS.name),
        tenants_predicate(horizons),
        OPS_GOLD_PROGRESS.partition_by,
    )
