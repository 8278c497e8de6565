"""Bronze → silver runs on small hand-built deliveries: exactly once, idempotent, isolated."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import silver_events
from jobs.config import load_settings
from jobs.delta_io import materialize, release, replace_partitions
from jobs.pipeline import execute

from .conftest import LINEAGE, TEST_TENANTS, assert_same_rows, read, write_conf, write_delivery

D1, D2, D3 = "2026-03-05", "2026-03-06", "2026-03-27"
SILVER_TABLES = (
    "silver.events",
    "silver.events_duplicates",
    "silver.events_rejected",
    "silver.identity_edges",
    "silver.identity_map",
    "silver.group_calls",
    "silver.sessions",
    "silver.person_account_daily",
    "silver.account_memberships",
)


def ev(mid: str, ts: str = "2026-03-05T15:00:00Z", **kw: object) -> dict:
    return {"message_id": mid, "type": "track", "event": "Report Viewed", "timestamp": ts,
            "user_id": "u1", **kw}  # fmt: skip


def land_basic(landing: Path) -> None:
    write_delivery(landing, "acme", D1, [ev("m1"), ev("m1"), "", ev("m2"), "{broken", ev("m3")])
    write_delivery(landing, "acme", D2, [ev("m1"), ev("m4", "2026-03-06T10:00:00Z")])
    write_delivery(landing, "globex", D1, [ev("m1"), ev("g2", type="page", event=None)])
    write_delivery(landing, "umbrella", D1, [ev("z1")])


def run(settings, spark, *days: str, tenants=None):
    """A run through silver: these tests check bronze and silver (gold has tests of its own)."""
    dates = [dt.date.fromisoformat(d) for d in days]
    result = execute(settings, "run", dates, tenants, spark=spark, through="silver")
    assert result.status == "succeeded", result.error
    return result


def stats_of(result, tenant: str, day: str):
    (s,) = [
        s for s in result.stats
        if s.tenant_id == tenant and s.delivery_date == dt.date.fromisoformat(day)
    ]  # fmt: skip
    return s


@pytest.fixture(scope="module")
def basic(spark, tmp_path_factory):
    """`land_basic` run D1 then D2 once per module (read-only: tests that write use
    `copy_of_basic`). → (root holding landing/ and wh/, settings, RunResult)."""
    root = tmp_path_factory.mktemp("basic")
    land_basic(root / "landing")
    settings = load_settings(
        conf_dir=write_conf(root / "conf", TEST_TENANTS),
        landing=str(root / "landing"),
        warehouse=str(root / "wh"),
    )
    return root, settings, run(settings, spark, D1, D2)


# A copy's bronze lines name the original landing folder as their source file
MOVED = (*LINEAGE, "_source_file")


def copy_of_basic(basic, make_settings, tmp_path: Path):
    """A private copy of the `basic` landing zone and warehouse → (landing, settings).
    Compare its tables with `drop=MOVED`: `_source_file` holds absolute paths."""
    root, _, _ = basic
    shutil.copytree(root / "landing", tmp_path / "landing")
    shutil.copytree(root / "wh", tmp_path / "wh")
    return tmp_path / "landing", make_settings(tmp_path / "landing", TEST_TENANTS)


def test_run_conserves_and_deduplicates(spark, basic) -> None:
    _, settings, result = basic
    acme1 = stats_of(result, "acme", D1)
    assert (acme1.landed_lines, acme1.blank_lines) == (5, 1)
    assert (acme1.accepted, acme1.duplicates, acme1.rejected) == (3, 1, 1)
    assert acme1.rejected_by_reason == {"invalid_json": 1}
    acme2 = stats_of(result, "acme", D2)
    assert (acme2.accepted, acme2.duplicates) == (1, 1)  # m1 was already accepted on D1
    umbrella = stats_of(result, "umbrella", D1)
    assert not umbrella.is_registered
    assert umbrella.rejected_by_reason == {"unknown_tenant": 1}

    events = read(spark, settings, "silver.events")
    assert events.groupBy("tenant_id", "message_id").count().where("count > 1").count() == 0
    assert events.where("tenant_id = 'acme'").count() == 4
    survivor = events.where("tenant_id = 'acme' AND message_id = 'm1'").first()
    assert survivor.delivery_date == dt.date(2026, 3, 5)
    assert events.where("tenant_id = 'umbrella'").count() == 0
    assert read(spark, settings, "bronze.events").where("tenant_id = 'umbrella'").count() == 1
    ledger = read(spark, settings, "ops.pipeline_runs").where(F.col("run_id") == result.run_id)
    assert sorted(r.status for r in ledger.collect()) == ["started", "succeeded"]


def test_redelivery_weeks_later_does_not_double_count(spark, basic, make_settings, tmp_path):
    landing, settings = copy_of_basic(basic, make_settings, tmp_path)
    before = read(spark, settings, "silver.events").localCheckpoint()
    copy = (landing / "events/tenant_id=acme" / f"delivery_date={D1}" / "part-0.jsonl").read_text()
    write_delivery(landing, "acme", D3, copy.splitlines())
    result = run(settings, spark, D3)
    late = stats_of(result, "acme", D3)
    assert (late.accepted, late.duplicates, late.rejected) == (0, 4, 1)
    assert_same_rows(read(spark, settings, "silver.events"), before, drop=MOVED)


def test_late_file_and_shrunken_redelivery_restate(spark, basic, make_settings, tmp_path):
    landing, settings = copy_of_basic(basic, make_settings, tmp_path)  # D1 then D2
    # a late file lands in D1's folder, with one new event and one dated two days earlier
    write_delivery(landing, "acme", D1, [ev("m5"), ev("m6", "2026-03-03T12:00:00Z")],
                   name="late-1.jsonl")  # fmt: skip
    run(settings, spark, D1)
    ids = {r.message_id for r in read(spark, settings, "silver.events")
           .where("tenant_id = 'acme'").collect()}  # fmt: skip
    assert ids == {"m1", "m2", "m3", "m4", "m5", "m6"}
    # D1 is re-delivered whole without m1 and without the late file: D2's copy of m1 survives
    (landing / "events/tenant_id=acme" / f"delivery_date={D1}" / "late-1.jsonl").unlink()
    write_delivery(landing, "acme", D1, [ev("m2"), ev("m3")])
    run(settings, spark, D1)
    events = read(spark, settings, "silver.events").where("tenant_id = 'acme'")
    assert {r.message_id: r.delivery_date for r in events.collect()} == {
        "m1": dt.date(2026, 3, 6),
        "m2": dt.date(2026, 3, 5),
        "m3": dt.date(2026, 3, 5),
        "m4": dt.date(2026, 3, 6),
    }
    # ...and the result equals a fresh replay of the landing zone as it is now
    fresh = make_settings(landing, TEST_TENANTS, name="fresh")
    run(fresh, spark, D1, D2)
    for table in SILVER_TABLES:
        assert_same_rows(read(spark, settings, table), read(spark, fresh, table), drop=MOVED)


def _commit_paths(table_dir: Path, version: int) -> list[str]:
    log = table_dir / "_delta_log" / f"{version:020d}.json"
    paths = []
    for line in log.read_text().splitlines():
        action = json.loads(line)
        for kind in ("add", "remove"):
            if kind in action:
                paths.append(action[kind]["path"])
    return paths


def test_tenant_scoped_run_touches_only_its_partitions(spark, basic, make_settings, tmp_path):
    from delta.tables import DeltaTable

    landing, settings = copy_of_basic(basic, make_settings, tmp_path)
    before = {}
    for table in ("bronze.events", *SILVER_TABLES):
        path = settings.table_path(table)
        before[table] = DeltaTable.forPath(spark, path).history(1).first().version
    crafted = [ev("g3"), ev("g4", tenant_id="acme"), ev("g5", user_id="x' OR tenant_id='acme"),
               ev("g6", group_id="acme/../globex", anonymous_id="tenant_id=acme")]  # fmt: skip
    write_delivery(landing, "globex", D1, crafted, name="late.jsonl")
    result = run(settings, spark, D1, tenants=["globex"])
    assert {s.tenant_id for s in result.stats} == {"globex"}
    for table, version in before.items():
        table_dir = Path(settings.table_path(table))
        latest = DeltaTable.forPath(spark, str(table_dir)).history(1).first().version
        touched = [p for v in range(version + 1, latest + 1) for p in _commit_paths(table_dir, v)]
        if table in ("bronze.events", "silver.events"):
            assert touched, f"{table} was not rewritten"
        assert all(p.startswith("tenant_id=globex/") for p in touched), (table, touched)


def test_invalid_landing_tenant_folder_is_refused(spark, make_settings, tmp_path) -> None:
    landing = tmp_path / "landing"
    write_delivery(landing, "Bad Tenant", D1, [ev("x")])
    settings = make_settings(landing, TEST_TENANTS)
    result = execute(settings, "run", [dt.date(2026, 3, 5)], None, spark=spark, through="silver")
    assert result.status == "failed"
    assert "tenant_id=Bad Tenant" in (result.error or "")
    assert not Path(settings.table_path("bronze.events")).exists()


def test_conservation_violation_fails_the_run(spark, make_settings, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    land_basic(landing)
    settings = make_settings(landing, TEST_TENANTS)
    real = silver_events.rank_copies

    def lossy(events):  # a stage that silently loses one event
        return real(events).where("message_id != 'm3'")

    monkeypatch.setattr(silver_events, "rank_copies", lossy)
    result = execute(settings, "run", [dt.date(2026, 3, 5)], None, spark=spark, through="silver")
    assert result.status == "failed"
    assert "conservation violated" in (result.error or "")
    runs = read(spark, settings, "ops.pipeline_runs").where(F.col("run_id") == result.run_id)
    assert {r.status for r in runs.collect()} == {"started", "failed"}


@pytest.mark.parametrize("bad", ["x' OR '1'='1", "../etc", "a,b", "ACME", "acmе"])
def test_partition_predicates_refuse_bad_tenants(bad) -> None:
    from jobs.delta_io import partition_predicate
    from jobs.validation import InputError

    with pytest.raises(InputError):
        partition_predicate({bad: [dt.date(2026, 3, 5)]}, "event_date")


def test_stages_count_their_own_spark_jobs_and_restore_the_outer_group(spark, make_settings):
    from jobs.context import RunContext, configure_logging

    ctx = RunContext(spark, make_settings(), "run_test", "test", b"k" * 16)
    sc = spark.sparkContext
    with ctx.stage("outer"):
        outer_group = sc.getLocalProperty("spark.jobGroup.id")
        with ctx.stage("inner"):
            spark.range(10).count()
            spark.range(10).collect()
        assert sc.getLocalProperty("spark.jobGroup.id") == outer_group
        spark.range(5).count()
    assert sc.getLocalProperty("spark.jobGroup.id") is None
    assert ctx.spark_jobs["inner"] >= 2
    assert ctx.spark_jobs["outer"] >= 1
    assert set(ctx.timings) == {"outer", "inner"}
    inner = ctx.spark_work["inner"]  # exact, from the project's listener (jvm/src)
    assert inner["jobs"] == ctx.spark_jobs["inner"]
    assert inner["tasks"] >= inner["stages"] >= inner["jobs"]
    with ctx.stage("shuffle"):
        spark.range(0, 100, 1, 4).groupBy((F.col("id") % 7).alias("k")).count().collect()
    assert ctx.spark_work["shuffle"]["shuffle_write_bytes"] > 0
    with pytest.raises(ValueError, match="LAKEHOUSE_LOG_LEVEL"):
        configure_logging("run_test", "CHATTY")


def test_optimized_writes_give_one_file_per_partition(spark, tmp_path) -> None:
    """The profiles' `spark.databricks.delta.optimizeWrite.enabled`: rows of four
    tenant-date partitions spread over 8 tasks, rewritten with replaceWhere, land as one
    file per partition (without it, as the first write shows: a file per task and
    partition). The conftest fixture turns the setting off again after the test."""
    rows = [(t, dt.date(2026, 3, d), i) for t in ("acme", "globex") for d in (5, 6)
            for i in range(40)]  # fmt: skip
    df = spark.createDataFrame(rows, "tenant_id string, event_date date, n int").repartition(8)
    path, by = str(tmp_path / "t"), ("tenant_id", "event_date")

    def files_per_partition() -> list[int]:
        live = spark.read.format("delta").load(path).inputFiles()
        parents = [f.rsplit("/", 1)[0] for f in live]
        return sorted(parents.count(p) for p in set(parents))

    key = "spark.databricks.delta.optimizeWrite.enabled"
    spark.conf.set(key, "false")
    replace_partitions(df, path, "true", by)
    assert max(files_per_partition()) > 1
    spark.conf.set(key, "true")
    for tenant in ("acme", "globex"):
        only = f"tenant_id = '{tenant}'"
        replace_partitions(df.where(only), path, only, by)
    assert files_per_partition() == [1, 1, 1, 1]
    assert spark.read.format("delta").load(path).count() == len(rows)


def test_local_sessions_write_files_without_a_child_process_each(spark, tmp_path) -> None:
    """The local profile's file system (jvm/src/lakehouse/hadoop) sets the permissions
    Hadoop's own does, through java.nio instead of a `chmod` process per file."""
    import stat

    assert spark.conf.get("spark.hadoop.fs.file.impl") == "lakehouse.hadoop.NoForkLocalFileSystem"
    jvm = spark.sparkContext._jvm
    fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(spark.sparkContext._jsc.hadoopConfiguration())
    assert fs.getRaw().getClass().getName() == "lakehouse.hadoop.NoForkRawLocalFileSystem"
    spark.range(3).write.format("delta").save(str(tmp_path / "t"))
    spark.range(2).write.format("delta").mode("append").save(str(tmp_path / "t"))
    assert spark.read.format("delta").load(str(tmp_path / "t")).count() == 5
    data = next((tmp_path / "t").glob("*.parquet"))
    assert stat.S_IMODE(data.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "t" / "_delta_log").stat().st_mode) == 0o755
    path = jvm.org.apache.hadoop.fs.Path(f"file://{data}")
    fs.setPermission(path, jvm.org.apache.hadoop.fs.permission.FsPermission.createImmutable(0o600))
    assert stat.S_IMODE(data.stat().st_mode) == 0o600
    assert not fs.getFileLinkStatus(path).isSymlink()


