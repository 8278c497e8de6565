"""Reading and publishing Delta tables.

Publishing is one Delta commit per table and run: `replaceWhere` with an explicit
tenant + date predicate swaps exactly those partitions, atomically, and Delta checks that
every written row lies inside the predicate. Readers see the old or the new partitions,
never a mix. Predicates are built only from validated tenant ids and `date` objects.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.tables import IDENTIFIER_COLUMNS
from jobs.validation import require_tenant_id

Dates = dict[str, set[dt.date]]  # tenant → dates: the partitions a stage reads or rewrites


def date_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every date from `first` to `last`, both included (empty when last < first)."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _sql_date(value: dt.date) -> str:
    if not isinstance(value, dt.date):
        raise TypeError(f"expected a date, got {value!r}")
    return f"DATE'{value.isoformat()}'"


def partition_predicate(parts: Mapping[str, Iterable[dt.date]], date_column: str) -> str:
    """`(tenant_id = 'a' AND d IN (DATE'…', …)) OR …`; `FALSE` when `parts` is empty."""
    clauses = []
    for tenant in sorted(parts):
        dates = sorted(set(parts[tenant]))
        if not dates:
            continue
        require_tenant_id(tenant, "partition predicate")
        in_list = ", ".join(_sql_date(d) for d in dates)
        clauses.append(f"(tenant_id = '{tenant}' AND {date_column} IN ({in_list}))")
    return " OR ".join(clauses) if clauses else "FALSE"


def tenants_predicate(tenants: Iterable[str]) -> str:
    names = sorted(set(tenants))
    for t in names:
        require_tenant_id(t, "tenant predicate")
    return "tenant_id IN ({})".format(", ".join(f"'{t}'" for t in names)) if names else "FALSE"


def _log_versions(spark: SparkSession, path: str) -> list[int]:
    """Commit versions present in `<path>/_delta_log` (a listing; no Spark job)."""
    jvm = spark.sparkContext._jvm
    log_dir = jvm.org.apache.hadoop.fs.Path(f"{path.rstrip('/')}/_delta_log")
    fs = log_dir.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(log_dir):
        return []
    versions = []
    for status in fs.listStatus(log_dir):
        name = status.getPath().getName()
        if name.endswith(".json") and name[:-5].isdigit():
            versions.append(int(name[:-5]))
    return versions


LOG_ACTIONS = (
    "commitInfo struct<userMetadata: string, operation: string>, "
    "add struct<partitionValues: map<string, string>>, "
    "remove struct<partitionValues: map<string, string>>"
)


def partitions_written(spark: SparkSession, path: str, run_id: str) -> DataFrame | None:
    """What the run's commits to the table at `path` changed, read from the Delta log.

    Runs stamp their commits with their run id (`commitInfo.userMetadata`, set by
    `RunContext`). One row per partition the run added or removed files in: its partition
    values (as a `k=v/…` string), the commits, files added and files removed. None when
    there is no table.
    """
    versions = _log_versions(spark, path)
    if not versions:
        return None
    log = f"{path.rstrip('/')}/_delta_log"
    files = [f"{log}/{v:020d}.json" for v in sorted(versions)]  # explicit: `_` dirs are hidden
    lines = spark.read.text(files).select(
        F.from_json("value", LOG_ACTIONS).alias("a"), F.col("_metadata.file_name").alias("commit")
    )
    commits = lines.where(F.col("a.commitInfo.userMetadata") == run_id).select("commit")
    actions = lines.join(commits, "commit", "left_semi")
    values = F.coalesce(F.col("a.add.partitionValues"), F.col("a.remove.partitionValues"))
    as_text = F.array_join(
        F.transform(
            F.array_sort(F.map_entries(values)), lambda e: F.concat_ws("=", e["key"], e["value"])
        ),
        "/",
    )
    return (
        actions.where(values.isNotNull())
        .groupBy(as_text.alias("partition"))
        .agg(
            F.countDistinct("commit").alias("commits"),
            F.count(F.col("a.add")).alias("files_added"),
            F.count(F.col("a.remove")).alias("files_removed"),
        )
        .orderBy("partition")
    )


def table_exists(spark: SparkSession, path: str) -> bool:
    return bool(_log_versions(spark, path))


def current_version(spark: SparkSession, path: str) -> int | None:
    """The latest committed version, or None when there is no table at `path`."""
    versions = _log_versions(spark, path)
    return max(versions) if versions else None


def read_table(spark: SparkSession, path: str, version: int | None = None) -> DataFrame | None:
    """The table (pinned to `version` when given), or None if it does not exist yet.

    Pinning matters when a job reads a table and then overwrites some of its partitions:
    the read must keep seeing the snapshot it started from.
    """
    if version is None:
        version = current_version(spark, path)
        if version is None:
            return None
    return spark.read.format("delta").option("versionAsOf", version).load(path)


# Delta's optimistic concurrency: a commit that lost a race with a concurrent writer. Runs
# of different tenants write disjoint partitions, so the only races are table creation and
# metadata; re-running the write (it replaces exactly its own partitions) is always safe.
CONFLICTS = (
    "ConcurrentAppendException", "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException", "ConcurrentTransactionException",
    "ProtocolChangedException", "MetadataChangedException", "DELTA_CONCURRENT",
    "DELTA_PROTOCOL_CHANGED", "DELTA_METADATA_CHANGED",
)  # fmt: skip
COMMIT_ATTEMPTS = 5
log = logging.getLogger("lakehouse.delta_io")


def materialize(df: DataFrame) -> DataFrame:
    """`df`, computed by its first action and kept (memory, then local disk) for the
    actions after it, like a persisted frame — but as a local checkpoint: a persisted
    frame that reads a Delta table is re-planned by Spark after every write to that table
    (the write re-caches every cached plan over its path), which for a slice published to
    the table it reads (silver.events over its earlier dates, gold windows over earlier
    partitions) is a second planning and file listing of all its inputs. Free it with
    `release` once written."""
    return df.localCheckpoint(eager=False)


def release(df: DataFrame) -> None:
    """Drop the blocks `materialize` kept for `df`: only for a frame `materialize` returned
    (on any other local checkpoint it would drop rows that cannot be recomputed)."""
    plan = df._jdf.queryExecution().analyzed()
    if plan.getClass().getSimpleName() == "LogicalRDD":
        plan.rdd().unpersist(False)


def is_conflict(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(name in text for name in CONFLICTS)


def with_commit_retry(write: Callable[[], None], path: str) -> None:
    """Run `write`; on a Delta commit conflict, retry up to COMMIT_ATTEMPTS times with
    jittered backoff (the write is recomputed and re-validated by Delta each time)."""
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            write()
            return
        except Exception as exc:
            if attempt == COMMIT_ATTEMPTS or not is_conflict(exc):
                raise
            pause = random.uniform(0.5, 1.5) * attempt
            log.warning("commit to %s lost a race with a concurrent writer (attempt %d/%d): "
                        "retrying in %.1fs", path, attempt, COMMIT_ATTEMPTS, pause)  # fmt: skip
            time.sleep(pause)


_STATS_TYPES = (T.NumericType, T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType)


def stats_option(schema: T.StructType, partition_by: Iterable[str]) -> dict[str, str]:
    """Table properties for a new table: min/max statistics only on columns that hold no
    identifier (`tables.IDENTIFIER_COLUMNS`) and whose type Delta can skip on. Partition
    columns need none."""
    if not IDENTIFIER_COLUMNS.intersection(schema.names):
        return {}
    kept = [
        f.name
        for f in schema.fields
        if f.name not in IDENTIFIER_COLUMNS
        and f.name not in set(partition_by)
        and isinstance(f.dataType, _STATS_TYPES)
    ]
    if not kept:
        return {"delta.dataSkippingNumIndexedCols": "0"}
    return {"delta.dataSkippingStatsColumns": ",".join(f"`{c}`" for c in kept)}


def replace_partitions(
    df: DataFrame, path: str, predicate: str, partition_by: tuple[str, ...]
) -> None:
    """Atomically replace the rows matching `predicate` with `df` (one Delta commit).

    Creates the table, partitioned by `partition_by`, on first write. Columns added to a
    table's output are added to the table (Delta `mergeSchema`; partitions written before
    hold NULL there until rebuilt); a changed type still fails the write. A commit that
    races a concurrent writer is retried (`with_commit_retry`).
    """
    spark = df.sparkSession

    def write() -> None:
        writer = df.write.format("delta")
        if not table_exists(spark, path):
            writer = writer.options(**stats_option(df.schema, partition_by))
            writer.partitionBy(*partition_by).mode("append").save(path)
            return
        writer.mode("overwrite").option("replaceWhere", predicate).option(
            "mergeSchema", "true"
        ).save(path)

    with_commit_retry(write, path)


def append(df: DataFrame, path: str, partition_by: tuple[str, ...] = ()) -> None:
    """Append rows (ledger tables); creates the table on first write. New columns of a
    ledger row are added to the table (older rows hold NULL there)."""

    def write() -> None:
        writer = df.write.format("delta").mode("append").option("mergeSchema", "true")
        if not table_exists(df.sparkSession, path):
            writer = writer.options(**stats_option(df.schema, partition_by))
            if partition_by:
                writer = writer.partitionBy(*partition_by)
        writer.save(path)

    with_commit_retry(write, path)
