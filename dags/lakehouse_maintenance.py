"""
### lakehouse_maintenance

Weekly upkeep of every Delta table of the warehouse (`lakehouse maintain`):
**retention** deletes bronze rows past each tenant's `bronze_retention_days`, **optimize**
compacts the partitions of the last `optimize_recent_days`, then **vacuum** deletes files
no version younger than `vacuum_retention_hours` needs (time travel reaches back that far).
All three come from the `orchestration:` section of conf/lakehouse.yaml.
"""

from __future__ import annotations

from airflow.sdk import DAG, CronTriggerTimetable, chain

from jobs.dag_factory import dag_defaults, maintenance_task
from jobs.orchestration import orchestration_conf

conf = orchestration_conf()

with DAG(
    dag_id="lakehouse_maintenance",
    schedule=CronTriggerTimetable(conf.maintenance_schedule, timezone="UTC"),
    max_active_runs=1,
    **dag_defaults(conf),
    tags=["lakehouse", "maintenance"],
    doc_md=__doc__,
) as dag:
    chain(*(maintenance_task(step, conf) for step in ("retention", "optimize", "vacuum")))
