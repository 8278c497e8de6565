"""The one place a SparkSession is built.

Jobs receive the session; they never create one. The builder wires Delta in (extensions,
catalog, jars), applies the profile's master, memory and shuffle settings, pins the
session time zone to UTC (event instants are UTC; tenant-local dates are derived
explicitly) and keeps the console quiet.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.config import PROJECT_DIR, Settings
from jobs.jars import JARS_DIR, LOCAL_FS_CLASSES, jvm_jar, resolved_jars


def delta_jar_conf(settings: Settings) -> dict[str, str]:
    """`spark.jars` from pre-downloaded or cached jars, else Maven coordinates via Ivy."""
    delta = settings.pipeline.delta
    if delta.jars_dir:
        jars = sorted(Path(delta.jars_dir).glob("*.jar"))
        if not jars:
            conf_file = settings.conf_dir / "lakehouse.yaml"
            raise FileNotFoundError(f"{conf_file}: delta.jars_dir: no *.jar in {delta.jars_dir}")
        return {"spark.jars": ",".join(str(j) for j in jars)}
    cached = resolved_jars(delta, JARS_DIR)
    if cached:
        return {"spark.jars": ",".join(str(j) for j in cached)}
    return {
        "spark.jars.packages": f"{delta.maven_artifact}:{delta.version}",
        "spark.jars.ivy": str(PROJECT_DIR / ".cache" / "ivy"),
    }


def session_conf(settings: Settings, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The full Spark configuration for `settings`' profile (exposed for tests and docs)."""
    profile = settings.profile
    conf: dict[str, str] = {
        "spark.master": profile.master,
        "spark.driver.memory": profile.driver_memory,
        "spark.sql.shuffle.partitions": str(profile.shuffle_partitions),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": f"{settings.warehouse.rstrip('/')}/_spark_catalog",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.debug.maxToStringFields": "500",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.driver.extraJavaOptions": (
            f"-Dlog4j2.configurationFile=file:{settings.conf_dir / 'log4j2.properties'}"
            f" -Dderby.system.home={PROJECT_DIR / '.cache' / 'derby'}"
        ),
    }
    if profile.master.startswith("local"):
        conf.update(
            {
                "spark.ui.enabled": "false",
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.pyspark.python": sys.executable,
            }
        )
    conf.update(delta_jar_conf(settings))
    conf.update(profile.spark_conf)
    if overrides:
        conf.update(overrides)
    ours = jvm_jar()
    if conf["spark.master"].startswith("local") and ours is not None:
        # the project's JVM classes (jobs.jars.build_jvm_jar) on the driver's class path:
        # the Spark job counter, and file:// without a chmod/readlink child process per
        # file (a profile or override that names its own file system classes keeps them)
        extra = conf.get("spark.driver.extraClassPath")
        conf["spark.driver.extraClassPath"] = f"{extra}:{ours}" if extra else str(ours)
        for key, value in LOCAL_FS_CLASSES.items():
            conf.setdefault(key, value)
    return conf


SUBMIT_OWNS = ("spark.master", "spark.driver.memory", "spark.jars", "spark.jars.packages",
               "spark.jars.ivy", "spark.driver.extraJavaOptions", "spark.driver.host",
               "spark.driver.bindAddress")  # fmt: skip


def build_session(
    settings: Settings, app_name: str = "lakehouse", overrides: Mapping[str, str] | None = None
) -> SparkSession:
    """Create (or return the running) SparkSession configured for `settings`."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = session_conf(settings, overrides)
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # Started by spark-submit (cluster mode): its --master, driver memory and --jars
        # already shaped the driver JVM, and every --conf it was given is the submitter's
        # choice for this run: both win over the profile's.
        from pyspark import SparkConf

        submitted = {key for key, _ in SparkConf().getAll()}
        for key in (*SUBMIT_OWNS, *submitted):
            conf.pop(key, None)
        # nor do the project's JVM classes come along: executors elsewhere lack the jar
        for key, ours in LOCAL_FS_CLASSES.items():
            if conf.get(key) == ours:
                del conf[key]
    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


@contextmanager
def conf_for_the_call(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Set session `settings` for the block only; each key gets its previous value back (or
    is unset again) afterwards, also when the block raises."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
