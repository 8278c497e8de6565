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

from jobs import bronze, gold, marts, silver_accounts, silver_events, silver_people, silver_progress
from jobs.config import Settings
from jobs.context import RunContext, configure_logging, new_run_id
from jobs.delta_io import date_range, read_table, tenants_predicate
from jobs.ledger import (
    RESTATEMENT_REASONS,
    DeliveryStats,
    RunSummary,
    mark_interrupted,
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
    blocked_tenants: tuple[str, ...] = ()  # held back by a gate (the others published)
    gate_failures: tuple[str, ...] = ()


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


LAYERS = ("bronze", "silver", "gold")  # `from_layer` … `through`: the layers a run builds


def _check_layers(from_layer: str, through: str) -> None:
    for flag, value in (("--from-layer", from_layer), ("--through", through)):
        if value not in LAYERS:
            raise InputError(f"{flag}: {value!r} is not one of {', '.join(LAYERS)}")
    if LAYERS.index(from_layer) > LAYERS.index(through):
        raise InputError(f"--from-layer {from_layer} comes after --through {through}")


def run_delivery(
    ctx: RunContext,
    delivery_date: dt.date,
    tenants: Sequence[str] | None,
    through: str = "gold",
    from_layer: str = "bronze",
) -> list[DeliveryStats]:
    """Process one delivery date (all tenants in landing, or only `tenants`): its bronze
    and silver, then gold when `through="gold"`.

    `from_layer="silver"` rebuilds silver from the delivery's bronze partitions without
    reading landing. `through="silver"` stops after silver: its restatements stay pending
    in `ops.restatements` and the next run that reaches gold recomputes them."""
    stats, horizons = build_silver(ctx, delivery_date, tenants, through, from_layer)
    if through == "gold":
        build_gold(ctx, horizons)
    return stats


def build_silver(
    ctx: RunContext,
    delivery_date: dt.date,
    tenants: Sequence[str] | None,
    through: str = "silver",
    from_layer: str = "bronze",
) -> tuple[list[DeliveryStats], dict[str, dt.date]]:
    """Bronze (unless `from_layer="silver"`) and silver (unless `through="bronze"`) of one
    delivery → (conservation stats, horizons of the tenants it touched; `build_gold` leaves
    out the ones a gate blocked)."""
    ctx.gates.delivery_date = delivery_date
    if from_layer == "bronze":
        landed = bronze.ingest(ctx, delivery_date, tenants)
    else:
        landed = bronze.from_table(ctx, delivery_date, tenants)
    if through == "bronze":
        return [], {}
    event_tenants = landed.tenants["events"]
    registered = set(ctx.settings.tenants.ids())
    landed_tenants = sorted({t for ts in landed.tenants.values() for t in ts} & registered)
    base = silver_progress.start(ctx, delivery_date, landed_tenants)
    silver = silver_events.build(ctx, delivery_date, event_tenants)
    try:
        people = silver_people.build(
            ctx, delivery_date, [t for t in event_tenants if t in registered],
            silver.ranked, silver.touched, base,
        )  # fmt: skip
    finally:
        if silver.ranked is not None:
            silver.ranked.unpersist()
    horizons = _horizons(ctx, landed_tenants)
    accounts = silver_accounts.build(
        ctx, delivery_date, landed_tenants, people.group_changes, horizons, base
    )
    restated: dict[str, dict[dt.date, set[str]]] = defaultdict(lambda: defaultdict(set))
    for part in (people.restated, accounts.restated):
        for tenant, days in part.items():
            if tenant in ctx.gates.blocked:
                continue
            for day, reasons in days.items():
                restated[tenant][day] |= set(reasons)
    record_restatements(ctx, delivery_date, restated)
    silver_progress.finish(ctx, base)
    ctx.restated_partitions += sum(len(days) for days in restated.values())
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
            erased_lines=landed.erased_lines.get(("events", t), 0),
        )
        for t in event_tenants
    ]
    record_delivery_stats(ctx, stats)
    record_quality(ctx, ctx.gates.unrecorded())
    broken = [s for s in stats if not s.is_conserved]
    if broken:
        detail = "; ".join(
            f"{s.tenant_id}/{s.delivery_date}: landed {s.landed_lines}, bronze {s.bronze_rows}, "
            f"erased {s.erased_lines}, "
            f"accepted {s.accepted} + rejected {s.rejected} + duplicates {s.duplicates}"
            for s in broken
        )
        raise ConservationError(f"conservation violated: {detail}")
    return stats, horizons


def build_gold(ctx: RunContext, horizons: dict[str, dt.date]) -> None:
    """Recompute every pending gold partition of these tenants (`jobs.gold.plan`)."""
    horizons = {t: h for t, h in horizons.items() if t not in ctx.gates.blocked}
    todo = gold.build(ctx, horizons)
    marts.build(ctx, todo, horizons)
    gold.record_progress(ctx, horizons, todo)
    record_quality(ctx, ctx.gates.unrecorded())


