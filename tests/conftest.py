"""One session-scoped Spark + Delta for the whole suite; every test writes under tmp_path."""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from pyspark.sql import DataFrame, SparkSession

from jobs.config import PROJECT_DIR, Settings, load_settings
from jobs.spark import build_session, session_conf

TEST_PII_KEY = "test-key-0123456789abcdef"
LINEAGE = ("_run_id", "_ingested_at")
CONF_FILES = (
    "quality.yaml",
    "lakehouse.yaml",
    "event_taxonomy.yaml",
    "metrics.yaml",
    "health_score.yaml",
    "activation.yaml",
    "log4j2.properties",
)
TEST_TENANTS = (("acme", "America/New_York"), ("globex", "Asia/Kolkata"), ("initech", "UTC"))


# `make test` runs the suite on two pytest-xdist workers (`--dist loadscope`, with the units
# below; docs/decisions.md). A unit of work is a module, so its module-scoped warehouses are
# built once; the modules that read the session's `tiny` warehouse are one unit, so that is
# built once too. Units start heaviest first, so the last one left running is short. The
# figures are each unit's seconds in a fresh-clone run (`pytest --durations`), rounded: a
# stale one can only cost balance, never a result. Units not listed are the short ones.
TINY_READERS = ("tests/test_backfill.py", "tests/test_e2e_tiny.py", "tests/test_gates.py")
UNIT_SECONDS = {
    "tiny": 490,
    "tests/test_orchestration.py": 420,
    "tests/test_ordering.py": 370,
    "tests/test_crash.py": 350,
    "tests/test_erasure.py": 310,
    "tests/test_pipeline.py": 150,
    "tests/test_people.py": 140,
    "tests/test_bench.py": 130,
    "tests/test_concurrency.py": 90,
    "tests/test_gold.py": 85,
    "tests/test_accounts.py": 75,
    "tests/test_hostile_input.py": 40,
}


def unit_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return "tiny" if module in TINY_READERS else module


