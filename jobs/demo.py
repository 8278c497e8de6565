"""`make demo`: generate the small preset, run the pipeline day by day, show what landed.

Uses the embedded defaults (local Spark, `<project>/landing`, `<project>/warehouse`), so
`lakehouse sql "..."` works on the result afterwards with no flags.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from jobs.config import load_settings
from jobs.ledger import DeliveryStats

console = Console()


def summarize(stats: list[DeliveryStats]) -> Table:
    """Per tenant over all deliveries: landed, accepted, deduplicated, rejected by reason."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    registered: dict[str, bool] = {}
    for s in stats:
        t = totals[s.tenant_id]
        registered[s.tenant_id] = s.is_registered
        for name in ("landed_lines", "accepted", "duplicates", "rejected"):
            t[name] += getattr(s, name)
        for reason, n in s.rejected_by_reason.items():
            t[f"reason:{reason}"] += n
    table = Table(title="Events per tenant, all deliveries", title_justify="left")
    text_columns = ("tenant", "rejected by reason")
    for col in ("tenant", "landed", "accepted", "deduplicated", "rejected", "rejected by reason"):
        table.add_column(col, justify="left" if col in text_columns else "right")
    for tenant in sorted(totals):
        t = totals[tenant]
        reasons = ", ".join(
            f"{k.removeprefix('reason:')} {v}"
            for k, v in sorted(t.items())
            if k.startswith("reason:")
        )
        label = tenant if registered[tenant] else f"{tenant} (not registered)"
        table.add_row(label, f"{t['landed_lines']:,}", f"{t['accepted']:,}",
                      f"{t['duplicates']:,}", f"{t['rejected']:,}", reasons)  # fmt: skip
    return table


def people_table(spark, settings) -> Table:
    """Per tenant: persons, identifiers, sessions, share of activity attributed to accounts."""
    from pyspark.sql import functions as F

    def load(name: str):
        return spark.read.format("delta").load(settings.table_path(name))

    activity = (
        load("silver.events")
        .where("is_activity")
        .groupBy("tenant_id")
        .agg(
            F.countDistinct("person_id").alias("persons"),
            F.count(F.lit(1)).alias("events"),
            F.avg(F.col("account_id").isNotNull().cast("double")).alias("attributed"),
        )
    )
    ids = load("silver.identity_map").groupBy("tenant_id").agg(F.count(F.lit(1)).alias("ids"))
    sessions = (
        load("silver.sessions")
        .groupBy("tenant_id")
        .agg(
            F.count(F.lit(1)).alias("sessions"),
            F.expr("percentile(duration_seconds, 0.5)").alias("p50"),
        )
    )
    rows = activity.join(ids, "tenant_id", "left").join(sessions, "tenant_id", "left")
    table = Table(title="People per tenant (silver)", title_justify="left")
    for col in ("tenant", "active persons", "identifiers", "activity events", "attributed",
                "sessions", "median session"):  # fmt: skip
        table.add_column(col, justify="left" if col == "tenant" else "right")
    for r in rows.orderBy("tenant_id").collect():
        table.add_row(r.tenant_id, f"{r.persons:,}", f"{r.ids or 0:,}", f"{r.events:,}",
                      f"{r.attributed:.1%}", f"{r.sessions or 0:,}",
                      f"{(r.p50 or 0) / 60:.1f} min")  # fmt: skip
    return table


def _latest_rows(spark, settings, table: str, as_of: dt.date):
    """`table`'s rows on each tenant's latest date up to `as_of` (the last delivery: later
    dates hold only early-stamped events)."""
    from pyspark.sql import functions as F

    rows = spark.read.format("delta").load(settings.table_path(table))
    latest = (
        rows.where(F.col("activity_date") <= as_of)
        .groupBy("tenant_id")
        .agg(F.max("activity_date").alias("activity_date"))
    )
    return rows.join(latest, ["tenant_id", "activity_date"])


