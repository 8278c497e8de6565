"""What the Airflow DAGs of `dags/` call: their settings, and the bodies of their tasks.

DAG files stay thin: at parse time they import `airflow.sdk` and this module, which imports
only the standard library and `jobs.config` (PyYAML). Spark, Delta and Great Expectations
load inside a task. Every body here is a plain function of plain arguments, so the same
step runs in an Airflow worker (the local profile), under `spark-submit` on a cluster
(`submit_args` builds the CLI arguments) or by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from jobs.config import OrchestrationConf, Settings, load_settings
from jobs.validation import parse_date, require_tenant_id

# The gold tables downstream DAGs can wait for (Airflow Assets named after the tables)
GOLD_ASSETS = (
    "gold.account_daily",
    "gold.account_hourly",
    "gold.tenant_daily",
    "gold.feature_adoption_daily",
    "gold.account_health_daily",
    "gold.account_activation",
    "gold.account_retention_monthly",
)


class LayerBlocked(RuntimeError):
    """A layer's quality gates blocked one or more tenants (their data was not published)."""


def orchestration_conf() -> OrchestrationConf:
    """`orchestration:` of conf/lakehouse.yaml (LAKEHOUSE_CONF chooses the conf dir)."""
    return load_settings().pipeline.orchestration


def asset_uri(table: str, settings: Settings | None = None) -> str:
    """Where a table lives, as an Asset URI (`file:///…` for a local warehouse)."""
    path = (settings or load_settings()).table_path(table)
    return path if "://" in path else f"file://{path}"


def run_layers(
    command: str,
    dates: Sequence[str],
    from_layer: str,
    through: str,
    tenants: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Build `from_layer` … `through` for `dates` in this process (the local profile).
    For `command="backfill"`, `dates` is [start, end] and every date between is replayed.

    Returns the run's outcome for the layer's gate task. A run that failed in a way a retry
    may cure (an exception) raises; a run whose gates blocked tenants returns normally with
    them listed — the other tenants are published, and the gate task reports the block."""
    # Dates and tenants are checked before anything is read; `execute` checks the layers.
    if command == "backfill":
        days = backfill_dates(dates[0], dates[-1])
    else:
        days = [parse_date(d, "delivery date") for d in dates]
    names = [require_tenant_id(t, "tenants") for t in tenants] if tenants else None
    from pyspark.sql import SparkSession

    from jobs.pipeline import execute

    existing = SparkSession.getActiveSession()  # a worker reusing its session (or `dag.test`)
    result = execute(load_settings(), command, days, names, spark=existing, through=through,
                     from_layer=from_layer)  # fmt: skip
    if result.status != "succeeded" and not result.blocked_tenants:
        raise RuntimeError(f"run {result.run_id} failed: {result.error}")
    return {  # plain values: what an XCom can carry
        "run_id": result.run_id,
        "status": result.status,
        "blocked_tenants": list(result.blocked_tenants),
        "gate_failures": list(result.gate_failures),
        "data_docs": result.data_docs,
    }


def check_gates(outcome: dict[str, Any], layer: str) -> str:
    """A layer's gate task: pass when its run blocked no tenant, fail naming them."""
    if outcome["blocked_tenants"]:
        failures = "; ".join(outcome["gate_failures"][:5])
        raise LayerBlocked(
            f"{layer}: gates blocked tenants {', '.join(outcome['blocked_tenants'])} in run "
            f"{outcome['run_id']}: {failures} (Data Docs: {outcome['data_docs']})"
        )
    return f"{layer}: every gate passed in run {outcome['run_id']}"


def submit_args(
    command: str,
    dates: Sequence[str],
    from_layer: str,
    through: str,
    tenants: Sequence[str] | None = None,
) -> list[str]:
    """The `lakehouse` CLI arguments of the same step, for `spark-submit` (cluster profile).
    Dates may be Jinja templates here; the CLI validates them when the task runs."""
    if command == "run":
        (day,) = dates
        args = ["run", "--date", day]
    else:
        args = ["backfill", "--start", dates[0], "--end", dates[-1]]
    args += ["--from-layer", from_layer, "--through", through]
    for t in tenants or ():
        args += ["--tenant", t]
    return args


def backfill_dates(start: str, end: str) -> list[dt.date]:
    """Every delivery date from `start` to `end` (the backfill DAG's params)."""
    from jobs.delta_io import date_range  # in the task, not at DAG parse time (pyspark)

    first, last = parse_date(start, "start"), parse_date(end, "end")
    if last < first:
        raise ValueError(f"end: {last} is before start {first}")
    return date_range(first, last)


def maintain(step: str) -> str:
    """The maintenance DAG's tasks: `optimize`, `vacuum` or `retention`."""
    from jobs.maintenance import run_step

    return run_step(load_settings(), step)
