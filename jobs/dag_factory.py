"""Builds the tasks of the DAGs in `dags/` (imported by the DAG files at parse time).

One step of the pipeline becomes one Airflow task, built for the configured execution
(`orchestration.execution` in conf/lakehouse.yaml):

- `local`: a PythonOperator running `jobs.orchestration` in the worker (Spark in-process);
- `cluster`: a SparkSubmitOperator submitting `jobs/submit.py` — the `lakehouse` CLI — with
  the same arguments, so a cluster runs exactly the entry points a laptop runs.

Nothing here touches Spark or the warehouse: the task bodies import what they need when
they run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import Asset, TaskGroup

from jobs import orchestration
from jobs.config import OrchestrationConf, load_settings

SUBMIT_APP = str(Path(__file__).with_name("submit.py"))


def dag_defaults(conf: OrchestrationConf, retries: int | None = None) -> dict[str, Any]:
    """The DAG arguments every lakehouse DAG shares: start date, no catch-up (history is
    replayed by the backfill DAG) and the retry policy (`retries` overrides conf's)."""
    return {
        "start_date": dt.datetime.fromisoformat(conf.start_date).replace(tzinfo=dt.UTC),
        "catchup": False,
        "default_args": {
            "retries": conf.retries if retries is None else retries,
            "retry_delay": dt.timedelta(minutes=conf.retry_delay_minutes),
        },
    }


# the delivery date of a scheduled run: the start of its data interval, in UTC
DELIVERY_DATE = "{{ data_interval_start.strftime('%Y-%m-%d') }}"


def gold_assets() -> list[Asset]:
    """One Asset per gold table (name = table, uri = its location): downstream DAGs can be
    scheduled on them."""
    settings = load_settings()
    return [
        Asset(name=table, uri=orchestration.asset_uri(table, settings), group="lakehouse")
        for table in orchestration.GOLD_ASSETS
    ]


def _submit(task_id: str, args: Sequence[str], conf: OrchestrationConf, **kw: Any):
    settings = load_settings()
    delta = settings.pipeline.delta
    return SparkSubmitOperator(
        task_id=task_id,
        application=SUBMIT_APP,
        application_args=list(args),
        conn_id=conf.spark_conn_id,
        name=f"lakehouse-{task_id}",
        packages=f"{delta.maven_artifact}:{delta.version}",
        env_vars={"LAKEHOUSE_PROFILE": "cluster"},
        **kw,
    )


def layer_group(
    layer: str,
    command: str,
    dates: Sequence[str],
    conf: OrchestrationConf,
    tenants: Sequence[str] | str | None = None,
    from_layer: str | None = None,
    outlets: Sequence[Asset] = (),
    group_id: str | None = None,
) -> tuple[Any, Any]:
    """A task group `layer` with `build` (publishes the layer; its gates run inline and
    block failing tenants) then `gate` (fails, naming them, when any tenant was blocked;
    not retried: data does not heal by waiting). → (build, gate).

    One `build` of a layer runs at a time across all runs of the DAG
    (`max_active_tis_per_dag=1`): runs of the same tenants must not publish a layer at
    once, and Airflow's own backfill starts up to its own `max_active_runs` (10 by
    default) runs together, whatever the DAG's limit."""
    from_layer = from_layer or layer
    with TaskGroup(group_id or layer, tooltip=f"{layer}: build, then its gates") as group:
        if conf.execution == "local":
            build = PythonOperator(
                task_id="build",
                python_callable=orchestration.run_layers,
                op_kwargs={
                    "command": command,
                    "dates": list(dates),
                    "from_layer": from_layer,
                    "through": layer,
                    "tenants": tenants,
                },
                outlets=list(outlets),
                max_active_tis_per_dag=1,
            )
            gate = PythonOperator(
                task_id="gate",
                python_callable=orchestration.check_gates,
                op_kwargs={"outcome": build.output, "layer": layer},
                retries=0,
            )
        else:
            names = [tenants] if isinstance(tenants, str) else tenants
            args = orchestration.submit_args(command, dates, from_layer, layer, names)
            build = _submit("build", args, conf, outlets=list(outlets), max_active_tis_per_dag=1)
            gate = _submit("gate", ["gate", "--layer", layer, "--date", dates[-1]], conf,
                           retries=0)  # fmt: skip
        build >> gate
    del group
    return build, gate


def maintenance_task(step: str, conf: OrchestrationConf):
    if conf.execution == "local":
        return PythonOperator(
            task_id=step, python_callable=orchestration.maintain, op_kwargs={"step": step}
        )
    return _submit(step, ["maintain", "--step", step], conf)
