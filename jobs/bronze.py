"""Landing → bronze: every non-blank landed line, as received, with lineage.

Landing layout (SPEC §3): `<landing>/<source>/tenant_id=<t>/delivery_date=<D>/<name>.jsonl[.gz]`.
Folders are listed through Hadoop's FileSystem API, so the same code reads a local folder,
HDFS or s3a://. Tenant ids found in folder names are validated before anything is read.

Re-running a delivery atomically replaces exactly that delivery's partitions
(tenant_id, delivery_date) of each bronze table, for the tenants that have files.

Lines of persons erased on request (`jobs.erasure`) that are re-delivered are suppressed
here, before they reach any table: old event lines are left out and counted, ticket lines
lose their requester.

A `.gz` file that cannot be decompressed (not gzip at all, truncated, corrupt) would fail
the whole read. Such a file is a file-level reject: it is left out of the delivery,
recorded in `ops.rejected_files` with its reason, and the rest of the delivery goes on. The
check costs nothing on clean deliveries: the files are tested, on the executors, only after
the first read of a delivery has failed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import erasure
from jobs.context import RunContext
from jobs.delta_io import partition_predicate, read_table, tenants_predicate
from jobs.ledger import record_rejected_files
from jobs.tables import BRONZE, OPS_ERASED_IDENTIFIERS, SOURCES
from jobs.validation import InputError, require_tenant_id

LANDED_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class Delivery:
    """The files that landed for one tenant, source and delivery date."""

    source: str
    tenant_id: str
    delivery_date: dt.date
    files: tuple[str, ...]


def discover(
    spark: SparkSession,
    landing: str,
    source: str,
    delivery_date: dt.date,
    tenants: Sequence[str] | None = None,
) -> list[Delivery]:
    """Deliveries of `source` on `delivery_date` (only `tenants` when given)."""
    jvm = spark.sparkContext._jvm
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    pattern = jvm.org.apache.hadoop.fs.Path(
        f"{landing.rstrip('/')}/{source}/tenant_id=*/delivery_date={delivery_date.isoformat()}"
    )
    fs = pattern.getFileSystem(hadoop_conf)
    statuses = fs.globStatus(pattern) or []
    found: list[Delivery] = []
    for status in statuses:
        if not status.isDirectory():
            continue
        folder = status.getPath()
        tenant = folder.getParent().getName().removeprefix("tenant_id=")
        require_tenant_id(tenant, f"landing folder {folder.getParent().toString()}")
        if tenants is not None and tenant not in tenants:
            continue
        files = sorted(
            f.getPath().toString()
            for f in fs.listStatus(folder)
            if f.isFile() and f.getPath().getName().endswith(LANDED_SUFFIXES)
        )
        if files:
            found.append(Delivery(source, tenant, delivery_date, tuple(files)))
    return sorted(found, key=lambda d: d.tenant_id)


def read_landed_lines(spark: SparkSession, deliveries: Sequence[Delivery]) -> DataFrame:
    """All lines of the deliveries' files with tenant, delivery date and source file.

    Spark decompresses `.gz` by file name and splits lines on \\n, \\r\\n and \\r.
    """
    if not deliveries:
        raise InputError("read_landed_lines: no deliveries given")
    files = [f for d in deliveries for f in d.files]
    dates = {d.delivery_date for d in deliveries}
    if len(dates) != 1:
        raise InputError("read_landed_lines: deliveries of one date at a time")
    lines = spark.read.text(files).select(
        F.col("value").alias("raw_line"), F.col("_metadata.file_path").alias("_source_file")
    )
    # The tenant comes from the folder name (validated in `discover`), never from content.
    tenant = F.regexp_extract("_source_file", r"/tenant_id=([^/]+)/delivery_date=", 1)
    return lines.select(
        tenant.alias("tenant_id"),
        F.lit(dates.pop()).alias("delivery_date"),
        "raw_line",
        "_source_file",
    )


def to_bronze(lines: DataFrame, run_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Drop blank lines; add the raw line's hash and lineage."""
    return lines.where(~F.col("raw_line").rlike(r"^\s*$")).select(
        "tenant_id",
        "delivery_date",
        "raw_line",
        F.sha2(F.col("raw_line"), 256).alias("_raw_hash"),
        "_source_file",
        F.lit(run_id).alias("_run_id"),
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
    )


