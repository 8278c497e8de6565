"""The Airflow DAGs for real: parsed by a DagBag, run by `dag.test()` against a metadata
database made by `airflow db migrate` in a temporary AIRFLOW_HOME, on generated tiny data;
and the same delivery submitted to a Spark standalone cluster on loopback."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jobs.orchestration import GOLD_ASSETS

from .conftest import PROJECT_DIR, SMALL_DATA_CONF, assert_same_rows, data_tables, read

pytestmark = pytest.mark.slow
DAGS = PROJECT_DIR / "dags"
DAY = "2026-03-05"
NEXT_DAY = "2026-03-06"
# the scheduled run whose data interval starts on DAY 06:00 UTC (conf: "0 6 * * *")
LOGICAL = dt.datetime(2026, 3, 6, 6, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """A temporary AIRFLOW_HOME with a migrated SQLite metadata DB, landing and warehouse
    → (landing, warehouse). Airflow reads its environment when first imported: nothing
    imports it before this fixture."""
    from jobs.generate import generate_landing

    root = tmp_path_factory.mktemp("airflow")
    landing, warehouse = root / "landing", root / "wh"
    generate_landing("tiny", 2, 7, landing)  # DAY and NEXT_DAY
    env = {
        "AIRFLOW_HOME": str(root / "home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "LAKEHOUSE_LANDING": str(landing),
        "LAKEHOUSE_WAREHOUSE": str(warehouse),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        airflow_cli = Path(sys.executable).with_name("airflow")
        subprocess.run([str(airflow_cli), "db", "migrate"], check=True, capture_output=True)
        yield landing, warehouse


def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    return bag


def test_dag_files_are_thin(airflow) -> None:
    """Parsing a DAG file loads no Spark, Delta or Great Expectations (the scheduler parses
    every file every few minutes)."""
    for path in sorted(DAGS.glob("*.py")):
        probe = (
            "import runpy, sys; runpy.run_path(sys.argv[1]); "
            "heavy = [m for m in ('pyspark', 'delta', 'great_expectations') if m in sys.modules]; "
            "assert not heavy, heavy"
        )
        done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True)
        assert done.returncode == 0, (path.name, done.stderr.decode()[-2000:])


def test_dags_parse_and_have_the_structure_we_rely_on(airflow) -> None:
    from airflow.providers.standard.operators.python import PythonOperator

    bag = dagbag()
    assert set(bag.dag_ids) == {
        "account_analytics_daily", "account_analytics_backfill", "lakehouse_maintenance"
    }  # fmt: skip
    daily = bag.dags["account_analytics_daily"]
    assert daily.max_active_runs == 1 and "lakehouse" in daily.tags and daily.doc_md
    # Airflow's own backfill starts runs beyond the DAG's max_active_runs: one build of a
    # layer at a time across runs keeps runs of the same tenants from publishing at once
    assert all(daily.get_task(f"{g}.build").max_active_tis_per_dag == 1
               for g in ("bronze", "silver", "gold"))  # fmt: skip
    assert daily.timetable.expression == "0 6 * * *"
    for layer, upstream in (("silver", "bronze"), ("gold", "silver")):
        build = daily.get_task(f"{layer}.build")
        assert build.upstream_task_ids == {f"{upstream}.build"}
        assert daily.get_task(f"{layer}.gate").upstream_task_ids == {f"{layer}.build"}
        assert build.retries == 2 and daily.get_task(f"{layer}.gate").retries == 0
        assert isinstance(build, PythonOperator)
    outlets = daily.get_task("gold.build").outlets
    assert sorted(a.name for a in outlets) == sorted(GOLD_ASSETS)
    assert all(a.uri.startswith("file://") for a in outlets)
    backfill = bag.dags["account_analytics_backfill"]
    assert backfill.schedule is None
    assert set(backfill.params) == {"start", "end", "tenants", "from_layer"}
    maintenance = bag.dags["lakehouse_maintenance"]
    assert maintenance.get_task("vacuum").upstream_task_ids == {"optimize"}


def test_the_cluster_profile_submits_the_same_entry_points(airflow, tmp_path, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    conf = tmp_path / "conf"
    conf.mkdir()
    for f in (PROJECT_DIR / "conf").iterdir():
        conf.joinpath(f.name).write_bytes(f.read_bytes())
    doc = yaml.safe_load((conf / "lakehouse.yaml").read_text())
    doc["orchestration"]["execution"] = "cluster"
    (conf / "lakehouse.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("LAKEHOUSE_CONF", str(conf))
    daily = dagbag().dags["account_analytics_daily"]
    build = daily.get_task("silver.build")
    assert isinstance(build, SparkSubmitOperator)
    assert build.application.endswith("jobs/submit.py")
    assert build.application_args[:2] == ["run", "--date"]
    assert build.application_args[3:] == ["--from-layer", "silver", "--through", "silver"]


@pytest.fixture(scope="module")
def daily_run(airflow, spark):
    """`dag.test()` of the daily DAG for the run whose data interval starts on DAY. Its
    tasks run in this process and reuse the suite's Spark session."""
    bag = dagbag()
    run = bag.dags["account_analytics_daily"].test(logical_date=LOGICAL)
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_the_daily_dag_runs_end_to_end_and_publishes_gold(spark, airflow, daily_run) -> None:
    from jobs.config import load_settings

    run, states = daily_run
    assert str(run.state) == "success", states
    assert set(states) == {
        f"{g}.{t}" for g in ("bronze", "silver", "gold") for t in ("build", "gate")
    }
    assert all(str(s) == "success" for s in states.values()), states
    settings = load_settings()
    gold = read(spark, settings, "gold.account_daily")
    assert gold.where(f"activity_date = DATE'{DAY}'").count() > 0
    runs = read(spark, settings, "ops.pipeline_runs").where("status = 'succeeded'")
    assert runs.count() == 3  # one ledgered run per layer task
    assert {tuple(r.delivery_dates) for r in runs.collect()} == {(dt.date(2026, 3, 5),)}


