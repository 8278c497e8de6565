"""Table maintenance: compaction of recent partitions, VACUUM, and bronze retention.

- `optimize`: bin-packing OPTIMIZE of every table's partitions dated within the last
  `orchestration.optimize_recent_days` (older partitions were compacted by earlier runs and
  are rarely rewritten). Daily runs replace a partition with one commit of few files, but
  late data and restatements add more; compaction brings each partition back to ~1 file.
- `vacuum`: VACUUM with `orchestration.vacuum_retention_hours` (at least Delta's safe 168):
  files no longer referenced by a version younger than that are deleted, so time travel
  reaches back that far and no further.
- `retention`: bronze rows older than `bronze_retention_days` (per tenant, or `default`) are
  deleted (one commit per table, predicate on tenant and delivery date). Silver and gold
  keep their history; a `--from-layer silver` rebuild reaches back only as far as bronze.

Each step is one Delta operation per table: readers see the table before or after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from jobs import tables
from jobs.config import Settings
from jobs.delta_io import table_exists
from jobs.spark import conf_for_the_call
from jobs.validation import require_tenant_id

STEPS = ("optimize", "vacuum", "retention")


def all_tables() -> list[tables.TableSpec]:
    specs = [s for s in vars(tables).values() if isinstance(s, tables.TableSpec)]
    return sorted([*tables.BRONZE.values(), *specs], key=lambda s: s.name)


LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def vacuum(spark, path: str, retain_hours: float) -> None:
    """VACUUM one table. Its file listing is a Spark job of
    `parallelPartitionDiscovery.parallelism` tasks (10,000 by default): on a small table that
    costs ~20 s of task scheduling (2.5 s with 2 tasks, tests/test_erasure.py's tables), so
    the listing gets as many tasks as the session has cores, for this call only. Below
    Delta's 168-hour safety check the check is lifted for this call only (`lakehouse
    forget`; the maintenance step never goes below 168)."""
    from delta.tables import DeltaTable

    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    settings = {LISTING_PARALLELISM: str(max(2, spark.sparkContext.defaultParallelism))}
    if retain_hours < 168:
        settings[check] = "false"
    with conf_for_the_call(spark, settings):
        DeltaTable.forPath(spark, path).vacuum(retain_hours)


def _date_column(spec: tables.TableSpec) -> str | None:
    dated = [c for c in spec.partition_by if c != "tenant_id"]
    return dated[0] if dated else None


def run_step(
    settings: Settings,
    step: str,
    today: dt.date | None = None,
    only: Sequence[str] | None = None,
) -> str:
    """Run one maintenance step over every table of the warehouse (or the tables named in
    `only`); → a one-line summary."""
    if step not in STEPS:
        raise ValueError(f"step: {step!r} is not one of {', '.join(STEPS)}")
    from delta.tables import DeltaTable
    from pyspark.sql import SparkSession

    from jobs.spark import build_session

    spark = SparkSession.getActiveSession() or build_session(settings, f"lakehouse {step}")
    conf = settings.pipeline.orchestration
    today = today or dt.datetime.now(dt.UTC).date()
    done = []
    for spec in all_tables():
        if only is not None and spec.name not in only:
            continue
        path = settings.table_path(spec.name)
        if not table_exists(spark, path):
            continue
        table = DeltaTable.forPath(spark, path)
        column = _date_column(spec)
        if step == "optimize":
            since = today - dt.timedelta(days=conf.optimize_recent_days)
            builder = table.optimize()
            if column is not None and column.endswith("_date"):
                builder = builder.where(f"{column} >= DATE'{since.isoformat()}'")
            metrics = builder.executeCompaction().first().metrics
            done.append(f"{spec.name} -{metrics.numFilesRemoved}+{metrics.numFilesAdded}")
        elif step == "vacuum":
            vacuum(spark, path, conf.vacuum_retention_hours)
            done.append(spec.name)
        elif spec.name.startswith("bronze."):
            table.delete(retention_predicate(conf.bronze_retention_days, today))
            done.append(spec.name)
    return f"{step}: {len(done)} tables ({', '.join(done)})"


def retention_predicate(days_by_tenant: dict[str, int], today: dt.date) -> str:
    """Bronze rows past their tenant's retention: `default` covers unlisted tenants."""

    def older_than(days: int) -> str:
        return f"delivery_date < DATE'{(today - dt.timedelta(days=days)).isoformat()}'"

    named = {require_tenant_id(t, "bronze_retention_days"): d
             for t, d in days_by_tenant.items() if t != "default"}  # fmt: skip
    clauses = [f"(tenant_id = '{t}' AND {older_than(d)})" for t, d in sorted(named.items())]
    others = ", ".join(f"'{t}'" for t in sorted(named))
    unlisted = f"tenant_id NOT IN ({others}) AND " if others else ""
    clauses.append(f"({unlisted}{older_than(days_by_tenant['default'])})")
    return " OR ".join(clauses)
