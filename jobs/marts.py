"""Gold marts (SPEC §6.4) for the partitions a run's gold plan selects.

Runs after `jobs.gold.build` has published account_daily, and reads it back (partition
pruned) rather than recomputing it:

- `gold.feature_adoption_daily` for the account_daily dates;
- `gold.account_health_daily` for the plan's health dates (inputs: account_daily over each
  date's 7-day window and 28 days before, the feature adoption of the date, tickets, tier
  and seats as of the date);
- `gold.account_activation`, partitions first_active_date ≥ (earliest changed activity date
  − within_days + 1): earlier accounts' activation windows closed before the change;
- `gold.account_retention_monthly`, from the month of the earliest changed activity date to
  the horizon's month (a cohort's size changes only when an account's first date moves,
  which needs a change on or before that date).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.context import RunContext
from jobs.delta_io import Dates, date_range, materialize, read_table, release
from jobs.gold import (
    WINDOW,
    Plan,
    hierarchy_on,
    lookback,
    publish,
    read_parts,
    seats_on,
    targets,
)
from jobs.tables import (
    GOLD_ACCOUNT_ACTIVATION,
    GOLD_ACCOUNT_DAILY,
    GOLD_ACCOUNT_HEALTH_DAILY,
    GOLD_ACCOUNT_RETENTION_MONTHLY,
    GOLD_FEATURE_ADOPTION_DAILY,
    SILVER_ACCOUNTS,
    SILVER_PERSON_ACCOUNT_DAILY,
    SILVER_TICKETS,
)
from jobs.transforms import gold as rollups
from jobs.transforms import marts
from jobs.validation import require_tenant_id

ACCOUNT_DAILY_SCHEMA = (
    "tenant_id string, activity_date date, account_id string, scope string, dau long, "
    "wau_7d long, mau_28d long, events long, admin_actions long, collaboration_actions long"
)
ACTIVITY_SCHEMA = (
    "tenant_id string, event_date date, person_id string, account_id string, events long, "
    "features array<string>, feature_events array<struct<feature_key: string, events: long>>"
)


def _nonempty(parts: Dates) -> Dates:
    return {t: set(d) for t, d in parts.items() if d}


def build(ctx: RunContext, todo: Plan, horizons: Mapping[str, dt.date]) -> None:
    """Publish the four marts for the partitions `todo` selects."""
    daily, health = _nonempty(todo.daily), _nonempty(todo.health)
    changed = _nonempty(todo.activity)
    if daily:
        _feature_adoption(ctx, daily)
    if health:
        _health(ctx, health)
    if changed:
        first = {t: min(days) for t, days in changed.items()}
        _activation(ctx, first, horizons)
        _retention(ctx, first, horizons)


def _feature_adoption(ctx: RunContext, daily: Dates) -> None:
    table = GOLD_FEATURE_ADOPTION_DAILY
    with ctx.stage(table.name):
        activity = read_parts(
            ctx,
            SILVER_PERSON_ACCOUNT_DAILY.name,
            lookback(daily, range(WINDOW)),
            "event_date",
            ACTIVITY_SCHEMA,
        )
        mau = read_parts(ctx, GOLD_ACCOUNT_DAILY.name, daily, "activity_date", ACCOUNT_DAILY_SCHEMA)
        rows = marts.feature_adoption_daily(
            activity,
            targets(ctx, daily),
            hierarchy_on(ctx, daily),
            mau,
            ctx.settings.metrics.version_of(table.name),
            ctx.run_id,
        )
        publish(ctx, table, rows, daily, "activity_date")


def _health(ctx: RunContext, health: Dates) -> None:
    """The health score reads each input several times (windows, trends, scopes, breadth):
    every input is computed once and kept (`materialize`), so the score's plan holds six
    kept frames, not the ~60 Delta scans of re-reading them, each planned and listed anew."""
    table = GOLD_ACCOUNT_HEALTH_DAILY
    spark = ctx.spark
    with ctx.stage(table.name):
        inputs = lookback(health, (*range(marts.SHORT_WINDOW), marts.TREND_LAG_DAYS))
        account_days = materialize(
            read_parts(ctx, GOLD_ACCOUNT_DAILY.name, inputs, "activity_date", ACCOUNT_DAILY_SCHEMA)
        )
        adoption = materialize(read_parts(
            ctx, GOLD_FEATURE_ADOPTION_DAILY.name, health, "activity_date",
            "tenant_id string, activity_date date, scope string, account_id string",
        ))  # fmt: skip
        hierarchy = materialize(hierarchy_on(ctx, health))
        seats = materialize(rollups.scoped_seats(seats_on(ctx, health), hierarchy))
        goal = targets(ctx, health)
        tickets = read_table(spark, ctx.path(SILVER_TICKETS.name))
        if tickets is None:
            tickets = spark.createDataFrame(
                [], "tenant_id string, account_id string, created_date date, priority string"
            )
        tickets = materialize(
            marts.tickets_in_window(
                tickets.where(F.col("tenant_id").isin(sorted(health))),
                goal,
                hierarchy,
                ctx.settings.health,
            )
        )
        tiers = materialize(_tiers(ctx, goal, sorted(health)))
        kept = (account_days, adoption, hierarchy, seats, tickets, tiers)
        try:
            rows = marts.account_health_daily(
                account_days,
                seats,
                adoption,
                tickets,
                tiers,
                goal,
                ctx.settings.health,
                ctx.settings.metrics.version_of(table.name),
                ctx.run_id,
            )
            publish(ctx, table, rows, health, "activity_date")
        finally:
            for df in kept:
                release(df)


def _tiers(ctx: RunContext, goal: DataFrame, tenants: list[str]) -> DataFrame:
    """(tenant_id, activity_date, account_id, tier): each account's SCD2 tier as of the date."""
    accounts = read_table(ctx.spark, ctx.path(SILVER_ACCOUNTS.name))
    if accounts is None:
        return ctx.spark.createDataFrame(
            [], "tenant_id string, activity_date date, account_id string, tier string"
        )
    versions = accounts.where(F.col("tenant_id").isin(tenants)).select(
        "tenant_id", "account_id", "tier", "valid_from", "valid_to"
    )
    current = (F.col("valid_from") <= F.col("activity_date")) & (
        F.col("valid_to").isNull() | (F.col("activity_date") < F.col("valid_to"))
    )
    return (
        versions.join(F.broadcast(goal), "tenant_id")
        .where(current)
        .select("tenant_id", "activity_date", "account_id", "tier")
    )


