"""Erasure of one person on request (`lakehouse forget`) and suppression of their old lines
in later deliveries (SPEC §7 "Private").

The request names one identifier of a tenant; what is erased is the whole stitched person:
every identifier `silver.identity_map` gives that person. In order:

1. **Suppression first.** Each identifier becomes a keyed *erasure token* (HMAC of the typed
   node under a purpose of its own, so the token matches nothing silver holds) appended to
   `ops.erased_identifiers` with the request time. From then on bronze drops every landed
   event line that carries a token and is not newer than the request, and blanks the
   requester of such ticket lines. If the command dies after this step, re-running it
   finishes the job; no re-delivery can bring the person back meanwhile.
2. **Bronze.** The tenant's bronze event lines carrying a token are deleted, its ticket
   lines lose their requester (one MERGE per table: the identifiers travel as data, never
   as a predicate, which Delta would write into its log).
3. **Replay.** The deliveries that held those lines are rebuilt from bronze
   (`lakehouse backfill --from-layer silver` for the tenant): silver (events, rejects,
   duplicates, identity, memberships, sessions, tickets) and gold are recomputed as if the
   lines had never landed — the same pure function that every other restatement uses.
   Deliveries an interrupted run left half-built are replayed too (`jobs.silver_progress`):
   until they are, silver compares against table versions the VACUUM below removes.
4. **Sweep.** Rows the replay cannot reach (their bronze has expired under retention, or an
   append-only log such as `silver.identity_merges`) are removed from every table of the
   tenant by rewriting the partitions that hold them; dated silver partitions so rewritten
   are restated and gold is rebuilt for them.
5. **Check.** Every table of the tenant is scanned for the identifiers, the person ids and
   the tokens of raw lines; anything left fails the command.
6. **VACUUM** every table with the requested retention, so no earlier version (time
   travel) still holds the deleted files. Tables never keep min/max statistics on
   identifier columns (`tables.IDENTIFIER_COLUMNS`), so the transaction log holds none.

`ops.erasure_log` records each step's counts; neither it nor the ledger holds an identifier.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import silver_progress, tables
from jobs.delta_io import (
    append,
    partition_predicate,
    read_table,
    replace_partitions,
    table_exists,
    tenants_predicate,
    with_commit_retry,
)
from jobs.ledger import (
    RESTATEMENT_REASONS,
    mark_interrupted,
    open_runs,
    record_restatements,
    record_run,
    utc_now,
)
from jobs.transforms.privacy import normalize_email, pseudonym, pseudonym_py

ID_TYPES = ("user_id", "anonymous_id", "email")
TOKEN_KIND = "erased"  # the HMAC purpose of erasure tokens: unrelated to silver's pseudonyms

# JSON string values of the fields that carry a person's identifier (SPEC §3.1, §3.4),
# wherever they sit in the line: `traits.email` and `context.traits.email` alike. A regex,
# not a parse, so lines that are not valid JSON (the rejects) are matched too.
_ID_FIELD = (
    r'"(user_id|anonymous_id|previous_id|email|requester_user_id)"\s*:\s*"((?:[^"\\]|\\.)*)"'
)
_REQUESTER = r'"requester_user_id"\s*:\s*"(?:[^"\\]|\\.)*"'

# what makes a line "old" (not newer than the request): its own times, when they parse
LINE_TIME_FIELDS = {"events": ("timestamp", "received_at"), "tickets": ("created_at",)}
ERASABLE_SOURCES = tuple(LINE_TIME_FIELDS)

ERASED_SCHEMA = T.StructType(
    [
        T.StructField("tenant_id", T.StringType(), False),
        T.StructField("request_id", T.StringType(), False),
        T.StructField("token", T.StringType(), False),
        T.StructField("requested_at", T.TimestampType(), False),
    ]
)
LOG_SCHEMA = T.StructType(
    [
        T.StructField("request_id", T.StringType(), False),
        T.StructField("tenant_id", T.StringType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("requested_by", T.StringType(), False),  # the id type, not its value
        T.StructField("requested_at", T.TimestampType(), False),
        T.StructField("recorded_at", T.TimestampType(), False),
        T.StructField("identifiers", T.LongType(), True),
        T.StructField("persons", T.LongType(), True),
        T.StructField("rows_removed", T.MapType(T.StringType(), T.LongType()), True),
        T.StructField("deliveries_replayed", T.ArrayType(T.DateType()), True),
        T.StructField("replay_run_id", T.StringType(), True),
        T.StructField("vacuum_retain_hours", T.DoubleType(), True),
        T.StructField("tables_vacuumed", T.LongType(), True),
        T.StructField("error", T.StringType(), True),
    ]
)


class ErasureError(RuntimeError):
    """The erasure could not be completed (the log says which step)."""


# ------------------------------------------------------------------------------ tokens


def request_node(key: bytes, tenant: str, id_type: str, value: str) -> str:
    """The typed identity node of a request (emails become silver's pseudonym)."""
    if id_type not in ID_TYPES:
        raise ValueError(f"id type {id_type!r} is not one of {', '.join(ID_TYPES)}")
    if id_type == "email":
        return "email:" + pseudonym_py(key, "email", tenant, value.strip().lower())
    return f"{id_type}:{value}"


def node_token(key: bytes, tenant: str, node: str) -> str:
    """The erasure token of one typed node (what `ops.erased_identifiers` keeps)."""
    return pseudonym_py(key, TOKEN_KIND, tenant, node)


def _unescape(value: Column) -> Column:
    """A JSON string body (as the regex captured it) → its text; itself if it won't parse."""
    parsed = F.from_json(F.concat(F.lit('["'), value, F.lit('"]')), "array<string>")
    return F.coalesce(F.get(parsed, 0), value)


def line_tokens(key: bytes) -> Column:
    """Erasure tokens of every identifier a raw line carries (`tenant_id`, `raw_line`).

    Each captured value is tried as each node type it could be: `user_id:v`,
    `anonymous_id:v` and `email:<pseudonym of lower(trim(v))>`; a token matches only if the
    erased person had that very node."""
    tenant = F.col("tenant_id")
    values = F.transform(
        F.regexp_extract_all(F.col("raw_line"), F.lit(_ID_FIELD), F.lit(2)), _unescape
    )
    nodes = F.flatten(
        F.transform(
            values,
            lambda v: F.array(
                F.concat(F.lit("user_id:"), v),
                F.concat(F.lit("anonymous_id:"), v),
                F.concat(F.lit("email:"), pseudonym(key, "email", tenant, normalize_email(v))),
            ),
        )
    )
    return F.transform(nodes, lambda n: pseudonym(key, TOKEN_KIND, tenant, n))


def line_time(source: str) -> Column:
    """The latest of the line's own times (NULL when none parses): a line is new — and
    kept — when it is later than the erasure request."""
    times = [
        F.get_json_object(F.col("raw_line"), f"$.{name}").try_cast("timestamp")
        for name in LINE_TIME_FIELDS[source]
    ]
    return F.greatest(*times) if len(times) > 1 else times[0]


def erased_lines(lines: DataFrame, erased: DataFrame, key: bytes,
                 source: str | None = None) -> DataFrame:  # fmt: skip
    """(tenant_id, raw_line) of the `lines` that carry an erased token: with a `source`,
    only lines of it not newer than their request (suppression); without, whatever their
    time (the erasure itself)."""
    hits = (
        lines.select("tenant_id", "raw_line", F.explode(line_tokens(key)).alias("token"))
        .join(
            F.broadcast(erased.select("tenant_id", "token", "requested_at")), ["tenant_id", "token"]
        )
        .select("tenant_id", "raw_line", "requested_at")
    )
    if source is not None:
        old = F.col("line_ts").isNull() | (F.col("line_ts") <= F.col("requested_at"))
        hits = hits.withColumn("line_ts", line_time(source)).where(old)
    return hits.select("tenant_id", "raw_line").distinct()


def redact_requester(raw_line: Column) -> Column:
    """A ticket line without its requester (the ticket itself stays: it is account data)."""
    return F.regexp_replace(raw_line, _REQUESTER, '"requester_user_id":null')


def _redact_where(rows: DataFrame, flag: Column) -> DataFrame:
    """Bronze ticket rows with the requester redacted where `flag`, their hash recomputed."""
    raw = F.when(flag, redact_requester(F.col("raw_line"))).otherwise(F.col("raw_line"))
    return rows.withColumn("raw_line", raw).withColumn("_raw_hash", F.sha2(raw, 256))


def erased_tokens(
    spark: SparkSession, warehouse_path: str, tenants: Iterable[str]
) -> DataFrame | None:
    """The tenants' rows of `ops.erased_identifiers`, or None when none of them has any."""
    table = read_table(spark, warehouse_path)
    if table is None:
        return None
    rows = table.where(tenants_predicate(tenants))
    return rows if not rows.isEmpty() else None


def suppress(bronze_rows: DataFrame, erased: DataFrame, key: bytes, source: str) -> DataFrame:
    """Bronze rows of a delivery with the erased persons' old lines handled: event lines
    dropped, ticket lines redacted (their `_raw_hash` recomputed). Adds `_erased` (bool) so
    the caller can count them; the caller drops the flagged event rows."""
    flagged = erased_lines(bronze_rows, erased, key, source).withColumn("_erased", F.lit(True))
    marked = bronze_rows.join(flagged, ["tenant_id", "raw_line"], "left").withColumn(
        "_erased", F.coalesce("_erased", F.lit(False))
    )
    if source == "tickets":
        marked = _redact_where(marked, F.col("_erased"))
    return marked.select(*bronze_rows.columns, "_erased")


# ------------------------------------------------------------------------------ the request


@dataclass
class ErasureResult:
    request_id: str
    tenant_id: str
    status: str
    identifiers: int = 0
    persons: int = 0
    rows_removed: dict[str, int] = field(default_factory=dict)
    deliveries_replayed: list[dt.date] = field(default_factory=list)
    replay_run_id: str | None = None
    tables_vacuumed: int = 0
    error: str | None = None


def _person(
    spark: SparkSession, map_path: str, tenant: str, node: str
) -> tuple[list[str], list[str]]:
    """(every node of the person holding `node`, their person ids); [node], [] when the
    identifier is in no person (it may still sit in rejects or bronze)."""
    identity_map = read_table(spark, map_path)
    if identity_map is None:
        return [node], []
    nodes = identity_map.where(tenants_predicate([tenant])).select(
        F.concat_ws(":", "id_type", "id_value").alias("node"), "person_id"
    )
    persons = [
        r.person_id
        for r in nodes.where(F.col("node") == node).select("person_id").distinct().collect()
    ]
    if not persons:
        return [node], []
    members = nodes.where(F.col("person_id").isin(persons)).select("node").distinct().collect()
    return sorted({node, *(r.node for r in members)}), persons  # one person's identifiers


def _history_persons(spark: SparkSession, merges_path: str, map_path: str, tenant: str,
                     nodes: Sequence[str], persons: Sequence[str]) -> list[str]:  # fmt: skip
    """The person ids the person had before, from `silver.identity_merges`: the old ids of
    moves that carried one of its identifiers or led to one of its ids, followed back until
    no new id appears. An old id that is now another person's id (a split leaves the id
    with the part holding the smallest identifier) is not the erased person's."""
    merges, identity_map = read_table(spark, merges_path), read_table(spark, map_path)
    if merges is None or identity_map is None:
        return list(persons)
    rows = (
        merges.where(tenants_predicate([tenant]))
        .select("old_person_id", "new_person_id", "identifiers")
        .persist()
    )
    known = set(persons)
    try:
        while True:
            hit = rows.where(
                F.arrays_overlap("identifiers", F.array(*map(F.lit, nodes)))
                | F.col("new_person_id").isin(list(known))
            )
            found = {r.old_person_id for r in hit.select("old_person_id").distinct().collect()}
            if found <= known:
                break
            known |= found
    finally:
        rows.unpersist()
    others = (
        identity_map.where(tenants_predicate([tenant]))
        .where(~F.concat_ws(":", "id_type", "id_value").isin(list(nodes)))
        .where(F.col("person_id").isin(list(known)))
        .select("person_id")
        .distinct()
        .collect()
    )
    return sorted(known - {r.person_id for r in others})


# ------------------------------------------------------------------------------ tables


def _scanned_tables() -> list[tables.TableSpec]:
    """Every table that can hold a person's identifier (the erasure tokens excepted)."""
    from jobs.maintenance import all_tables

    return [s for s in all_tables() if s.name != tables.OPS_ERASED_IDENTIFIERS.name]


@dataclass(frozen=True)
class _Needles:
    """What identifies the erased person in a table: the typed nodes and person ids, matched
    against each identifier column by what that column holds, and, for raw lines, the
    erasure tokens. Matching by type keeps another person whose user id happens to equal
    this person's anonymous id out of it."""

    tenant: str
    nodes: tuple[str, ...]
    persons: tuple[str, ...]
    tokens: DataFrame  # tenant_id, token, requested_at
    key: bytes

    def _bare(self, *id_types: str) -> list[str]:
        return [n.split(":", 1)[1] for n in self.nodes if n.split(":", 1)[0] in id_types]

    def _column_values(self, df: DataFrame) -> dict[str, list[str]]:
        values = {
            "user_id": self._bare("user_id"),
            "requester_user_id": self._bare("user_id"),
            "anonymous_id": self._bare("anonymous_id"),
            "previous_id": self._bare("user_id", "anonymous_id"),
            "email_hash": self._bare("email"),
            "src": list(self.nodes),
            "dst": list(self.nodes),
            "node": list(self.nodes),
            "identifiers": list(self.nodes),
            "person_id": list(self.persons),
            "old_person_id": list(self.persons),
            "new_person_id": list(self.persons),
        }
        return {c: v for c, v in values.items() if c in df.columns}

    def hit(self, df: DataFrame) -> DataFrame:
        """`df` with a boolean `_hit`: the row holds one of the person's identifiers."""
        checks: list[Column] = []
        for name, values in self._column_values(df).items():
            if not values:
                continue
            kind = df.schema[name].dataType
            if isinstance(kind, T.ArrayType) and isinstance(kind.elementType, T.StringType):
                checks.append(F.arrays_overlap(name, F.array(*map(F.lit, values))))
            elif isinstance(kind, T.StringType):
                checks.append(F.col(name).isin(values))
        if "id_type" in df.columns and "id_value" in df.columns:  # the value is of its type
            checks.append(F.concat_ws(":", "id_type", "id_value").isin(list(self.nodes)))
        if "raw_line" in df.columns:
            lines = erased_lines(df, self.tokens, self.key)
            df = df.join(
                lines.withColumn("_raw_hit", F.lit(True)), ["tenant_id", "raw_line"], "left"
            )
            checks.append(F.col("_raw_hit").isNotNull())
        if not checks:
            return df.withColumn("_hit", F.lit(False))
        hit = checks[0]
        for c in checks[1:]:
            hit = hit | c
        out = df.withColumn("_hit", F.coalesce(hit, F.lit(False)))
        return out.drop("_raw_hit") if "_raw_hit" in out.columns else out


def _tenant_rows(spark: SparkSession, path: str, tenant: str) -> DataFrame | None:
    table = read_table(spark, path)
    if table is None or "tenant_id" not in table.columns:
        return None
    return table.where(tenants_predicate([tenant]))


def scan(spark: SparkSession, settings, needles: _Needles) -> dict[str, int]:
    """Rows per table of the tenant that still hold one of the person's identifiers."""
    found = {}
    for spec in _scanned_tables():
        rows = _tenant_rows(spark, settings.table_path(spec.name), needles.tenant)
        if rows is None or not tables.IDENTIFIER_COLUMNS.intersection(rows.columns):
            continue
        n = needles.hit(rows).where("_hit").count()
        if n:
            found[spec.name] = n
    return found


def _sweep(
    ctx, needles: _Needles, residue: Mapping[str, int]
) -> dict[str, dict[dt.date, set[str]]]:
    """Rewrite the partitions that still hold the person, without them (ticket tables keep
    the ticket and lose its requester); → the dated partitions rewritten, for gold."""
    restate: dict[str, dict[dt.date, set[str]]] = {needles.tenant: {}}
    specs = {s.name: s for s in _scanned_tables()}
    for name in residue:
        spec = specs[name]
        path = ctx.path(name)
        rows = needles.hit(_tenant_rows(ctx.spark, path, needles.tenant))
        rows = rows.localCheckpoint()  # the snapshot read, before the rewrite replaces it
        dated = [c for c in spec.partition_by if c != "tenant_id"]
        if dated:
            column = dated[0]
            dates = {r[column] for r in rows.where("_hit").select(column).distinct().collect()}
            predicate = partition_predicate({needles.tenant: dates}, column)
            rows = rows.where(predicate)
            if name.startswith("silver.") and column in ("event_date", "as_of_date"):
                for d in dates:
                    restate[needles.tenant][d] = set(RESTATEMENT_REASONS)
        else:
            predicate = tenants_predicate([needles.tenant])
        if "requester_user_id" in rows.columns:
            kept = rows.withColumn(
                "requester_user_id",
                F.when(F.col("_hit"), F.lit(None).cast("string")).otherwise(
                    F.col("requester_user_id")
                ),
            )
        elif name == "bronze.tickets":
            kept = _redact_where(rows, F.col("_hit"))
        else:
            kept = rows.where(~F.col("_hit"))
        replace_partitions(kept.drop("_hit"), path, predicate, spec.partition_by)
        ctx.log.info("erasure sweep: %s rows of %s rewritten (%s)", residue[name], name, predicate)
    return restate


def _erase_bronze(ctx, source: str, tenant: str, tokens: DataFrame) -> tuple[list[dt.date], int]:
    """Delete (events) or redact (tickets) the tenant's bronze lines carrying a token, in
    one MERGE; → (the delivery dates they were in, lines affected)."""
    path = ctx.path(tables.BRONZE[source].name)
    rows = _tenant_rows(ctx.spark, path, tenant)
    if rows is None:
        return [], 0
    lines = erased_lines(rows, tokens, ctx.pii_key)
    hits = rows.join(lines, ["tenant_id", "raw_line"], "left_semi")
    hits = hits.select("tenant_id", "delivery_date", "raw_line").localCheckpoint()
    by_date = hits.groupBy("delivery_date").count().collect()  # one row per delivery date
    hits = hits.distinct()  # a MERGE source matches each target row at most once
    if not by_date:
        return [], 0

    def merge() -> None:
        builder = (
            DeltaTable.forPath(ctx.spark, path)
            .alias("t")
            .merge(
                hits.alias("s"),
                f"t.{tenants_predicate([tenant])} AND t.tenant_id = s.tenant_id "
                "AND t.delivery_date = s.delivery_date AND t.raw_line = s.raw_line",
            )
        )
        if source == "tickets":
            redacted = redact_requester(F.col("t.raw_line"))
            builder = builder.whenMatchedUpdate(
                set={"raw_line": redacted, "_raw_hash": F.sha2(redacted, 256)}
            )
        else:
            builder = builder.whenMatchedDelete()
        builder.execute()

    with_commit_retry(merge, path)
    return sorted(r.delivery_date for r in by_date), sum(int(r["count"]) for r in by_date)


def active_runs(spark: SparkSession, settings, within_hours: float = 12.0) -> list[str]:
    """Runs of the ledger that started in the last `within_hours` and have not ended: a
    VACUUM with a short retention could delete files they have written but not committed."""
    since = utc_now() - dt.timedelta(hours=within_hours)
    runs = open_runs(spark, settings.table_path(tables.OPS_PIPELINE_RUNS.name))
    return sorted(r["run_id"] for r in runs if r["started_at"] >= since)


def vacuum_all(spark: SparkSession, settings, retain_hours: float) -> int:
    """VACUUM every table that can hold an identifier; → how many. Gold and the ledger hold
    none, so their older versions keep nothing of the person."""
    from jobs.maintenance import vacuum

    done = 0
    for spec in [*_scanned_tables(), tables.OPS_ERASED_IDENTIFIERS]:
        path = settings.table_path(spec.name)
        if not table_exists(spark, path):
            continue
        if tables.IDENTIFIER_COLUMNS.intersection(read_table(spark, path).columns):
            vacuum(spark, path, retain_hours)
            done += 1
    return done


def _log(ctx, result: ErasureResult, requested_by: str, requested_at: dt.datetime,
         retain_hours: float | None) -> None:  # fmt: skip
    row = (
        result.request_id, result.tenant_id, result.status, requested_by, requested_at,
        utc_now(), result.identifiers, result.persons, result.rows_removed or None,
        result.deliveries_replayed or None, result.replay_run_id, retain_hours,
        result.tables_vacuumed, result.error,
    )  # fmt: skip
    append(ctx.spark.createDataFrame([row], LOG_SCHEMA), ctx.path(tables.OPS_ERASURE_LOG.name))


def forget(settings, tenant: str, id_type: str, value: str, retain_hours: float,
           spark: SparkSession | None = None, force: bool = False) -> ErasureResult:  # fmt: skip
    """Erase the person holding `id_type`=`value` in `tenant` (see the module docstring)."""
    from jobs.context import RunContext, configure_logging, new_run_id
    from jobs.pii import load_pii_key
    from jobs.spark import build_session

    request_id = new_run_id()
    log = configure_logging(request_id)
    key, _ = load_pii_key(settings)
    spark = spark or build_session(settings, app_name="lakehouse forget")
    ctx = RunContext(spark, settings, request_id, "forget", key, log=log)
    mark_interrupted(ctx)
    if retain_hours < 168 and not force:
        busy = active_runs(spark, settings)
        if busy:
            raise ErasureError(
                f"--retain-hours {retain_hours:g}: runs {', '.join(busy)} have started and not "
                "ended; a VACUUM this short could delete files they have not committed yet. "
                "Wait for them (or mark them failed), or pass --force if they are dead."
            )
    record_run(ctx, "started", [], [tenant])
    requested_at = utc_now()
    result = ErasureResult(request_id, tenant, "started")
    started = time.perf_counter()
    try:
        _erase(ctx, result, id_type, value, requested_at, retain_hours)
    except Exception as exc:
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"[:4000]
        log.error("forget failed: %s", result.error)
        _log(ctx, result, id_type, requested_at, retain_hours)
        record_run(ctx, "failed", [], [tenant], result.error)
        return result
    result.status = "completed"
    _log(ctx, result, id_type, requested_at, retain_hours)
    record_run(ctx, "succeeded", [], [tenant])
    log.info("forget completed in %.1fs: %s; step seconds: %s", time.perf_counter() - started,
             result.rows_removed, {k: round(v, 1) for k, v in ctx.timings.items()})  # fmt: skip
    return result


def _erase(ctx, result: ErasureResult, id_type: str, value: str, requested_at: dt.datetime,
           retain_hours: float) -> None:  # fmt: skip
    """Steps 1–6 of the module docstring; each is a stage of the request (`ctx.timings`)."""
    from jobs import pipeline
    from jobs.context import configure_logging

    spark, key, tenant, log = ctx.spark, ctx.pii_key, result.tenant_id, ctx.log
    with ctx.stage("forget.person"):
        node = request_node(key, tenant, id_type, value)
        nodes, persons = _person(spark, ctx.path(tables.SILVER_IDENTITY_MAP.name), tenant, node)
        persons = _history_persons(spark, ctx.path(tables.SILVER_IDENTITY_MERGES.name),
                                   ctx.path(tables.SILVER_IDENTITY_MAP.name), tenant, nodes,
                                   persons)  # fmt: skip
    result.identifiers, result.persons = len(nodes), len(persons)
    log.info("forget: %s identifiers of %s person ids in tenant %s", len(nodes), len(persons),
             tenant)  # fmt: skip
    # 1. suppression first: from here on no delivery can bring these lines back
    rows = [(tenant, result.request_id, node_token(key, tenant, n), requested_at) for n in nodes]
    tokens = spark.createDataFrame(rows, ERASED_SCHEMA)
    append(tokens, ctx.path(tables.OPS_ERASED_IDENTIFIERS.name),
           tables.OPS_ERASED_IDENTIFIERS.partition_by)  # fmt: skip
    _log(ctx, result, id_type, requested_at, retain_hours)
    # 2. bronze
    replay: set[dt.date] = set()
    with ctx.stage("forget.bronze"):
        for source in ERASABLE_SOURCES:
            dates, n = _erase_bronze(ctx, source, tenant, tokens)
            replay.update(dates)
            result.rows_removed[tables.BRONZE[source].name] = n
    log.info("forget: bronze lines %s, in %s deliveries", result.rows_removed, len(replay))
    # 3. replay the deliveries from bronze, with any an interrupted run left half-built: until
    #    they are rebuilt, silver compares against older versions VACUUM is about to remove
    replay.update(silver_progress.pending_deliveries(ctx, tenant))
    if replay:
        result.deliveries_replayed = sorted(replay)
        with ctx.stage("forget.replay"):
            run = pipeline.execute(ctx.settings, "backfill", result.deliveries_replayed,
                                   [tenant], spark=spark, from_layer="silver")  # fmt: skip
        configure_logging(result.request_id)
        result.replay_run_id = run.run_id
        if run.status != "succeeded":
            raise ErasureError(f"replay {run.run_id} failed: {run.error}")
    # 4. sweep what the replay could not reach, then gold for the dates it rewrote
    needles = _Needles(tenant, tuple(nodes), tuple(persons), tokens, key)
    with ctx.stage("forget.scan"):
        residue = scan(spark, ctx.settings, needles)
    if residue:
        result.rows_removed.update({f"sweep {k}": v for k, v in residue.items()})
        with ctx.stage("forget.sweep"):
            restate = _sweep(ctx, needles, residue)
            if restate[tenant]:
                record_restatements(ctx, max(restate[tenant]), restate)
                run = pipeline.execute(ctx.settings, "run", [max(restate[tenant])], [tenant],
                                       spark=spark, from_layer="gold")  # fmt: skip
                configure_logging(result.request_id)
                if run.status != "succeeded":
                    raise ErasureError(f"gold rebuild {run.run_id} failed: {run.error}")
        # 5. check
        with ctx.stage("forget.check"):
            left = scan(spark, ctx.settings, needles)
        if left:
            raise ErasureError(f"identifiers still found after the erasure: {left}")
    # 6. vacuum
    with ctx.stage("forget.vacuum"):
        result.tables_vacuumed = vacuum_all(spark, ctx.settings, retain_hours)