def _reads_tiny(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get("tiny", ()) if info is not None else ()
    return bool(defs) and defs[-1].scope == "session"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest unit first (collection order within a unit and among the short ones)."""
    stray = sorted({unit_of(i.nodeid) for i in items if _reads_tiny(i)} - {"tiny"})
    if stray:  # a new reader of `tiny` would build it again on the other worker
        raise pytest.UsageError(f"add {', '.join(stray)} to TINY_READERS in tests/conftest.py")
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        first_seen.setdefault(unit_of(item.nodeid), i)
    items.sort(
        key=lambda it: (-UNIT_SECONDS.get(unit_of(it.nodeid), 0), first_seen[unit_of(it.nodeid)])
    )


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadscope` with our units as its scopes (pytest-xdist's own `loadgroup`
    cannot regroup tests under pytest 9)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return ByUnit(config, log)


@pytest.fixture(scope="session", autouse=True)
def _pii_key() -> None:
    os.environ["LAKEHOUSE_PII_KEY"] = TEST_PII_KEY


# SQL settings for a few rows per query (the suite's session, and the cluster run of
# tests/test_orchestration.py): every one of them changes cost, never results.
SMALL_DATA_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
    # Test data is a few rows per query, so compiling Java for each of thousands of
    # distinct plans costs more than interpreting them: 187 s → 120 s on one
    # test_people case (docs/benchmarks.md). Results are the same either way.
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    # Adaptive execution re-plans every shuffle stage at run time; on a few rows that
    # is pure overhead (a tiny delivery: 822 → 461 Spark jobs, identical tables —
    # docs/benchmarks.md). Production profiles keep it on.
    "spark.sql.adaptive.enabled": "false",
    # Each broadcast join is its own Spark job (collect, build, ship); on a few rows a
    # sort-merge join inside the stage is cheaper. A hand-built delivery: 119 of its
    # 566 jobs were broadcast exchanges; off, 5–15 % less CPU per delivery
    # (docs/benchmarks.md). Explicit broadcast hints still hold; production keeps it.
    "spark.sql.autoBroadcastJoinThreshold": "-1",
    # The profiles shuffle before each write so that a partition is one file; with a few
    # rows that shuffle is a stage per write and nothing to gain. Tested on its own
    # (tests/test_pipeline.py::test_optimized_writes_give_one_file_per_partition).
    "spark.databricks.delta.optimizeWrite.enabled": "false",
}


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterable[SparkSession]:
    conf = write_conf(tmp_path_factory.mktemp("session_conf"), TEST_TENANTS)
    settings = load_settings(conf_dir=conf, warehouse=str(tmp_path_factory.mktemp("session_wh")))
    java_options = session_conf(settings)["spark.driver.extraJavaOptions"]
    session = build_session(
        settings,
        app_name="lakehouse-tests",
        overrides={
            "spark.master": "local[2]",
            "spark.default.parallelism": "2",
            # The suite is a throughput job: ~0.7 GiB live after a full GC an hour in
            # (jmap -histo:live), mostly Catalyst plans, and a stream of short-lived garbage.
            # G1 with 5 GiB ran concurrent marking back to back late in the suite (580
            # cycles by the ordering tests; its threads took ~30 % of the JVM's CPU over a
            # 120 s window, /proc/<pid>/task). The parallel collector does no concurrent
            # marking; 8 GiB keeps its full collections rare.
            "spark.driver.memory": "8g",
            "spark.driver.extraJavaOptions": f"{java_options} -XX:+UseParallelGC",
            **SMALL_DATA_CONF,
            # The suite opens thousands of Delta tables (a warehouse per test); Delta keeps
            # each table's log and snapshot plans for 60 min by default and the SQL status
            # store keeps 1000 query plans. With 2 GiB that filled the old generation
            # two-thirds into the suite and the rest ran in back-to-back full GCs (800 s of
            # GC, the CI timeout). Bounded here and cleared per module (`_release_memory`).
            "spark.databricks.delta.delta.log.cacheSize": "64",
            "spark.sql.ui.retainedExecutions": "20",
            "spark.ui.retainedJobs": "50",
            "spark.ui.retainedStages": "50",
            # Two workers share two cores (`make test`): a driver busy planning can answer
            # its own local executor's heartbeat late, and past the default 120 s the
            # executor is declared lost for good — every later test of that worker fails.
            "spark.network.timeout": "1800s",
            # LAKEHOUSE_TEST_SPARK_CONF="key=value;key=value" overrides for experiments
            **dict(
                kv.split("=", 1)
                for kv in os.environ.get("LAKEHOUSE_TEST_SPARK_CONF", "").split(";")
                if kv
            ),
        },
    )
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _small_data_conf() -> Iterable[None]:
    """After each test, the suite's small-data settings again. A CLI command or notebook
    run in this process builds its session from the project's profile, and `getOrCreate`
    applies that profile's SQL settings to the running session: one `lakehouse gate` in
    tests/test_gates.py used to turn adaptive execution, 8 shuffle partitions and 8 log
    replay partitions back on for every later module (test_gold alone: 158 s → 202 s)."""
    yield
    session = SparkSession.getActiveSession()
    if session is None:
        return
    for key, value in SMALL_DATA_CONF.items():
        if session.conf.get(key, None) != value:
            session.conf.set(key, value)


@pytest.fixture(scope="module", autouse=True)
def _release_memory() -> Iterable[None]:
    """After each module: drop cached DataFrames and Delta's cached table logs, so the
    driver's heap holds one module's state, not the whole suite's."""
    yield
    gc.collect()  # Python's cycles hold py4j references that keep JVM plans alive
    session = SparkSession.getActiveSession()
    if session is not None:
        session.catalog.clearCache()
        session._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


TINY_DAYS = [dt.date(2026, 3, 5) + dt.timedelta(days=i) for i in range(3)]


@pytest.fixture(scope="session")
def tiny(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory):
    """The `tiny` preset's first 3 deliveries run end to end once per session (read-only:
    tests that write copy the warehouse first). → (settings, RunResult, landing path)."""
    from jobs.generate import DEFAULT_START, generate_landing
    from jobs.pipeline import execute

    assert TINY_DAYS[0] == DEFAULT_START
    root = tmp_path_factory.mktemp("tiny")
    landing = root / "landing"
    generate_landing("tiny", 3, 7, landing, DEFAULT_START)
    settings = load_settings(landing=str(landing), warehouse=str(root / "wh"))
    # the run's own log, at DEBUG, kept for the secrets scan (tests/test_e2e_tiny.py)
    handler = logging.FileHandler(root / "run.log", encoding="utf-8")
    try:
        with runs_also_log_to(handler):
            result = execute(settings, "run", TINY_DAYS, None, spark=spark)
    finally:
        handler.close()
    assert result.status == "succeeded", result.error
    return settings, result, landing


@contextmanager
def runs_also_log_to(handler: logging.Handler) -> Iterator[None]:
    """Runs started inside the block also send their log, at DEBUG, to `handler`."""
    from jobs import pipeline

    real = pipeline.configure_logging

    def also(run_id: str, level: int | str | None = None) -> logging.Logger:
        logger = real(run_id, "DEBUG")
        logger.addHandler(handler)
        return logger

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "configure_logging", also)
        try:
            yield
        finally:
            logging.getLogger("lakehouse").removeHandler(handler)