def _activation(
    ctx: RunContext, first: Mapping[str, dt.date], horizons: Mapping[str, dt.date]
) -> None:
    table = GOLD_ACCOUNT_ACTIVATION
    conf = ctx.settings.activation
    reopen = dt.timedelta(days=conf.within_days - 1)
    ranges = {t: set(date_range(d - reopen, horizons[t])) for t, d in first.items()}
    with ctx.stage(table.name):
        activity = read_parts(
            ctx, SILVER_PERSON_ACCOUNT_DAILY.name, ranges, "event_date", ACTIVITY_SCHEMA
        )
        existing = read_table(ctx.spark, ctx.path(table.name))
        settled = ctx.spark.createDataFrame([], "tenant_id string, account_id string")
        if existing is not None:
            earlier = " OR ".join(
                f"(tenant_id = '{require_tenant_id(t, 'activation')}'"
                f" AND first_active_date < DATE'{(d - reopen).isoformat()}')"
                for t, d in sorted(first.items())
            )
            settled = existing.where(earlier).select("tenant_id", "account_id")
        horizon_rows = ctx.spark.createDataFrame(
            sorted((t, horizons[t]) for t in first), "tenant_id string, horizon date"
        )
        rows = marts.account_activation(
            activity,
            settled,
            horizon_rows,
            conf,
            ctx.settings.metrics.version_of(table.name),
            ctx.run_id,
        )
        publish(ctx, table, rows, ranges, "first_active_date")


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _retention(
    ctx: RunContext, first: Mapping[str, dt.date], horizons: Mapping[str, dt.date]
) -> None:
    table = GOLD_ACCOUNT_RETENTION_MONTHLY
    months: dict[str, set[dt.date]] = {}
    rows = []
    for t, d in first.items():
        month, horizon = _month(d), horizons[t]
        while month <= horizon:
            following = _month(month + dt.timedelta(days=31))
            months.setdefault(t, set()).add(month)
            rows.append((t, month, following - dt.timedelta(days=1) <= horizon))
            month = following
    with ctx.stage(table.name):
        cohorts = read_table(ctx.spark, ctx.path(GOLD_ACCOUNT_ACTIVATION.name)).where(
            F.col("tenant_id").isin(sorted(first))
        )
        spans = {t: set(date_range(min(ms), horizons[t])) for t, ms in months.items()}
        active = (
            read_parts(ctx, GOLD_ACCOUNT_DAILY.name, spans, "activity_date", ACCOUNT_DAILY_SCHEMA)
            .where((F.col("scope") == "direct") & (F.col("dau") > 0))
            .select(
                "tenant_id", "account_id", F.trunc("activity_date", "month").alias("activity_month")
            )
            .distinct()
        )
        grid = ctx.spark.createDataFrame(
            rows, "tenant_id string, activity_month date, month_complete boolean"
        )
        publish(
            ctx,
            table,
            marts.account_retention_monthly(
                cohorts.select("tenant_id", "account_id", "first_active_date"),
                active,
                grid,
                ctx.settings.metrics.version_of(table.name),
                ctx.run_id,
            ),
            months,
            "activity_month",
        )
