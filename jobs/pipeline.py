"""One run of the pipeline: bronze → silver → gold for one or more delivery dates.

`execute` is the entry point shared by the CLI and the Airflow tasks: it builds the run
context, writes the ledger, runs the stages and turns failures into a non-zero status.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import bronze, gold, marts, silver_accounts, silver_events, silver_people
from jobs.config import Settings
from jobs.context import RunContext, configure_logging, new_run_id
from jobs.delta_io import read_table, tenants_predicate
from jobs.ledger import (
    DeliveryStats,
    RunSummary,
    record_delivery_stats,
    record_quality,
    record_restatements,
    record_run,
)
from jobs.pii import load_pii_key
from jobs.spark import build_session
from jobs.tables import SILVER_DELIVERY_EVENT_DATES
from jobs.validation import InputError


class ConservationError(RuntimeError):
    """Landed lines ≠ accepted + rejected + duplicates for some tenant-delivery."""


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str
    stats: tuple[DeliveryStats, ...]
    error: str | None = None
    data_docs: str | None = None  # index.html of the Great Expectations Data Docs


def _horizons(ctx: RunContext, tenants: Sequence[str]) -> dict[str, dt.date]:
    """Per tenant: the later of its latest processed delivery_date and latest event_date."""
    manifest = read_table(ctx.spark, ctx.path(SILVER_DELIVERY_EVENT_DATES.name))
    if manifest is None or not tenants:
        return {}
    rows = (
        manifest.where(tenants_predicate(tenants))
        .groupBy("tenant_id")
        .agg(F.greatest(F.max("delivery_date"), F.max("event_date")).alias("horizon"))
        .collect()
    )
    return {r.tenant_id: r.horizon for r in rows}


LAYERS = ("silver", "gold")  # what `through` may name: the last layer a run publishes


def run_delivery(
    ctx: RunContext,
    delivery_date: dt.date,
    tenants: Sequence[str] | None,
    through: str = "gold",
) -> list[DeliveryStats]:
    """Process one delivery date (all tenants in landing, or only `tenants`).

    `through="silver"` stops after silver: its restatements stay pending in
    `ops.restatements` and the next run that reaches gold recomputes them."""
    ctx.gates.delivery_date = delivery_date
    landed = bronze.ingest(ctx, delivery_date, tenants)
    event_tenants = landed.tenants["events"]
    silver = silver_events.build(ctx, delivery_date, event_tenants)
    registered = set(ctx.settings.tenants.ids())
    try:
        people = silver_people.build(
            ctx, delivery_date, [t for t in event_tenants if t in registered],
            silver.ranked, silver.touched,
        )  # fmt: skip
    finally:
        if silver.ranked is not None:
            silver.ranked.unpersist()
    landed_tenants = sorted({t for ts in landed.tenants.values() for t in ts} & registered)
    horizons = _horizons(ctx, landed_tenants)
    accounts = silver_accounts.build(
        ctx, delivery_date, landed_tenants, people.group_changes, horizons
    )
    restated: dict[str, dict[dt.date, set[str]]] = defaultdict(lambda: defaultdict(set))
    for part in (people.restated, accounts.restated):
        for tenant, days in part.items():
            if tenant in ctx.gates.blocked:
                continue
            for day, reasons in days.items():
                restated[tenant][day] |= set(reasons)
    record_restatements(ctx, delivery_date, restated)
    ctx.restated_partitions += sum(len(days) for days in restated.values())
    horizons = {t: h for t, h in horizons.items() if t not in ctx.gates.blocked}
    if through == "gold":
        todo = gold.build(ctx, horizons)
        marts.build(ctx, todo, horizons)
        gold.record_progress(ctx, horizons, todo)
    stats = [
        DeliveryStats(
            tenant_id=t,
            delivery_date=delivery_date,
            is_registered=t in registered,
            files=landed.files.get(("events", t), 0),
            landed_lines=landed.landed_lines.get(("events", t), 0),
            blank_lines=landed.blank_lines.get(("events", t), 0),
            bronze_rows=silver.bronze_rows.get(t, 0),
            accepted=silver.accepted.get(t, 0),
            duplicates=silver.duplicates.get(t, 0),
            rejected_by_reason=dict(sorted(silver.rejected.get(t, {}).items())),
        )
        for t in event_tenants
    ]
    record_delivery_stats(ctx, stats)
    record_quality(ctx, ctx.gates.unrecorded())
    broken = [s for s in stats if not s.is_conserved]
    if broken:
        detail = "; ".join(
            f"{s.tenant_id}/{s.delivery_date}: landed {s.landed_lines}, bronze {s.bronze_rows}, "
            f"accepted {s.accepted} + rejected {s.rejected} + duplicates {s.duplicates}"
            for s in broken
        )
        raise ConservationError(f"conservation violated: {detail}")
    return stats


def _log_delivery_cost(
    ctx: RunContext,
    day: dt.date,
    seconds: float,
    timings_before: dict[str, float],
    jobs_before: dict[str, int],
) -> None:
    """One INFO line per delivery: wall time, Spark jobs, and the stages that cost most."""
    spent = {k: v - timings_before.get(k, 0.0) for k, v in ctx.timings.items()}
    jobs = {k: v - jobs_before.get(k, 0) for k, v in ctx.spark_jobs.items()}
    top = sorted(spent, key=spent.__getitem__, reverse=True)[:6]
    ctx.log.info(
        "delivery %s took %.1fs in %d Spark jobs; top stages: %s",
        day.isoformat(), seconds, sum(jobs.values()),
        ", ".join(f"{k} {spent[k]:.1f}s/{jobs.get(k, 0)} jobs" for k in top),
    )  # fmt: skip


def execute(
    settings: Settings,
    command: str,
    dates: Sequence[dt.date],
    tenants: Sequence[str] | None = None,
    spark: SparkSession | None = None,
    through: str = "gold",
) -> RunResult:
    """Run `dates` in order inside one Spark session and one ledgered run.

    `spark` is for callers that already hold a session (tests, notebooks); otherwise one is
    built from `settings`. `through` is the last layer published (see `run_delivery`).
    """
    if through not in LAYERS:
        raise InputError(f"--through: {through!r} is not one of {', '.join(LAYERS)}")
    run_id = new_run_id()
    log = configure_logging(run_id)
    pii_key, key_origin = load_pii_key(settings)
    spark = spark or build_session(settings, app_name=f"lakehouse {command}")
    ctx = RunContext(spark, settings, run_id, command, pii_key, log=log)
    log.info("%s: dates %s, tenants %s", command, [d.isoformat() for d in dates], tenants or "all")
    log.info("warehouse %s, landing %s; pseudonym key from %s",
             settings.warehouse, settings.landing, key_origin)  # fmt: skip
    record_run(ctx, "started", dates, tenants)
    all_stats: list[DeliveryStats] = []
    try:
        for day in dates:
            before_t, before_j = dict(ctx.timings), dict(ctx.spark_jobs)
            started = time.perf_counter()
            all_stats += run_delivery(ctx, day, tenants, through)
            _log_delivery_cost(ctx, day, time.perf_counter() - started, before_t, before_j)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        log.error("run failed: %s", message)
        log.debug(traceback.format_exc())
        record_quality(ctx, ctx.gates.unrecorded())
        record_run(ctx, "failed", dates, tenants, message[:4000], _summary(ctx, all_stats))
        return RunResult(run_id, "failed", tuple(all_stats), message)
    docs = _data_docs(ctx)
    summary = _summary(ctx, all_stats, docs)
    failure = ctx.gates.failure()
    if failure is not None:
        message = f"{type(failure).__name__}: {failure}"
        log.error("run failed: %s", message)
        record_run(ctx, "failed", dates, tenants, message[:4000], summary)
        return RunResult(run_id, "failed", tuple(all_stats), message, docs)
    record_run(ctx, "succeeded", dates, tenants, summary=summary)
    log.info("run succeeded; stage seconds: %s",
             ", ".join(f"{k} {v:.1f}" for k, v in ctx.timings.items()))  # fmt: skip
    if docs:
        log.info("data docs: %s", docs)
    return RunResult(run_id, "succeeded", tuple(all_stats), None, docs)


def _data_docs(ctx: RunContext) -> str | None:
    """Render the run's validation results; a rendering problem is logged, not fatal."""
    try:
        with ctx.stage("gate data docs"):
            return ctx.gates.data_docs()
    except Exception as exc:
        ctx.log.warning("data docs not built: %s: %s", type(exc).__name__, exc)
        return None


def _summary(
    ctx: RunContext, stats: Sequence[DeliveryStats], docs: str | None = None
) -> RunSummary:
    rows = {"landed": 0, "accepted": 0, "rejected": 0, "duplicates": 0}
    for s in stats:
        rows["landed"] += s.landed_lines
        rows["accepted"] += s.accepted
        rows["rejected"] += s.rejected
        rows["duplicates"] += s.duplicates
    gates = ctx.gates
    rows.update({f"validated {t}": n for t, n in sorted(gates.rows_validated.items())})
    return RunSummary(
        stage_seconds={k: round(v, 3) for k, v in ctx.timings.items()},
        stage_rows=rows,
        restated_partitions=ctx.restated_partitions,
        gate_seconds=round(gates.seconds, 3),
        gate_failures=tuple(o.describe() for reasons in gates.blocked.values() for o in reasons),
        gate_warnings=sum(1 for o in gates.outcomes if not o.success and o.severity == "warn"),
        blocked_tenants=tuple(sorted(gates.blocked)),
        data_docs=docs,
    )