def restate_range(ctx: RunContext, first: dt.date, last: dt.date, tenants: Sequence[str]) -> None:
    """Mark every gold partition of `tenants` from `first` to `last`, and every event date the
    deliveries of that range carried, as changed for every reason: the next gold build
    recomputes them (after a logic change or a new metric version)."""
    every_reason = set(RESTATEMENT_REASONS)
    restate: dict[str, dict[dt.date, set[str]]] = {
        t: {d: every_reason for d in date_range(first, last)} for t in tenants
    }
    manifest = read_table(ctx.spark, ctx.path(SILVER_DELIVERY_EVENT_DATES.name))
    if manifest is not None and tenants:
        carried = (
            manifest.where(tenants_predicate(tenants))
            .where(F.col("delivery_date").between(F.lit(first), F.lit(last)))
            .select("tenant_id", "event_date")
            .distinct()
            .collect()
        )  # dates, not events: at most tenants × days rows
        for r in carried:
            restate[r.tenant_id][r.event_date] = every_reason
    record_restatements(ctx, last, restate)
    ctx.restated_partitions += sum(len(days) for days in restate.values())


def _log_delivery_cost(
    ctx: RunContext,
    day: dt.date,
    seconds: float,
    timings_before: dict[str, float],
    jobs_before: dict[str, int],
) -> None:
    """One INFO line per delivery: wall time, Spark jobs, and the stages that cost most."""
    ctx.take_run_group()
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
    from_layer: str = "bronze",
) -> RunResult:
    """Run `dates` in order inside one Spark session and one ledgered run.

    `command="run"` builds each delivery through `through` in turn. `command="backfill"`
    is one pass: bronze and silver delivery by delivery (first delivery wins, exactly as
    daily), then gold once for every partition the range changed. A backfill from silver or
    gold also restates the range's gold partitions, so a logic change reaches all of them.
    `spark` is for callers that already hold a session (tests, notebooks); otherwise one is
    built from `settings`. Layers are bronze, silver, gold (see `run_delivery`).
    """
    _check_layers(from_layer, through)
    if not dates:
        raise InputError("no delivery dates to process")
    run_id = new_run_id()
    log = configure_logging(run_id)
    pii_key, key_origin = load_pii_key(settings)
    spark = spark or build_session(settings, app_name=f"lakehouse {command}")
    ctx = RunContext(spark, settings, run_id, command, pii_key, log=log)
    log.info("%s: dates %s, tenants %s, layers %s → %s", command,
             [d.isoformat() for d in dates], tenants or "all", from_layer, through)  # fmt: skip
    log.info("warehouse %s, landing %s; pseudonym key from %s",
             settings.warehouse, settings.landing, key_origin)  # fmt: skip
    ctx.start_run_group()
    try:
        return _execute(ctx, dates, tenants, through, from_layer)
    finally:
        ctx.take_run_group()  # the last ledger commit's jobs: nothing left counted
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)


def _execute(
    ctx: RunContext,
    dates: Sequence[dt.date],
    tenants: Sequence[str] | None,
    through: str,
    from_layer: str,
) -> RunResult:
    settings, log, run_id, command = ctx.settings, ctx.log, ctx.run_id, ctx.command
    record_run(ctx, "started", dates, tenants)
    mark_interrupted(ctx)
    all_stats: list[DeliveryStats] = []
    one_pass = command == "backfill"
    try:
        horizons: dict[str, dt.date] = {}
        if from_layer != "gold":
            for day in dates:
                before_t, before_j = dict(ctx.timings), dict(ctx.spark_jobs)
                started = time.perf_counter()
                if one_pass:
                    stats, touched = build_silver(ctx, day, tenants, through, from_layer)
                    all_stats += stats
                    horizons.update(touched)
                else:
                    all_stats += run_delivery(ctx, day, tenants, through, from_layer)
                _log_delivery_cost(ctx, day, time.perf_counter() - started, before_t, before_j)
        if through == "gold" and (one_pass or from_layer == "gold"):
            scope = sorted(set(tenants or settings.tenants.ids()) - set(ctx.gates.blocked))
            if one_pass and from_layer != "bronze":
                restate_range(ctx, min(dates), max(dates), scope)
            horizons = _horizons(ctx, scope if from_layer == "gold" else sorted(horizons))
            build_gold(ctx, horizons)
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
        return RunResult(run_id, "failed", tuple(all_stats), message, docs,
                         summary.blocked_tenants, summary.gate_failures)  # fmt: skip
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
    ctx.take_run_group()
    return RunSummary(
        stage_seconds={k: round(v, 3) for k, v in ctx.timings.items()},
        stage_rows=rows,
        restated_partitions=ctx.restated_partitions,
        gate_seconds=round(gates.seconds, 3),
        gate_failures=tuple(o.describe() for reasons in gates.blocked.values() for o in reasons),
        gate_warnings=sum(1 for o in gates.outcomes if not o.success and o.severity == "warn"),
        blocked_tenants=tuple(sorted(gates.blocked)),
        data_docs=docs,
        stage_spark_jobs=dict(ctx.spark_jobs),
        spark_work=ctx.total_work(),
    )