def accounts_table(spark, settings, as_of: dt.date, limit: int = 3) -> Table:
    """Per tenant, on its latest gold date: the largest accounts by rollup mau_28d."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ranked = (
        _latest_rows(spark, settings, "gold.account_daily", as_of)
        .where(F.col("scope") == "rollup")
        .withColumn(
            "rank",
            F.row_number().over(
                Window.partitionBy("tenant_id").orderBy(F.desc("mau_28d"), "account_id")
            ),
        )
        .where(F.col("rank") <= limit)
    )
    table = Table(
        title=f"Top {limit} accounts per tenant by 28-day actives (gold, rollup scope)",
        title_justify="left",
    )
    for col in ("tenant", "date", "account", "dau", "wau_7d", "mau_28d", "stickiness",
                "seats", "seat use"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("tenant", "date", "account") else "right")
    for r in ranked.orderBy("tenant_id", "rank").collect():
        seats = "—" if r.seats is None else f"{r.seats:,}"
        use = "—" if r.seat_utilization is None else f"{r.seat_utilization:.0%}"
        counts = (f"{r.dau:,}", f"{r.wau_7d:,}", f"{r.mau_28d:,}", f"{r.stickiness:.2f}")
        table.add_row(r.tenant_id, r.activity_date.isoformat(), r.account_id, *counts, seats, use)
    return table


def at_risk_table(spark, settings, as_of: dt.date, limit: int = 10) -> Table:
    """The lowest health scores on each tenant's latest gold date up to `as_of`, with the
    two components that cost each account most (what a customer-success manager acts on)."""
    from pyspark.sql import functions as F

    worst = (
        _latest_rows(spark, settings, "gold.account_health_daily", as_of)
        .where((F.col("scope") == "direct") & (F.col("band") != "healthy"))
        .orderBy("health_score", "tenant_id", "account_id")
        .limit(limit)
    )
    table = Table(
        title=f"Top {limit} at-risk accounts (gold.account_health_daily, direct scope)",
        title_justify="left",
    )
    for col in ("tenant", "date", "account", "tier", "score", "band", "weakest drivers"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for r in worst.collect():
        table.add_row(
            r.tenant_id,
            r.activity_date.isoformat(),
            r.account_id,
            r.tier,
            f"{r.health_score:.1f}",
            r.band,
            ", ".join(r.top_negative_drivers),
        )
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from jobs.generate import DEFAULT_START, generate_landing
    from jobs.pipeline import execute

    settings = load_settings()
    landing = Path(settings.landing)
    started = time.perf_counter()
    console.rule(f"1. generate preset {args.preset!r}, {args.days} days → {landing}")
    summary = generate_landing(args.preset, args.days, args.seed, landing, DEFAULT_START)
    console.print(summary)
    dates = [DEFAULT_START + dt.timedelta(days=i) for i in range(args.days)]

    console.rule(f"2. run the pipeline for {dates[0]} .. {dates[-1]} → {settings.warehouse}")
    result = execute(settings, "demo", dates)
    if result.status != "succeeded":
        console.print(f"[bold red]demo run failed:[/] {result.error}")
        return 1

    console.rule("3. what landed and what the pipeline kept")
    console.print(summarize(list(result.stats)))
    from jobs.spark import build_session

    spark = build_session(settings, app_name="lakehouse demo")
    console.print(people_table(spark, settings))
    console.rule("4. gold: account rollups")
    console.print(accounts_table(spark, settings, dates[-1]))
    console.print(at_risk_table(spark, settings, dates[-1]))
    console.print(
        f"run {result.run_id} finished in {time.perf_counter() - started:.0f}s. Explore with:\n"
        '  .venv/bin/lakehouse sql "SELECT activity_date, account_id, dau, wau_7d, mau_28d '
        "FROM gold.account_daily WHERE tenant_id = 'acme' AND scope = 'rollup' "
        'ORDER BY activity_date DESC, mau_28d DESC LIMIT 20"'
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
