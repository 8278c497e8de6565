"""Bronze events of one delivery date → `silver.events`, its duplicates and its rejects.

Exactly once (SPEC §4.2), at a cost that follows the new data:

1. The delivery's lines are validated; rejects replace the delivery's partitions of
   `silver.events_rejected`.
2. The (tenant, event_date) partitions the delivery touches are its valid events' dates
   plus the dates an earlier ingest of the same delivery touched
   (`silver.delivery_event_dates`), so a re-delivery that drops or moves events restates
   them too.
3. Those partitions of `silver.events` and `silver.events_duplicates` (pinned to the
   versions read) lose their rows from this delivery and gain the new ones; then every
   (tenant_id, message_id) keeps one survivor, chosen by `rank_copies`, independent of the
   order deliveries were processed in. Losers go to `silver.events_duplicates`, so a later
   re-delivery can promote a copy again. The survivors are returned, not written: they
   gain person and account in `jobs.silver_people`, which publishes `silver.events`.

Copies of one message_id are expected to share their event_date (retries re-send the same
call); see docs/decisions.md for the limits of partition-scoped deduplication.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from jobs.context import RunContext
from jobs.delta_io import (
    partition_predicate,
    read_table,
    tenants_predicate,
)
from jobs.tables import (
    BRONZE,
    SILVER_DELIVERY_EVENT_DATES,
    SILVER_EVENT_DUPLICATES,
    SILVER_EVENTS,
    SILVER_EVENTS_REJECTED,
)
from jobs.transforms.events import (
    EventRules,
    parse_raw_events,
    rank_copies,
    rejected_rows,
    typed_events,
)


@dataclass(frozen=True)
class SilverEventsResult:
    """Counts per tenant for the delivery, read back from the published tables."""

    bronze_rows: dict[str, int]
    rejected: dict[str, dict[str, int]]  # tenant → reason → lines
    accepted: dict[str, int]
    duplicates: dict[str, int]
    touched: dict[str, tuple[dt.date, ...]]  # tenant → event dates rewritten
    ranked: DataFrame | None  # every copy of the touched partitions, `is_survivor` marked;
    # persisted: the caller publishes the survivors (jobs.silver_people) and unpersists


def _touched_dates(
    ctx: RunContext, valid: DataFrame, delivery_date: dt.date, tenants: Sequence[str]
) -> dict[str, set[dt.date]]:
    """New event dates of the delivery ∪ the dates its previous ingest wrote to."""
    touched: dict[str, set[dt.date]] = defaultdict(set)
    for row in valid.select("tenant_id", "event_date").distinct().collect():
        touched[row.tenant_id].add(row.event_date)
    manifest = read_table(ctx.spark, ctx.path(SILVER_DELIVERY_EVENT_DATES.name))
    if manifest is not None:
        previous = manifest.where(tenants_predicate(tenants)).where(
            F.col("delivery_date") == F.lit(delivery_date)
        )
        for row in previous.select("tenant_id", "event_date").collect():
            touched[row.tenant_id].add(row.event_date)
    return touched


def _existing_copies(
    ctx: RunContext, predicate: str, delivery_date: dt.date, columns: Sequence[str]
) -> DataFrame | None:
    """Rows of the touched partitions (survivors and duplicates) from other deliveries,
    with the columns of a freshly typed event (person and account are derived later)."""
    frames = []
    for spec in (SILVER_EVENTS, SILVER_EVENT_DUPLICATES):
        table = read_table(ctx.spark, ctx.path(spec.name))
        if table is not None:
            frames.append(
                table.where(predicate)
                .where(F.col("delivery_date") != F.lit(delivery_date))
                .select(*columns)
            )
    if not frames:
        return None
    return frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])


def _profile_counts(ctx: RunContext, by_reason: Sequence[Row]) -> dict[str, tuple[int, int]]:
    """Registered tenant → (event lines of the delivery, rejected lines), for the gate.
    Unregistered tenants are reported as rejects (`unknown_tenant`), not gated."""
    registered = set(ctx.settings.tenants.ids())
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in by_reason:
        if row.tenant_id in registered:
            counts[row.tenant_id][0] += int(row["count"])
            if row.reject_reason is not None:
                counts[row.tenant_id][1] += int(row["count"])
    return {t: (landed, rejected) for t, (landed, rejected) in counts.items()}


def build(ctx: RunContext, delivery_date: dt.date, tenants: Sequence[str]) -> SilverEventsResult:
    """Publish silver events, duplicates and rejects for one delivery date of `tenants`."""
    spark = ctx.spark
    rules = EventRules.from_settings(ctx.settings)
    bronze = read_table(spark, ctx.path(BRONZE["events"].name))
    if bronze is None or not tenants:
        return SilverEventsResult({}, {}, {}, {}, {}, None)
    delivery = bronze.where(tenants_predicate(tenants)).where(
        F.col("delivery_date") == F.lit(delivery_date)
    )
    parsed = delivery.transform(parse_raw_events(rules)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        with ctx.stage("silver.parse"):
            by_reason = parsed.groupBy("tenant_id", "reject_reason").count().collect()
        ctx.gates.check_delivery(delivery_date, _profile_counts(ctx, by_reason))
        with ctx.stage("silver.rejects"):
            ctx.gates.publish(
                SILVER_EVENTS_REJECTED,
                rejected_rows(parsed),
                partition_predicate({t: [delivery_date] for t in tenants}, "delivery_date"),
            )
        valid = parsed.where(F.col("reject_reason").isNull()).transform(
            typed_events(rules, ctx.pii_key)
        )
        valid = valid.persist(StorageLevel.MEMORY_AND_DISK)
        with ctx.stage("silver.touched"):
            touched = _touched_dates(ctx, valid, delivery_date, tenants)
        predicate = partition_predicate(touched, "event_date")

        existing = _existing_copies(ctx, predicate, delivery_date, valid.columns)
        copies = valid if existing is None else existing.unionByName(valid)
        ranked = copies.transform(rank_copies).persist(StorageLevel.MEMORY_AND_DISK)
        columns = valid.columns
        with ctx.stage(SILVER_EVENT_DUPLICATES.name):
            ctx.gates.publish(
                SILVER_EVENT_DUPLICATES, ranked.where("NOT is_survivor").select(columns), predicate
            )
        with ctx.stage("silver.counts"):
            outcome = (
                ranked.where(F.col("delivery_date") == F.lit(delivery_date))
                .groupBy("tenant_id", "is_survivor")
                .count()
                .collect()
            )
        manifest = valid.groupBy("tenant_id", "delivery_date", "event_date").agg(
            F.count(F.lit(1)).alias("valid_events")
        )
        with ctx.stage("silver.manifest"):
            ctx.gates.publish(
                SILVER_DELIVERY_EVENT_DATES,
                manifest,
                f"({tenants_predicate(tenants)}) AND delivery_date = DATE'{delivery_date}'",
            )
        valid.unpersist()
    finally:
        parsed.unpersist()

    bronze_rows: dict[str, int] = defaultdict(int)
    rejected: dict[str, dict[str, int]] = defaultdict(dict)
    for row in by_reason:
        bronze_rows[row.tenant_id] += int(row["count"])
        if row.reject_reason is not None:
            rejected[row.tenant_id][row.reject_reason] = int(row["count"])
    accepted = {r.tenant_id: int(r["count"]) for r in outcome if r.is_survivor}
    duplicates = {r.tenant_id: int(r["count"]) for r in outcome if not r.is_survivor}
    ctx.log.info(
        "silver.events: %s tenants, %s partitions rewritten for delivery %s",
        len(touched),
        sum(len(d) for d in touched.values()),
        delivery_date,
    )
    return SilverEventsResult(
        dict(bronze_rows),
        dict(rejected),
        accepted,
        duplicates,
        {t: tuple(sorted(d)) for t, d in touched.items()},
        ranked,
    )
