"""The tables the pipeline writes: name (`layer.name`), partitioning and grain.

A table `layer.name` lives at `<warehouse>/<layer>/<name>` (SPEC §10).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_by: tuple[str, ...]
    grain: str


SOURCES = ("events", "accounts", "subscriptions", "tickets")

BRONZE = {
    source: TableSpec(
        f"bronze.{source}",
        ("tenant_id", "delivery_date"),
        f"one row per non-blank line landed in {source}/, raw text kept, with lineage",
    )
    for source in SOURCES
}

SILVER_EVENTS = TableSpec(
    "silver.events",
    ("tenant_id", "event_date"),
    "one row per surviving event (tenant_id, message_id), exactly once across deliveries",
)
SILVER_EVENT_DUPLICATES = TableSpec(
    "silver.events_duplicates",
    ("tenant_id", "event_date"),
    "one row per valid event line that lost to another copy of its (tenant_id, message_id)",
)
SILVER_EVENTS_REJECTED = TableSpec(
    "silver.events_rejected",
    ("tenant_id", "delivery_date"),
    "one row per rejected event line, with its reason code and raw text",
)
SILVER_DELIVERY_EVENT_DATES = TableSpec(
    "silver.delivery_event_dates",
    ("tenant_id",),
    "one row per (tenant_id, delivery_date, event_date) holding valid events of that delivery",
)
OPS_PIPELINE_RUNS = TableSpec(
    "ops.pipeline_runs", (), "one row per run and status change (started, succeeded, failed)"
)
OPS_DELIVERY_STATS = TableSpec(
    "ops.delivery_stats",
    (),
    "one row per run, tenant and delivery_date: landed, accepted, rejected by reason, duplicates",
)
