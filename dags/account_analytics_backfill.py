"""
### account_analytics_backfill

Replays a range of delivery dates in **one pass** (one Spark session: bronze and silver
delivery by delivery, gold once for every partition the range changed). Results equal
daily runs of the same dates.

Params: `start`, `end` (delivery dates, inclusive), `tenants` (empty: all), `from_layer`:
`bronze` re-reads landing; `silver` rebuilds silver and gold from bronze and `gold`
rebuilds gold from silver, without reading landing (after a logic change or a new metric
version). Trigger with `airflow dags trigger account_analytics_backfill --conf
'{"start": "2026-03-05", "end": "2026-03-11"}'`. See docs/orchestration.md.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from jobs.config import TENANT_ID_PATTERN
from jobs.dag_factory import dag_defaults, gold_assets, layer_group
from jobs.orchestration import orchestration_conf

conf = orchestration_conf()
DATE = r"^\d{4}-\d{2}-\d{2}$"
TENANT = TENANT_ID_PATTERN.pattern

with DAG(
    dag_id="account_analytics_backfill",
    schedule=None,
    max_active_runs=1,
    **dag_defaults(conf, retries=0),  # a replay is re-triggered by a person, not blindly
    params={
        "start": Param(
            conf.start_date,
            type="string",
            pattern=DATE,
            description="First delivery date (YYYY-MM-DD).",
        ),
        "end": Param(
            conf.start_date,
            type="string",
            pattern=DATE,
            description="Last delivery date, inclusive.",
        ),
        "tenants": Param(
            [],
            type="array",
            items={"type": "string", "pattern": TENANT},
            description="Tenants to replay; empty for all.",
        ),
        "from_layer": Param(
            "bronze",
            enum=["bronze", "silver", "gold"],
            description="bronze: from landing; silver, gold: from the warehouse.",
        ),
    },
    render_template_as_native_obj=True,
    tags=["lakehouse", "backfill"],
    doc_md=__doc__,
) as dag:
    layer_group(
        "gold",
        "backfill",
        ["{{ params.start }}", "{{ params.end }}"],
        conf,
        tenants="{{ params.tenants or None }}",
        from_layer="{{ params.from_layer }}",
        outlets=gold_assets(),
        group_id="backfill",
    )
