"""`lakehouse` — the command line (SPEC §9).

    lakehouse generate --preset tiny|small|medium --days N [--seed S] --out LANDING
    lakehouse run      --date D [--tenant T ...]
    lakehouse backfill --start D1 --end D2 [--tenant T ...]
    lakehouse sql      "SELECT ... FROM silver.events ..."
    lakehouse metrics-doc [--out docs/metrics.md]
    lakehouse gate     --layer bronze|silver|gold --date D [--tenant T ...]
    lakehouse runs     [--limit N]
    lakehouse forget   --tenant T (--user-id U | --email E | --anonymous-id A)

Locations come from flags or LAKEHOUSE_LANDING / LAKEHOUSE_WAREHOUSE / LAKEHOUSE_CONF.
Every error names the flag, file or key at fault; exit status is 0 only on full success.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jobs.config import ConfigError, Settings, load_settings
from jobs.validation import InputError, parse_date, require_tenant_id

if TYPE_CHECKING:
    from jobs.pipeline import RunResult

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Account analytics lakehouse: landing JSON → bronze → silver → gold Delta tables.",
)
console = Console()
RUN_ID_PATTERN = re.compile(r"^run_\d{8}T\d{6}_[0-9a-f]{6}$")
err_console = Console(stderr=True)

LandingOpt = Annotated[
    str | None,
    typer.Option("--landing", envvar="LAKEHOUSE_LANDING", help="Landing root (SPEC §3)."),
]
WarehouseOpt = Annotated[
    str | None,
    typer.Option("--warehouse", envvar="LAKEHOUSE_WAREHOUSE", help="Warehouse root."),
]
ConfOpt = Annotated[
    str | None, typer.Option("--conf", envvar="LAKEHOUSE_CONF", help="Conf directory.")
]
ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", envvar="LAKEHOUSE_PROFILE", help="Profile of conf/lakehouse.yaml."),
]
ThroughOpt = Annotated[
    str,
    typer.Option(
        "--through",
        help="Last layer to publish: gold (default), silver or bronze (the next run that "
        "reaches gold catches up).",
    ),
]
FromLayerOpt = Annotated[
    str,
    typer.Option(
        "--from-layer",
        help="First layer to build: bronze (default, reads landing), silver (rebuilds from "
        "bronze) or gold (rebuilds from silver).",
    ),
]
TenantOpt = Annotated[
    list[str] | None,
    typer.Option("--tenant", help="Limit the run to this tenant (repeatable)."),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _settings(conf: str | None, landing: str | None, warehouse: str | None,
              profile: str | None) -> Settings:  # fmt: skip
    try:
        return load_settings(conf_dir=conf, landing=landing, warehouse=warehouse, profile=profile)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _tenants(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    try:
        return sorted({require_tenant_id(v, "--tenant") for v in values})
    except InputError as exc:
        raise _fail(str(exc)) from None


def _date(value: str, flag: str) -> dt.date:
    try:
        return parse_date(value, flag)
    except InputError as exc:
        raise _fail(str(exc)) from None


def _print_stats(result: RunResult) -> None:
    table = Table(title=f"Deliveries processed by {result.run_id}", title_justify="left")
    for col in ("tenant", "delivery", "landed", "accepted", "duplicates", "rejected", "reasons"):
        table.add_column(
            col, justify="left" if col in ("tenant", "delivery", "reasons") else "right"
        )
    for s in result.stats:
        reasons = ", ".join(f"{k} {v}" for k, v in s.rejected_by_reason.items())
        tenant = s.tenant_id if s.is_registered else f"{s.tenant_id} (unregistered)"
        table.add_row(tenant, str(s.delivery_date), f"{s.landed_lines:,}", f"{s.accepted:,}",
                      f"{s.duplicates:,}", f"{s.rejected:,}", reasons)  # fmt: skip
    console.print(table)


def _execute(command: str, settings: Settings, dates: list[dt.date], tenants: list[str] | None,
             through: str = "gold", from_layer: str = "bronze") -> None:  # fmt: skip
    from jobs.pipeline import execute  # Spark is imported only by commands that need it

    try:  # execute refuses bad layers (InputError) before it starts anything
        result = execute(settings, command, dates, tenants, through=through,
                         from_layer=from_layer)  # fmt: skip
    except (ConfigError, InputError) as exc:
        raise _fail(str(exc)) from None
    _print_stats(result)
    if result.data_docs:
        console.print(f"quality report (Great Expectations Data Docs): {result.data_docs}")
    if result.status != "succeeded":
        raise _fail(f"run {result.run_id} failed: {result.error}", code=1)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Landing root to write into.")],
    preset: Annotated[str, typer.Option("--preset", help="tiny | small | medium")] = "tiny",
    days: Annotated[int, typer.Option("--days", min=1, help="Delivery days.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 7,
    start: Annotated[str | None, typer.Option("--start", help="First delivery date.")] = None,
) -> None:
    """Write deterministic multi-tenant landing data (and its ground truth under _truth/)."""
    from jobs.generate import DEFAULT_START, generate_landing

    first = _date(start, "--start") if start else DEFAULT_START
    try:
        summary = generate_landing(preset, days, seed, out, first)
    except ValueError as exc:
        raise _fail(f"--preset/--days: {exc}") from None
    console.print(f"generated {summary}")


@app.command()
def run(
    date: Annotated[str, typer.Option("--date", help="Delivery date YYYY-MM-DD.")],
    tenant: TenantOpt = None,
    landing: LandingOpt = None,
    warehouse: WarehouseOpt = None,
    conf: ConfOpt = None,
    profile: ProfileOpt = None,
    through: ThroughOpt = "gold",
    from_layer: FromLayerOpt = "bronze",
) -> None:
    """Process one delivery date: landing → bronze → silver → gold."""
    day = _date(date, "--date")
    tenants = _tenants(tenant)
    settings = _settings(conf, landing, warehouse, profile)
    _execute("run", settings, [day], tenants, through, from_layer)


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="First delivery date.")],
    end: Annotated[str, typer.Option("--end", help="Last delivery date (inclusive).")],
    tenant: TenantOpt = None,
    landing: LandingOpt = None,
    warehouse: WarehouseOpt = None,
    conf: ConfOpt = None,
    profile: ProfileOpt = None,
    through: ThroughOpt = "gold",
    from_layer: FromLayerOpt = "bronze",
) -> None:
    """Replay a range of delivery dates in one pass: bronze and silver delivery by delivery,
    gold once. --from-layer silver|gold rebuilds from the warehouse, not landing."""
    first, last = _date(start, "--start"), _date(end, "--end")
    if last < first:
        raise _fail(f"--end: {last} is before --start {first}")
    if (last - first).days > 366 * 5:
        raise _fail("--start/--end: a backfill spans at most five years")
    from jobs.delta_io import date_range  # imports pyspark: after the flags are checked

    dates = date_range(first, last)
    tenants = _tenants(tenant)
    settings = _settings(conf, landing, warehouse, profile)
    _execute("backfill", settings, dates, tenants, through, from_layer)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="Spark SQL over layer.table names.")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows to print.")] = 50,
    warehouse: WarehouseOpt = None,
    conf: ConfOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Query bronze/silver/gold/ops tables by name in a fresh process."""
    from jobs.catalog import register_tables
    from jobs.spark import build_session

    settings = _settings(conf, None, warehouse, profile)
    spark = build_session(settings, app_name="lakehouse sql")
    register_tables(spark, settings)
    try:
        df = spark.sql(query)
    except Exception as exc:  # analysis errors: unknown table/column, syntax
        raise _fail(f"query: {str(exc).splitlines()[0]}") from None
    rows = df.limit(limit).collect()
    table = Table(show_lines=False)
    for name in df.columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console.print(table)