def gzip_problem(content: bytes) -> str | None:
    """Why `content` is not a complete gzip stream (None when it is): runs on executors."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as stream:
            while stream.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None


def unreadable_files(spark: SparkSession, files: Sequence[str]) -> dict[str, str]:
    """The `.gz` files among `files` that do not decompress → reason. One Spark job: each
    file is read and tested by an executor; only (path, reason) pairs reach the driver."""
    compressed = [f for f in files if f.endswith(".gz")]
    if not compressed:
        return {}
    # a plain (row-at-a-time) UDF: one call per file; the lambda has no type hints from
    # which PySpark would try to infer an Arrow UDF
    problem = F.udf(lambda content: gzip_problem(content), T.StringType())
    found = (
        spark.read.format("binaryFile")
        .load(compressed)
        .select("path", problem("content").alias("reason"))
        .where(F.col("reason").isNotNull())
        .collect()
    )  # one row per broken file
    return {r.path: r.reason for r in found}


@dataclass(frozen=True)
class BronzeResult:
    """Per source: which tenants were ingested, and landed/blank line counts per tenant."""

    tenants: dict[str, tuple[str, ...]]
    landed_lines: dict[tuple[str, str], int]  # (source, tenant) → non-blank lines
    blank_lines: dict[tuple[str, str], int]
    files: dict[tuple[str, str], int]
    # (source, tenant) → lines of erased persons: events dropped, tickets redacted
    erased_lines: dict[tuple[str, str], int] = field(default_factory=dict)


def ingest(
    ctx: RunContext, delivery_date: dt.date, tenants: Sequence[str] | None = None
) -> BronzeResult:
    """Land one delivery date of every source into bronze (one commit per table)."""
    spark = ctx.spark
    result = BronzeResult({}, {}, {}, {})
    for source in SOURCES:
        deliveries = discover(spark, ctx.settings.landing, source, delivery_date, tenants)
        if deliveries:
            with ctx.stage("bronze"):
                deliveries = _ingest_source(ctx, source, delivery_date, deliveries, result)
        result.tenants[source] = tuple(d.tenant_id for d in deliveries)
        if not deliveries:
            ctx.log.info("bronze.%s: nothing landed for %s", source, delivery_date)
        for d in deliveries:
            result.files[(source, d.tenant_id)] = len(d.files)
    return result


def _count_lines(lines: DataFrame) -> list[Row]:
    """Non-blank and blank lines per tenant (one row per tenant reaches the driver)."""
    blank = F.col("raw_line").rlike(r"^\s*$")
    return (
        lines.groupBy("tenant_id")
        .agg(
            F.sum(F.when(~blank, 1).otherwise(0)).alias("n"),
            F.sum(F.when(blank, 1).otherwise(0)).alias("blank"),
        )
        .collect()
    )


def _reject_files(
    ctx: RunContext, source: str, delivery_date: dt.date, deliveries: list[Delivery],
    broken: dict[str, str],
) -> list[Delivery]:  # fmt: skip
    """Record the broken files in `ops.rejected_files`; → the deliveries without them."""
    rejected = [(d.tenant_id, f, broken[f]) for d in deliveries for f in d.files if f in broken]
    record_rejected_files(ctx, source, delivery_date, rejected)
    for tenant, file, reason in rejected:
        ctx.log.warning("bronze.%s: file rejected (%s), left out of %s/%s: %s",
                        source, reason, tenant, delivery_date, file)  # fmt: skip
    kept = [replace(d, files=tuple(f for f in d.files if f not in broken)) for d in deliveries]
    return [d for d in kept if d.files]


def _ingest_source(
    ctx: RunContext,
    source: str,
    delivery_date: dt.date,
    deliveries: list[Delivery],
    result: BronzeResult,
) -> list[Delivery]:
    """Count the landed lines per tenant, then replace the delivery's bronze partitions;
    → the deliveries ingested (without files rejected as unreadable)."""
    lines = read_landed_lines(ctx.spark, deliveries)
    try:
        counts = _count_lines(lines)  # one row per tenant
    except Exception:  # a file Spark cannot decompress fails the whole read: find it
        broken = unreadable_files(ctx.spark, [f for d in deliveries for f in d.files])
        if not broken:
            raise
        deliveries = _reject_files(ctx, source, delivery_date, deliveries, broken)
        if not deliveries:
            return []
        lines = read_landed_lines(ctx.spark, deliveries)
        counts = _count_lines(lines)
    for row in counts:
        result.landed_lines[(source, row.tenant_id)] = int(row.n)
        result.blank_lines[(source, row.tenant_id)] = int(row.blank)
    spec = BRONZE[source]
    predicate = partition_predicate(
        {d.tenant_id: [delivery_date] for d in deliveries}, "delivery_date"
    )
    rows = to_bronze(lines, ctx.run_id, ctx.started_at)
    erased = (
        erasure.erased_tokens(
            ctx.spark, ctx.path(OPS_ERASED_IDENTIFIERS.name), [d.tenant_id for d in deliveries]
        )
        if source in erasure.ERASABLE_SOURCES
        else None
    )
    if erased is None:
        ctx.gates.publish(spec, rows, predicate, raw=True)
    else:
        _publish_suppressed(ctx, source, rows, erased, predicate, result)
    ctx.log.info(
        "%s: %s tenants, %s lines for %s",
        spec.name,
        len(deliveries),
        sum(r.n for r in counts),
        delivery_date,
    )
    return deliveries


def _publish_suppressed(
    ctx: RunContext, source: str, rows: DataFrame, erased: DataFrame, predicate: str,
    result: BronzeResult,
) -> None:  # fmt: skip
    """Publish a delivery of tenants with erasure requests: old lines of erased persons are
    left out (events) or lose their requester (tickets), and counted (`erasure.suppress`)."""
    marked = erasure.suppress(rows, erased, ctx.pii_key, source).persist()
    try:
        counts = marked.where("_erased").groupBy("tenant_id").count().collect()
        for r in counts:
            result.erased_lines[(source, r.tenant_id)] = int(r["count"])
            ctx.log.info("bronze.%s: %s lines of erased persons %s for %s", source, r["count"],
                         "left out" if source == "events" else "redacted", r.tenant_id)  # fmt: skip
        kept = marked.where(~F.col("_erased")) if source == "events" else marked
        ctx.gates.publish(BRONZE[source], kept.drop("_erased"), predicate, raw=True)
    finally:
        marked.unpersist()


def from_table(
    ctx: RunContext, delivery_date: dt.date, tenants: Sequence[str] | None = None
) -> BronzeResult:
    """What an earlier ingest put in bronze for one delivery date: the same result as
    `ingest`, read from the bronze tables instead of landing (a rebuild from silver).

    Bronze keeps non-blank lines only, so no blank lines are counted and `landed_lines`
    counts the bronze rows; conservation (landed = accepted + rejected + duplicates) holds
    as before."""
    result = BronzeResult({}, {}, {}, {})
    for source in SOURCES:
        table = read_table(ctx.spark, ctx.path(BRONZE[source].name))
        result.tenants[source] = ()
        if table is None:
            continue
        rows = table.where(F.col("delivery_date") == F.lit(delivery_date))
        if tenants is not None:
            rows = rows.where(tenants_predicate(tenants))
        with ctx.stage("bronze"):
            counts = (
                rows.groupBy("tenant_id")
                .agg(F.count("*").alias("n"), F.countDistinct("_source_file").alias("files"))
                .collect()
            )  # one row per tenant
        result.tenants[source] = tuple(sorted(r.tenant_id for r in counts))
        for r in counts:
            result.landed_lines[(source, r.tenant_id)] = int(r.n)
            result.files[(source, r.tenant_id)] = int(r.files)
    ctx.log.info("bronze: rebuilding from the bronze tables of %s (%s)", delivery_date,
                 ", ".join(f"{s} {len(t)} tenants" for s, t in result.tenants.items()))  # fmt: skip
    return result
