"""Make `layer.name` resolvable in Spark SQL for any process (SPEC §9 `lakehouse sql`).

The session catalog is in-memory, so each process registers the Delta tables it finds under
the warehouse (`<warehouse>/<layer>/<name>/_delta_log`) as external tables. Only metadata
is touched; no data is read.
"""

from __future__ import annotations

import re

from pyspark.sql import SparkSession

from jobs.config import Settings

LAYERS = ("bronze", "silver", "gold", "ops")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def list_tables(spark: SparkSession, settings: Settings) -> list[str]:
    """`layer.name` of every Delta table under the warehouse."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    names = []
    for layer in LAYERS:
        root = jvm.org.apache.hadoop.fs.Path(f"{settings.warehouse.rstrip('/')}/{layer}")
        fs = root.getFileSystem(conf)
        if not fs.exists(root):
            continue
        for status in fs.listStatus(root):
            name = status.getPath().getName()
            log = jvm.org.apache.hadoop.fs.Path(status.getPath(), "_delta_log")
            if status.isDirectory() and _NAME.match(name) and fs.exists(log):
                names.append(f"{layer}.{name}")
    return sorted(names)


def register_tables(spark: SparkSession, settings: Settings) -> list[str]:
    names = list_tables(spark, settings)
    for layer in sorted({n.split(".")[0] for n in names}):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
    for name in names:
        path = settings.table_path(name).replace("'", "\\'")
        spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION '{path}'")
    return names
