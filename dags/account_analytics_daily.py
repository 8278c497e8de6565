"""
### account_analytics_daily

Processes one delivery date a day: landing → **bronze** → **silver** → **gold**, each layer a
task group whose `build` publishes the layer (its Great Expectations gates run inline and
hold back the tenants that fail them) and whose `gate` task fails, naming those tenants and
linking the Data Docs, when any tenant was held back. Other tenants publish regardless.

- **Delivery date**: the start of the run's data interval (UTC). The run at 06:00 on
  D + 1 processes `delivery_date=D`.
- **Replays**: re-running a date is exact (every partition a pure function of its
  inputs); Airflow's own backfill of this DAG gives the same tables as daily runs. For long
  ranges use `account_analytics_backfill` (one pass, gold built once).
- **Outlets**: one Asset per gold table, for data-aware downstream DAGs.
- Schedule, retries and execution (local worker or spark-submit) come from the
  `orchestration:` section of conf/lakehouse.yaml. See docs/orchestration.md.
"""

from __future__ import annotations

from airflow.sdk import DAG, CronDataIntervalTimetable

from jobs.dag_factory import DELIVERY_DATE, dag_defaults, gold_assets, layer_group
from jobs.orchestration import orchestration_conf

conf = orchestration_conf()

with DAG(
    dag_id="account_analytics_daily",
    schedule=CronDataIntervalTimetable(conf.daily_schedule, timezone="UTC"),
    max_active_runs=conf.max_active_runs,
    **dag_defaults(conf),
    tags=["lakehouse", "daily"],
    doc_md=__doc__,
) as dag:
    previous = None
    for layer in ("bronze", "silver", "gold"):
        outlets = gold_assets() if layer == "gold" else ()
        build, _ = layer_group(layer, "run", [DELIVERY_DATE], conf, outlets=outlets)
        if previous is not None:
            previous >> build  # the next layer follows the build, not the gate
        previous = build