def test_the_backfill_dag_takes_params_and_refuses_bad_ones(spark, airflow, daily_run) -> None:
    from jobs.config import load_settings

    settings = load_settings()
    before = {t: read(spark, settings, t).localCheckpoint() for t in GOLD_ASSETS}
    backfill = dagbag().dags["account_analytics_backfill"]
    conf = {"start": DAY, "end": DAY, "tenants": ["initech"], "from_layer": "gold"}
    run = backfill.test(run_conf=conf)
    assert str(run.state) == "success"
    ledger = read(spark, settings, "ops.pipeline_runs").where("command = 'backfill'")
    (row,) = ledger.where("status = 'succeeded'").collect()
    assert row.tenants == ["initech"] and row.restated_partitions > 0
    for table in GOLD_ASSETS:  # a rebuild with unchanged logic changes nothing
        assert_same_rows(read(spark, settings, table), before[table])
    with pytest.raises(Exception, match=r"start|pattern|does not match"):
        backfill.test(run_conf={**conf, "start": "2026-03-05' OR '1'='1"})


def test_cluster_mode_gives_the_same_silver_and_gold(
    spark, airflow, daily_run, tmp_path, monkeypatch
) -> None:
    """A standalone master and two workers on loopback; the day submitted with
    spark-submit, with the suite's small-data SQL settings (they change cost, not results)
    and a 1 MiB `spark.driver.maxResultSize`; every silver and gold table equal to the
    daily DAG's local run. The tables are compared in the suite's session (`make
    cluster-check` starts one of its own for that)."""
    from jobs.cluster_check import compare, run_on_cluster

    landing, warehouse = airflow
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "")  # the submitted run names its own
    # a 1 MiB cap on what any action returns to the driver (issue 8: bounded driver)
    conf = {**SMALL_DATA_CONF, "spark.driver.maxResultSize": "1m"}
    # raises unless the run succeeded on the workers' executors
    run_on_cluster(str(landing), DAY, tmp_path, ["=".join(kv) for kv in conf.items()])
    assert compare(str(tmp_path / "cluster_wh"), str(warehouse), spark) == []


def run_backfill_dag_runs(dag, backfill_id: int) -> list:
    """Run the DagRuns an Airflow backfill created, one at a time, in the order the
    scheduler starts them (its sort ordinal; max_active_runs=1): each run set running as
    the scheduler does, its ready tasks run by Airflow's in-process task runner (the one
    `dag.test()` uses) until the run ends. The scheduler and API-server daemons are not
    started: a process and a Spark driver per task cost minutes here.
    → [(data interval start, run type, state)] in that order."""
    from airflow import settings
    from airflow.models.backfill import BackfillDagRun
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    session = settings.Session()
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    run_ids = session.scalars(
        select(DagRun.id)
        .join(BackfillDagRun, BackfillDagRun.dag_run_id == DagRun.id)
        .where(BackfillDagRun.backfill_id == backfill_id)
        .order_by(BackfillDagRun.sort_ordinal)
    ).all()

    def fetch(run_id: int) -> DagRun:  # the task runner closes the session: re-read
        run = session.get(DagRun, run_id)
        run.dag = scheduler_dag
        return run

    for run_id in run_ids:
        fetch(run_id).set_state(DagRunState.RUNNING)
        session.commit()
        while (run := fetch(run_id)).state == DagRunState.RUNNING:
            ready, _ = run.update_state(session=session)
            for ti in ready:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            for ti in run.get_task_instances(session=session):
                if ti.state == TaskInstanceState.SCHEDULED:
                    _run_task(ti=ti, task=dag.task_dict[ti.task_id])
            session.expire_all()
    return [
        (r.data_interval_start.date().isoformat(), str(r.run_type), str(r.state))
        for r in map(fetch, run_ids)
    ]


