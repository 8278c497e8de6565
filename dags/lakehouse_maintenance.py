"""
### lakehouse_maintenance

Weekly upkeep of every Delta table of the warehouse (`lakehouse maintain`):
**retention** deletes bronze rows past each tenant's `bronze_retention_days`, **optimize**
compacts the partitions of the last `optimize_recent_days`, then **vacuum** deletes files
no version younger than `vacuum_retention_hours` needs (time travel reaches back that far).
All three come from the `orchestration:` section of conf/lakehouse.yaml.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronTriggerTimetable, chain

from jobs.dag_factory import maintenance_task
from jobs.orchestration import orchestration_conf

conf = orchestration_conf()

with DAG(
    dag_id="lakehouse_maintenance",
    schedule=CronTriggerTimetable(conf.maintenance_schedule, timezone="UTC"),
    start_date=dt.datetime.fromisoformat(conf.start_date).replace(tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": conf.retries,
        "retry_delay": dt.timedelta(minutes=conf.retry_delay_minutes),
    },
    tags=["lakehouse", "maintenance"],
    doc_md=__doc__,
) as dag:
    chain(*(maintenance_task(step, conf) for step in ("retention", "optimize", "vacuum")))