def write_driver_conf(target: Path, master: str = "local[1]") -> Path:
    """A conf dir for a driver started in a subprocess (`python -m jobs.cli`): the suite's
    small-data settings in the local profile, and little memory beside the suite's JVM."""
    conf = write_conf(target, TEST_TENANTS)
    doc = yaml.safe_load((conf / "lakehouse.yaml").read_text())
    local = doc["profiles"]["local"]
    local.update(master=master, driver_memory="1g", shuffle_partitions=2)
    local["spark_conf"] = {**local.get("spark_conf", {}), **SMALL_DATA_CONF}
    (conf / "lakehouse.yaml").write_text(yaml.safe_dump(doc))
    return conf


def write_conf(target: Path, tenants: Sequence[tuple[str, str]] | None = None) -> Path:
    """A conf dir copied from the project's, optionally with another tenant registry.

    Hand-built test deliveries are mostly edge cases, so most of their lines may be
    rejects: the rejected-share gate is opened here (tests/test_gates.py runs the
    project's own conf)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in CONF_FILES:
        shutil.copyfile(PROJECT_DIR / "conf" / name, target / name)
    quality = yaml.safe_load((target / "quality.yaml").read_text())
    quality["params"]["rejected_share_max"] = 1.0
    (target / "quality.yaml").write_text(yaml.safe_dump(quality))
    if tenants is None:
        shutil.copyfile(PROJECT_DIR / "conf" / "tenants.yaml", target / "tenants.yaml")
    else:
        doc = {"tenants": [{"id": t, "timezone": tz} for t, tz in tenants]}
        (target / "tenants.yaml").write_text(yaml.safe_dump(doc))
    return target


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def factory(
        landing: Path | None = None,
        tenants: Sequence[tuple[str, str]] | None = None,
        name: str = "wh",
    ) -> Settings:
        conf = write_conf(tmp_path / f"conf_{name}", tenants)
        return load_settings(
            conf_dir=conf,
            landing=str(landing or tmp_path / "landing"),
            warehouse=str(tmp_path / name),
        )

    return factory


def track_event(mid: str, ts: str, **kw: object) -> dict:
    """A track call as the hand-built deliveries write it; `kw` adds or overrides fields
    (another `type`, `event=None`, identifiers, traits)."""
    return {"message_id": mid, "type": "track", "event": "report_viewed", "timestamp": ts,
            "schema_version": 2, **kw}  # fmt: skip


def write_delivery(
    landing: Path,
    tenant: str,
    day: str,
    lines: Sequence[str | dict],
    name: str = "part-0.jsonl",
    source: str = "events",
) -> Path:
    folder = landing / source / f"tenant_id={tenant}" / f"delivery_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


def data_tables(*layers: str) -> list[str]:
    """Every table of `layers` the pipeline writes, except silver.identity_merges: a log of
    merges as they happened (one pass sees identifiers together that daily runs saw merge
    day by day), not a function of the inputs."""
    from jobs.maintenance import all_tables

    return [
        s.name
        for s in all_tables()
        if s.name.split(".")[0] in layers and s.name != "silver.identity_merges"
    ]


def read(spark: SparkSession, settings: Settings, table: str) -> DataFrame:
    return spark.read.format("delta").load(settings.table_path(table))


def contents(df: DataFrame, drop: Sequence[str] = LINEAGE) -> DataFrame:
    return df.drop(*[c for c in drop if c in df.columns])


def assert_same_rows(left: DataFrame, right: DataFrame, drop: Sequence[str] = LINEAGE) -> None:
    """Row-for-row equality as multisets (`drop`: lineage columns), without collecting."""
    left, right = contents(left, drop), contents(right, drop)
    assert sorted(left.columns) == sorted(right.columns)
    right = right.select(left.columns)
    assert left.count() == right.count()
    assert left.exceptAll(right).count() == 0
    assert right.exceptAll(left).count() == 0
