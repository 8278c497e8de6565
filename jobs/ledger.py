"""The run ledger: `ops.pipeline_runs`, `ops.delivery_stats`, `ops.quality_results` and
`ops.rejected_files` (append-only Delta tables).

A run appends a `started` row when it begins and a `succeeded` or `failed` row when it
ends. A run whose driver died in between is given an `interrupted` row by the next run
(`mark_interrupted`). The final row carries the run's summary:
stage seconds, delivery counts, restated partitions, gate outcome and the Data Docs link.
Only counts travel to the driver.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.context import RunContext
from jobs.delta_io import append, read_table
from jobs.tables import (
    OPS_DELIVERY_STATS,
    OPS_PIPELINE_RUNS,
    OPS_QUALITY_RESULTS,
    OPS_REJECTED_FILES,
    OPS_RESTATEMENTS,
)

RUN_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("command", T.StringType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("delivery_dates", T.ArrayType(T.DateType()), True),
        T.StructField("tenants", T.ArrayType(T.StringType()), True),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("recorded_at", T.TimestampType(), False),
        T.StructField("duration_s", T.DoubleType(), True),
        T.StructField("error", T.StringType(), True),
        T.StructField("stage_seconds", T.MapType(T.StringType(), T.DoubleType()), True),
        T.StructField("stage_rows", T.MapType(T.StringType(), T.LongType()), True),
        T.StructField("restated_partitions", T.LongType(), True),
        T.StructField("gate_seconds", T.DoubleType(), True),
        T.StructField("gate_failures", T.ArrayType(T.StringType()), True),
        T.StructField("gate_warnings", T.LongType(), True),
        T.StructField("blocked_tenants", T.ArrayType(T.StringType()), True),
        T.StructField("data_docs", T.StringType(), True),
        T.StructField("host", T.StringType(), True),  # where the run's driver ran
        T.StructField("pid", T.LongType(), True),
        # Spark jobs per pipeline stage ("outside stages": the run's other jobs), and the run's
        # jobs, stages, tasks and shuffle bytes in all (`RunContext.spark_work`)
        T.StructField("stage_spark_jobs", T.MapType(T.StringType(), T.LongType()), True),
        T.StructField("spark_work", T.MapType(T.StringType(), T.LongType()), True),
    ]
)
STALE_RUN_HOURS = 24  # a run of another host with no outcome after this long is interrupted
_ACTIVE_RUNS: set[str] = set()  # runs of this process that have started and not ended


@dataclass(frozen=True)
class RunSummary:
    """What the final ledger row of a run says beyond its status."""

    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_rows: dict[str, int] = field(default_factory=dict)  # landed, accepted, rejected, …
    restated_partitions: int = 0
    gate_seconds: float = 0.0
    gate_failures: tuple[str, ...] = ()
    gate_warnings: int = 0
    blocked_tenants: tuple[str, ...] = ()
    data_docs: str | None = None
    stage_spark_jobs: dict[str, int] = field(default_factory=dict)
    spark_work: dict[str, int] = field(default_factory=dict)


QUALITY_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("delivery_date", T.DateType(), True),
        T.StructField("table_name", T.StringType(), False),
        T.StructField("rule", T.StringType(), False),
        T.StructField("expectation", T.StringType(), False),
        T.StructField("severity", T.StringType(), False),
        T.StructField("tenant_id", T.StringType(), True),  # NULL: the whole slice
        T.StructField("success", T.BooleanType(), False),
        T.StructField("observed", T.StringType(), True),
        T.StructField("recorded_at", T.TimestampType(), False),
    ]
)

STATS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("tenant_id", T.StringType(), False),
        T.StructField("delivery_date", T.DateType(), False),
        T.StructField("is_registered", T.BooleanType(), False),
        T.StructField("files", T.LongType(), False),
        T.StructField("landed_lines", T.LongType(), False),
        T.StructField("blank_lines", T.LongType(), False),
        T.StructField("bronze_rows", T.LongType(), False),
        T.StructField("erased_lines", T.LongType(), True),  # of persons erased on request
        T.StructField("accepted", T.LongType(), False),
        T.StructField("duplicates", T.LongType(), False),
        T.StructField("rejected", T.LongType(), False),
        T.StructField("rejected_by_reason", T.MapType(T.StringType(), T.LongType()), False),
        T.StructField("is_conserved", T.BooleanType(), False),
        T.StructField("recorded_at", T.TimestampType(), False),
    ]
)


@dataclass(frozen=True)
class DeliveryStats:
    """Conservation of one tenant's event delivery: landed = bronze + erased, and
    bronze = accepted + rejected + duplicates."""

    tenant_id: str
    delivery_date: dt.date
    is_registered: bool
    files: int
    landed_lines: int
    blank_lines: int
    bronze_rows: int
    accepted: int
    duplicates: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    erased_lines: int = 0  # old lines of persons erased on request, left out of bronze

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def is_conserved(self) -> bool:
        return (
            self.landed_lines == self.bronze_rows + self.erased_lines
            and self.bronze_rows == self.accepted + self.rejected + self.duplicates
        )


def utc_now() -> dt.datetime:
    """Naive UTC, as Spark TIMESTAMP columns of the ledger store it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_row(**values: Any) -> tuple[Any, ...]:
    """A row of `ops.pipeline_runs` in RUN_SCHEMA's order, by column name (NULL where not
    given), so that a column added to the ledger cannot shift a writer's values."""
    unknown = set(values) - set(RUN_SCHEMA.names)
    if unknown:
        raise KeyError(f"ops.pipeline_runs has no column {', '.join(sorted(unknown))}")
    return tuple(values.get(name) for name in RUN_SCHEMA.names)