def test_a_materialized_slice_is_computed_once_though_written_to_the_table_it_reads(
    spark, make_settings
) -> None:
    """`delta_io.materialize`: a slice that reads the table it is published to is computed
    once. A persisted one is not: after the write, Spark computes it again from the
    rewritten table on its next use (here: a Python function counts the rows it sees, 10
    with `persist()`), and `release` drops what was kept."""
    from pyspark.sql.types import LongType

    from jobs.context import RunContext

    ctx = RunContext(spark, make_settings(), "run_test", "test", b"k" * 16)
    path = str(Path(ctx.settings.warehouse) / "t")
    rows = [(t, i) for t in ("acme", "globex") for i in range(5)]
    spark.createDataFrame(rows, "tenant_id string, n bigint").write.format("delta").partitionBy(
        "tenant_id"
    ).save(path)
    seen = spark.sparkContext.accumulator(0)

    def double(n: int) -> int:
        seen.add(1)
        return 2 * n

    slice_ = materialize(
        spark.read.format("delta").load(path).where("tenant_id = 'acme'")
        .select("tenant_id", F.udf(double, LongType())("n").alias("n"))
    )  # fmt: skip
    assert sorted(r.n for r in slice_.collect()) == [0, 2, 4, 6, 8]
    replace_partitions(slice_, path, "tenant_id = 'acme'", ("tenant_id",))
    with ctx.stage("again"):
        assert sorted(r.n for r in slice_.collect()) == [0, 2, 4, 6, 8]
    assert seen.value == 5  # each row once: not recomputed after the write
    assert ctx.spark_jobs["again"] == 1  # read back, nothing listed or planned again
    kept = spark.sparkContext._jsc.sc().getPersistentRDDs().size()
    release(slice_)
    assert spark.sparkContext._jsc.sc().getPersistentRDDs().size() == kept - 1
    assert sorted(r.n for r in spark.read.format("delta").load(path).collect()) == [
        0, 0, 1, 2, 2, 3, 4, 4, 6, 8
    ]  # fmt: skip