@app.command()
def partitions(
    run_id: Annotated[str, typer.Option("--run", help="The run id (see `lakehouse sql`).")],
    layer: Annotated[
        str, typer.Option("--layer", help="bronze, silver, gold or ops; all when omitted.")
    ] = "",
    warehouse: WarehouseOpt = None,
    conf: ConfOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Partitions a run rewrote, per table, read from the Delta log (commits it stamped)."""
    from jobs.catalog import LAYERS, list_tables
    from jobs.delta_io import partitions_written
    from jobs.spark import build_session

    if not RUN_ID_PATTERN.match(run_id):
        raise _fail(f"--run: {run_id!r} is not a run id like run_20260305T020000_a1b2c3")
    if layer and layer not in LAYERS:
        raise _fail(f"--layer: {layer!r} is not one of {', '.join(LAYERS)}")
    settings = _settings(conf, None, warehouse, profile)
    spark = build_session(settings, app_name="lakehouse partitions")
    table = Table("table", "partitions", "commits", "files added", "files removed")
    for name in list_tables(spark, settings):
        if layer and not name.startswith(f"{layer}."):
            continue
        written = partitions_written(spark, settings.table_path(name), run_id)
        rows = [] if written is None else written.collect()
        if not rows:
            continue
        table.add_row(
            name,
            str(len(rows)),
            str(max(r.commits for r in rows)),
            str(sum(r.files_added for r in rows)),
            str(sum(r.files_removed for r in rows)),
        )
    console.print(table)


@app.command()
def gate(
    layer: Annotated[str, typer.Option("--layer", help="bronze, silver or gold.")],
    date: Annotated[str, typer.Option("--date", help="Partition / delivery date YYYY-MM-DD.")],
    tenant: TenantOpt = None,
    warehouse: WarehouseOpt = None,
    conf: ConfOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Re-run a layer's quality gates on its published partitions of one date."""
    from jobs.context import RunContext, configure_logging, new_run_id
    from jobs.gates import recheck
    from jobs.ledger import record_quality
    from jobs.spark import build_session

    if layer not in ("bronze", "silver", "gold"):
        raise _fail(f"--layer: {layer!r} is not one of bronze, silver, gold")
    day = _date(date, "--date")
    tenants = _tenants(tenant)
    settings = _settings(conf, None, warehouse, profile)
    tenants = tenants or list(settings.tenants.ids())
    run_id = new_run_id()
    log = configure_logging(run_id)
    spark = build_session(settings, app_name="lakehouse gate")
    ctx = RunContext(spark, settings, run_id, "gate", b"", log=log)
    try:
        outcomes = recheck(ctx, layer, day, tenants)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    record_quality(ctx, outcomes)
    docs = ctx.gates.data_docs()
    table = Table(title=f"{layer} gates on {day} ({run_id})", title_justify="left")
    for name in ("table", "rule", "severity", "tenant", "result", "observed"):
        table.add_column(name, overflow="fold")
    for o in outcomes:
        verdict = "pass" if o.success else ("FAIL" if o.severity == "fail" else "warn")
        cells = (o.table, o.rule, o.severity, o.tenant_id or "all", verdict, o.observed)
        table.add_row(*map(escape, cells))  # rule names hold [column]: not Rich markup
    console.print(table)
    if docs:
        console.print(f"quality report (Great Expectations Data Docs): {docs}")
    if not outcomes:
        raise _fail(f"--date: nothing published in {layer} for {day} and these tenants", 1)
    failure = ctx.gates.failure()
    if failure is not None:
        raise _fail(str(failure), code=1)


@app.command()
def runs(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Runs to list.")] = 20,
    warehouse: WarehouseOpt = None,
    conf: ConfOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Recent runs from the ledger (ops.pipeline_runs), newest first, with their outcome."""
    from pyspark.sql import functions as F

    from jobs.delta_io import read_table
    from jobs.spark import build_session

    settings = _settings(conf, None, warehouse, profile)
    spark = build_session(settings, app_name="lakehouse runs")
    ledger = read_table(spark, settings.table_path("ops.pipeline_runs"))
    if ledger is None:
        raise _fail(f"--warehouse: no ops.pipeline_runs under {settings.warehouse}")
    last = (
        ledger.groupBy("run_id")
        .agg(F.max_by(F.struct(*ledger.columns), "recorded_at").alias("r"))
        .select("r.*")
        .orderBy(F.col("started_at").desc())
        .limit(limit)
        .collect()
    )
    table = Table()
    for name in ("run", "command", "deliveries", "tenants", "status", "seconds", "gates",
                 "detail"):  # fmt: skip
        table.add_column(name, overflow="fold")
    for r in last:
        dates = sorted(r.delivery_dates or [])
        span = f"{dates[0]}…{dates[-1]}" if len(dates) > 1 else (str(dates[0]) if dates else "")
        status = "running or interrupted" if r.status == "started" else r.status
        fields = r.asDict()
        blocked = fields.get("blocked_tenants") or []
        gates = f"blocked {', '.join(blocked)}" if blocked else (
            "passed" if fields.get("gate_seconds") is not None and r.status != "started" else ""
        )  # fmt: skip
        detail = (r.error or fields.get("data_docs") or "")[:120]
        table.add_row(r.run_id, r.command, span, ", ".join(r.tenants or []) or "all", status,
                      f"{r.duration_s:.0f}" if r.duration_s else "", gates, detail)  # fmt: skip
    console.print(table)


@app.command()
def maintain(
    step: Annotated[
        list[str] | None,
        typer.Option("--step", help="optimize, vacuum or retention (repeatable; default all)."),
    ] = None,
    warehouse: WarehouseOpt = None,
    conf: ConfOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Compact recent partitions, VACUUM old files, expire old bronze rows (conf:
    orchestration.optimize_recent_days, vacuum_retention_hours, bronze_retention_days)."""
    from jobs.maintenance import STEPS, run_step

    steps = step or list(STEPS)
    for s in steps:
        if s not in STEPS:
            raise _fail(f"--step: {s!r} is not one of {', '.join(STEPS)}")
    settings = _settings(conf, None, warehouse, profile)
    hours = settings.pipeline.orchestration.vacuum_retention_hours
    if "vacuum" in steps:
        console.print(f"vacuum keeps {hours} h of time travel: files only older versions "
                      "need are deleted and those versions can no longer be read")  # fmt: skip
    for s in steps:
        console.print(run_step(settings, s))


@app.command()
def forget(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the person belongs to.")],
    user_id: Annotated[
        str | None, typer.Option("--user-id", help="A user_id of the person.")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="An email of the person.")] = None,
    anonymous_id: Annotated[
        str | None, typer.Option("--anonymous-id", help="An anonymous_id of the person.")
    ] = None,
    retain_hours: Annotated[
        float,
        typer.Option(
            "--retain-hours",
            help="VACUUM retention after the erasure: files older versions need are deleted "
            "once they are older than this. 0 (default) makes the erasure final at once; "
            "the older versions can no longer be read (time travel).",
        ),
    ] = 0.0,
    force: Annotated[
        bool, typer.Option("--force", help="VACUUM even if the ledger shows runs not ended.")
    ] = False,
    landing: LandingOpt = None,
    warehouse: WarehouseOpt = None,
    conf: ConfOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Erase a person (every identifier stitched to the one given) from bronze, silver and
    gold; suppress re-deliveries of their old events; VACUUM so no old version keeps them."""
    given = {"--user-id": user_id, "--email": email, "--anonymous-id": anonymous_id}
    named = {flag: v for flag, v in given.items() if v is not None}
    if len(named) != 1:
        raise _fail("give exactly one of --user-id, --email, --anonymous-id")
    ((flag, value),) = named.items()
    if not value.strip() or len(value) > 320:
        raise _fail(f"{flag}: must be 1 to 320 characters")
    if retain_hours < 0:
        raise _fail("--retain-hours: must be 0 or more")
    (tenant,) = _tenants([tenant]) or [tenant]
    settings = _settings(conf, landing, warehouse, profile)
    from jobs.erasure import ErasureError
    from jobs.erasure import forget as erase

    id_type = flag.removeprefix("--").replace("-", "_")
    console.print(
        f"erasing the person with this {id_type} in tenant {tenant}; then VACUUM with "
        f"{retain_hours:g} h retention: data files that only versions older than that need "
        "are deleted, so time travel to before the erasure stops working"
        + (" at once" if retain_hours == 0 else f" after {retain_hours:g} h (run "
           "`lakehouse maintain --step vacuum` then)")
    )  # fmt: skip
    try:
        result = erase(settings, tenant, id_type, value, retain_hours, force=force)
    except (ConfigError, InputError, ErasureError) as exc:
        raise _fail(str(exc)) from None
    table = Table("table", "rows removed or redacted", title=f"Erasure {result.request_id}",
                  title_justify="left")  # fmt: skip
    for name, n in sorted(result.rows_removed.items()):
        table.add_row(name, f"{n:,}")
    console.print(table)
    console.print(
        f"{result.identifiers} identifiers of {result.persons} person ids; "
        f"{len(result.deliveries_replayed)} deliveries rebuilt "
        f"(run {result.replay_run_id or '-'}); {result.tables_vacuumed} tables vacuumed"
    )
    if result.status != "completed":
        raise _fail(f"erasure {result.request_id} failed: {result.error}", code=1)


@app.command("metrics-doc")
def metrics_doc(
    out: Annotated[Path, typer.Option("--out", help="Where to write the Markdown.")] = Path(
        "docs/metrics.md"
    ),
    conf: ConfOpt = None,
) -> None:
    """Render conf/metrics.yaml and the health / activation parameters to Markdown."""
    from jobs.metrics_doc import render

    settings = _settings(conf, None, None, None)
    if not out.parent.is_dir():
        raise _fail(f"--out: folder {out.parent} does not exist")
    out.write_text(render(settings), encoding="utf-8")
    console.print(f"wrote {out}")


@app.command("score-identity")
def score_identity_cmd(
    truth: Annotated[
        Path, typer.Option("--truth", help="The generator's _truth folder (identities.jsonl).")
    ],
    warehouse: WarehouseOpt = None,
    conf: ConfOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Pair precision and recall of silver.identity_map against generated ground truth."""
    from jobs.delta_io import read_table
    from jobs.pii import load_pii_key
    from jobs.scoring import score_identity
    from jobs.spark import build_session

    if not (truth / "identities.jsonl").is_file():
        raise _fail(f"--truth: {truth / 'identities.jsonl'} does not exist")
    settings = _settings(conf, None, warehouse, profile)
    key, _ = load_pii_key(settings)
    spark = build_session(settings, app_name="lakehouse score-identity")
    identity_map = read_table(spark, settings.table_path("silver.identity_map"))
    if identity_map is None:
        raise _fail(f"--warehouse: no silver.identity_map under {settings.warehouse}")
    for title, resolvable in (
        ("all unambiguous identifiers", False),
        ("what the rules can resolve: identified persons sharing no identifier", True),
    ):
        table = Table("tenant", "identifiers", "unmapped", "true pairs", "predicted pairs",
                      "precision", "recall", title=title)  # fmt: skip
        for s in score_identity(spark, identity_map, truth, key, resolvable):
            cells = (s.identifiers, s.unmapped, s.true_pairs, s.predicted_pairs)
            table.add_row(s.tenant_id, *map(str, cells), f"{s.precision:.4f}", f"{s.recall:.4f}")
        console.print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