def test_airflows_own_backfill_of_the_daily_dag_equals_daily_runs(
    spark, airflow, daily_run, tmp_path, monkeypatch
) -> None:
    """`airflow backfill create --run-backwards` of the daily DAG over DAY and NEXT_DAY,
    into a second warehouse: Airflow makes the runs (their data intervals, their order);
    every silver and gold table equals daily runs of the same days in order."""
    from airflow import settings as airflow_settings
    from airflow.models.backfill import Backfill
    from airflow.models.dagrun import DagRun
    from sqlalchemy import delete, select

    from jobs.config import load_settings
    from jobs.pipeline import execute

    daily_settings = load_settings()  # the daily DAG's warehouse holds DAY already
    execute(daily_settings, "run", [dt.date.fromisoformat(NEXT_DAY)], None, spark=spark)
    session = airflow_settings.Session()
    # dag.test() made a manual run whose logical date is NEXT_DAY's interval start
    session.execute(delete(DagRun).where(DagRun.dag_id == "account_analytics_daily"))
    session.commit()

    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "backfill_wh"))
    airflow_cli = Path(sys.executable).with_name("airflow")
    created = subprocess.run(
        [str(airflow_cli), "backfill", "create", "--dag-id", "account_analytics_daily",
         "--from-date", f"{DAY}T06:00:00+00:00", "--to-date", f"{NEXT_DAY}T06:00:00+00:00",
         "--run-backwards", "--max-active-runs", "1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]
    backfill_id = session.scalars(select(Backfill.id).order_by(Backfill.id.desc())).first()
    runs = run_backfill_dag_runs(dagbag().dags["account_analytics_daily"], backfill_id)

    assert runs == [(NEXT_DAY, "backfill", "success"), (DAY, "backfill", "success")]
    backfilled = load_settings()
    ledger = read(spark, backfilled, "ops.pipeline_runs").where("status = 'succeeded'")
    firsts = ledger.orderBy("started_at").select("delivery_dates").collect()
    assert [r.delivery_dates[0].isoformat() for r in firsts[::3]] == [NEXT_DAY, DAY]
    for table in data_tables("silver", "gold"):
        assert_same_rows(read(spark, backfilled, table), read(spark, daily_settings, table))


def test_maintenance_compacts_expires_bronze_and_vacuums(spark, airflow, daily_run) -> None:
    """Last in this module: it rewrites the daily DAG's warehouse."""
    from jobs.config import load_settings
    from jobs.maintenance import retention_predicate, run_step

    settings = load_settings()
    before = {t: read(spark, settings, t).localCheckpoint() for t in GOLD_ASSETS}
    day = dt.date.fromisoformat(DAY)
    summary = run_step(settings, "optimize", today=day, only=GOLD_ASSETS)
    assert summary.startswith("optimize:")
    daily_dir = Path(settings.table_path("gold.account_daily"))
    per_partition = [len(list(p.glob("*.parquet"))) for p in daily_dir.glob("*/*") if p.is_dir()]
    live = read(spark, settings, "gold.account_daily").inputFiles()
    parts = {Path(f).parent.as_posix() for f in live}
    assert per_partition and len(live) <= 2 * len(parts)  # ≤ 2 live files per partition
    for table in GOLD_ASSETS:  # compaction changes files, never rows
        assert_same_rows(read(spark, settings, table), before[table])
    assert retention_predicate({"default": 400, "acme": 30}, day) == (
        "(tenant_id = 'acme' AND delivery_date < DATE'2026-02-03') OR "
        "(tenant_id NOT IN ('acme') AND delivery_date < DATE'2025-01-29')"
    )
    # 400 days after NEXT_DAY both days' bronze rows are past the default retention;
    # silver stays
    run_step(settings, "retention", today=day + dt.timedelta(days=402), only=["bronze.events"])
    assert read(spark, settings, "bronze.events").count() == 0
    assert read(spark, settings, "silver.events").count() > 0
    # 168 h: nothing old enough to delete, and no error (each VACUUM lists the whole table:
    # ~15 s a table here, so one table)
    run_step(settings, "vacuum", only=["gold.account_daily"])
    assert (
        read(spark, settings, "gold.account_daily").count() == before["gold.account_daily"].count()
    )