def record_run(
    ctx: RunContext,
    status: str,
    dates: Sequence[dt.date],
    tenants: Sequence[str] | None,
    error: str | None = None,
    summary: RunSummary | None = None,
) -> None:
    now = utc_now()
    summary = summary or RunSummary()
    started = ctx.started_at.replace(tzinfo=None)
    row = run_row(
        run_id=ctx.run_id,
        command=ctx.command,
        status=status,
        delivery_dates=list(dates),
        tenants=list(tenants) if tenants is not None else None,
        started_at=started,
        recorded_at=now,
        duration_s=None if status == "started" else (now - started).total_seconds(),
        error=error,
        stage_seconds=summary.stage_seconds or None,
        stage_rows=summary.stage_rows or None,
        restated_partitions=summary.restated_partitions,
        gate_seconds=summary.gate_seconds,
        gate_failures=list(summary.gate_failures),
        gate_warnings=summary.gate_warnings,
        blocked_tenants=list(summary.blocked_tenants),
        data_docs=summary.data_docs,
        host=socket.gethostname(),
        pid=os.getpid(),
        stage_spark_jobs=summary.stage_spark_jobs or None,
        spark_work=summary.spark_work or None,
    )
    df = ctx.spark.createDataFrame([row], RUN_SCHEMA)
    append(df, ctx.path(OPS_PIPELINE_RUNS.name))
    if status == "started":
        _ACTIVE_RUNS.add(ctx.run_id)
    else:
        _ACTIVE_RUNS.discard(ctx.run_id)


def _is_alive(host: str | None, pid: int | None, started_at: dt.datetime, run_id: str,
              now: dt.datetime) -> bool:  # fmt: skip
    """Whether the driver of a run that has not ended may still be running it."""
    if host != socket.gethostname() or pid is None:  # another machine: only time can tell
        return now - started_at < dt.timedelta(hours=STALE_RUN_HOURS)
    if pid == os.getpid():
        return run_id in _ACTIVE_RUNS
    if not os.path.isdir("/proc"):  # no process start times here: is the pid in use at all?
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:  # a process with that pid, started before the run (not a later one reusing it)
        born = dt.datetime.fromtimestamp(os.stat(f"/proc/{pid}").st_ctime, dt.UTC)
    except OSError:
        return False
    return born.replace(tzinfo=None) <= started_at + dt.timedelta(minutes=1)


def open_runs(spark: SparkSession, ledger_path: str) -> list[dict[str, Any]]:
    """The last ledger row of every run that has started and has no outcome yet (running,
    or its driver died): runs, not events, reach the driver."""
    ledger = read_table(spark, ledger_path)
    if ledger is None:
        return []
    last = ledger.groupBy("run_id").agg(
        F.max_by(F.struct(*ledger.columns), "recorded_at").alias("r")
    )
    return [r.asDict() for r in last.where("r.status = 'started'").select("r.*").collect()]


