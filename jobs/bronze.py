"""Landing → bronze: every non-blank landed line, as received, with lineage.

Landing layout (SPEC §3): `<landing>/<source>/tenant_id=<t>/delivery_date=<D>/<name>.jsonl[.gz]`.
Folders are listed through Hadoop's FileSystem API, so the same code reads a local folder,
HDFS or s3a://. Tenant ids found in folder names are validated before anything is read.

Re-running a delivery atomically replaces exactly that delivery's partitions
(tenant_id, delivery_date) of each bronze table, for the tenants that have files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.context import RunContext
from jobs.delta_io import partition_predicate, read_table, tenants_predicate
from jobs.tables import BRONZE, SOURCES
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


@dataclass(frozen=True)
class BronzeResult:
    """Per source: which tenants were ingested, and landed/blank line counts per tenant."""

    tenants: dict[str, tuple[str, ...]]
    landed_lines: dict[tuple[str, str], int]  # (source, tenant) → non-blank lines
    blank_lines: dict[tuple[str, str], int]
    files: dict[tuple[str, str], int]


def ingest(
    ctx: RunContext, delivery_date: dt.date, tenants: Sequence[str] | None = None
) -> BronzeResult:
    """Land one delivery date of every source into bronze (one commit per table)."""
    spark = ctx.spark
    result = BronzeResult({}, {}, {}, {})
    for source in SOURCES:
        deliveries = discover(spark, ctx.settings.landing, source, delivery_date, tenants)
        result.tenants[source] = tuple(d.tenant_id for d in deliveries)
        if not deliveries:
            ctx.log.info("bronze.%s: nothing landed for %s", source, delivery_date)
            continue
        for d in deliveries:
            result.files[(source, d.tenant_id)] = len(d.files)
        with ctx.stage("bronze"):
            _ingest_source(ctx, source, delivery_date, deliveries, result)
    return result


def _ingest_source(
    ctx: RunContext,
    source: str,
    delivery_date: dt.date,
    deliveries: list[Delivery],
    result: BronzeResult,
) -> None:
    """Count the landed lines per tenant, then replace the delivery's bronze partitions."""
    lines = read_landed_lines(ctx.spark, deliveries)
    blank = F.col("raw_line").rlike(r"^\s*$")
    counts = (
        lines.groupBy("tenant_id")
        .agg(
            F.sum(F.when(~blank, 1).otherwise(0)).alias("n"),
            F.sum(F.when(blank, 1).otherwise(0)).alias("blank"),
        )
        .collect()
    )  # one row per tenant
    for row in counts:
        result.landed_lines[(source, row.tenant_id)] = int(row.n)
        result.blank_lines[(source, row.tenant_id)] = int(row.blank)
    spec = BRONZE[source]
    predicate = partition_predicate(
        {d.tenant_id: [delivery_date] for d in deliveries}, "delivery_date"
    )
    ctx.gates.publish(spec, to_bronze(lines, ctx.run_id, ctx.started_at), predicate, raw=True)
    ctx.log.info(
        "%s: %s tenants, %s lines for %s",
        spec.name,
        len(deliveries),
        sum(r.n for r in counts),
        delivery_date,
    )


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