def mark_interrupted(ctx: RunContext) -> list[str]:
    """Give runs whose driver died without an outcome (killed, out of memory, machine lost)
    the status `interrupted`; → their ids. A run of this host is interrupted when its
    process is gone; a run of another host, when it has had no outcome for
    STALE_RUN_HOURS. Its partial writes need no repair: every table is published per
    (tenant, date) in single commits, and the next run recomputes what it would have."""
    now = utc_now()
    dead = [
        r
        for r in open_runs(ctx.spark, ctx.path(OPS_PIPELINE_RUNS.name))
        if r["run_id"] != ctx.run_id
        and not _is_alive(r.get("host"), r.get("pid"), r["started_at"], r["run_id"], now)
    ]
    if not dead:
        return []
    found = f"the run's driver ended without an outcome; found by {ctx.run_id}"
    rows = [
        run_row(run_id=r["run_id"], command=r["command"], status="interrupted",
                delivery_dates=r["delivery_dates"], tenants=r["tenants"],
                started_at=r["started_at"], recorded_at=now, error=found,
                host=r.get("host"), pid=r.get("pid"))
        for r in dead
    ]  # fmt: skip
    append(ctx.spark.createDataFrame(rows, RUN_SCHEMA), ctx.path(OPS_PIPELINE_RUNS.name))
    for r in dead:
        ctx.log.warning("run %s (%s, started %s) was interrupted: marked in ops.pipeline_runs",
                        r["run_id"], r["command"], r["started_at"])  # fmt: skip
    return [r["run_id"] for r in dead]


def record_delivery_stats(ctx: RunContext, stats: Sequence[DeliveryStats]) -> None:
    if not stats:
        return
    now = utc_now()
    rows = []
    for s in stats:
        d = asdict(s)
        rows.append(
            (
                ctx.run_id,
                s.tenant_id,
                s.delivery_date,
                s.is_registered,
                s.files,
                s.landed_lines,
                s.blank_lines,
                s.bronze_rows,
                s.erased_lines,
                s.accepted,
                s.duplicates,
                s.rejected,
                d["rejected_by_reason"],
                s.is_conserved,
                now,
            )
        )
    append(ctx.spark.createDataFrame(rows, STATS_SCHEMA), ctx.path(OPS_DELIVERY_STATS.name))


def record_quality(ctx: RunContext, outcomes: Sequence[Any]) -> None:
    """Append gate outcomes (`jobs.quality.Outcome`) to `ops.quality_results`."""
    if not outcomes:
        return
    now = utc_now()
    rows = [
        (ctx.run_id, o.delivery_date, o.table, o.rule, o.expectation, o.severity, o.tenant_id,
         o.success, o.observed, now)
        for o in outcomes
    ]  # fmt: skip
    append(ctx.spark.createDataFrame(rows, QUALITY_SCHEMA), ctx.path(OPS_QUALITY_RESULTS.name))


REJECTED_FILES_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("tenant_id", T.StringType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("delivery_date", T.DateType(), False),
        T.StructField("file", T.StringType(), False),
        T.StructField("reason", T.StringType(), False),
        T.StructField("recorded_at", T.TimestampType(), False),
    ]
)


def record_rejected_files(
    ctx: RunContext, source: str, delivery_date: dt.date, rejected: Sequence[tuple[str, str, str]]
) -> None:
    """Append landed files left out of a delivery, as (tenant, file, reason), to
    `ops.rejected_files`."""
    now = utc_now()
    rows = [(ctx.run_id, tenant, source, delivery_date, file, reason, now)
            for tenant, file, reason in rejected]  # fmt: skip
    append(
        ctx.spark.createDataFrame(rows, REJECTED_FILES_SCHEMA), ctx.path(OPS_REJECTED_FILES.name)
    )


RESTATEMENT_SCHEMA = T.StructType(
    [
        T.StructField("tenant_id", T.StringType(), False),
        T.StructField("event_date", T.DateType(), False),
        T.StructField("reasons", T.ArrayType(T.StringType(), False), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("delivery_date", T.DateType(), False),
        T.StructField("recorded_at", T.TimestampType(), False),
    ]
)


# every reason a partition is restated for (`record_restatements`); a rebuild uses them all
RESTATEMENT_REASONS = frozenset({"events", "identity", "attribution", "hierarchy",
                                 "subscriptions", "accounts", "tickets"})  # fmt: skip


def record_restatements(
    ctx: RunContext,
    delivery_date: dt.date,
    restated: Mapping[str, Mapping[dt.date, Iterable[str]]],
) -> None:
    """Append the (tenant, date) partitions this run changed in ways gold depends on.

    Reasons: `events` (new, moved or removed events), `identity` (persons merged or split),
    `attribution` (group calls changed), `hierarchy`, `subscriptions`, `accounts` (tier and
    other attributes), `tickets` (created dates of tickets added or changed). `jobs.gold.plan`
    says which gold partitions each reason recomputes.
    """
    now = utc_now()
    rows = [
        (tenant, day, sorted(reasons), ctx.run_id, delivery_date, now)
        for tenant, days in sorted(restated.items())
        for day, reasons in sorted(days.items())
    ]
    if rows:
        append(
            ctx.spark.createDataFrame(rows, RESTATEMENT_SCHEMA),
            ctx.path(OPS_RESTATEMENTS.name),
            OPS_RESTATEMENTS.partition_by,
        )
