"""Bronze CRM, billing and support exports of one delivery date → silver account tables.

Per delivery (tenant_id, delivery_date), one Delta commit per table:

* `silver.accounts_snapshots`, `silver.subscriptions`, `silver.ticket_versions` — the
  delivery's valid rows, typed (SPEC §3.2–3.4); `silver.records_rejected` — its invalid rows
  with a reason code and the raw line. Re-running a delivery replaces exactly these
  partitions.
* `silver.tickets` — current state per ticket, recomputed for the whole tenant partition
  from `silver.ticket_versions` (tickets are small next to events).
* `silver.accounts` — SCD2 account history, recomputed for the whole tenant partition from
  `silver.accounts_snapshots` and `silver.group_calls` whenever the tenant's snapshot of this
  delivery or its group calls (`group_changes`) changed. Both inputs are small (accounts ×
  snapshot days, a few group calls per person), and a full recompute keeps the history a
  function of all evidence whatever order deliveries and late group calls arrive in; an
  incremental SCD2 merge would have to reopen and re-split versions for late data. It is
  published only when it differs from the table (compared by per-version digests).
* `silver.account_hierarchy` — the hierarchy as of each date (SPEC §4.6), rewritten only for
  the dates from the earliest change to the horizon. The earliest change is the min of:
  this delivery's date when its accounts snapshot differs from what the table held for that
  date; the earliest changed group-call date passed in by the caller; the day after the last
  date already materialised (horizon moved on); the tenant's first known date when nothing
  is materialised yet. The rewrite runs to max(horizon, delivery_date, last date already
  materialised), so a re-run of an older delivery also fixes the later dates it affects.
  Known accounts on a date: those in a snapshot or a group call up to that date, plus every
  parent id they name — a parent that is not itself known gets a root row of its own, so
  its rollup scope is defined (see `jobs.transforms.accounts.hierarchy_edges`). Chains are
  resolved with at most `MAX_HIERARCHY_DEPTH` rounds of parent joins; cycle members (and,
  as a guard, chains deeper than that) become roots with `in_cycle` true.

Tenants not registered in `conf/tenants.yaml` are skipped: their rows stay in bronze only.
`restated` reports the dates gold must recompute: hierarchy dates whose rows changed (new vs
previous rows of the rewritten partitions, compared by per-date digests), subscription dates
from the delivery to the horizon when this delivery's subscriptions snapshot differs from what
the table held for it (over-approximates: a new snapshot equal to the previous day's still
restates), and account dates from the earliest changed SCD2 version to the horizon.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from jobs.context import RunContext
from jobs.delta_io import (
    date_range,
    partition_predicate,
    read_table,
    table_exists,
    tenants_predicate,
)
from jobs.silver_progress import SilverBase
from jobs.tables import (
    BRONZE,
    SILVER_ACCOUNT_HIERARCHY,
    SILVER_ACCOUNTS,
    SILVER_ACCOUNTS_SNAPSHOTS,
    SILVER_GROUP_CALLS,
    SILVER_RECORDS_REJECTED,
    SILVER_SUBSCRIPTIONS,
    SILVER_TICKET_VERSIONS,
    SILVER_TICKETS,
)
from jobs.transforms.accounts import (
    account_history,
    content_columns,
    current_tickets,
    hierarchy_edges,
    parent_timeline,
    parse_records,
    rejected_records,
    resolve_hierarchy,
    valid_records,
)
from jobs.transforms.events import local_date
from jobs.validation import require_tenant_id

MAX_HIERARCHY_DEPTH = 32
TYPED_TABLES = {
    "accounts": SILVER_ACCOUNTS_SNAPSHOTS,
    "subscriptions": SILVER_SUBSCRIPTIONS,
    "tickets": SILVER_TICKET_VERSIONS,
}
_BRONZE_SCHEMA = StructType(
    [
        StructField("tenant_id", StringType()),
        StructField("delivery_date", DateType()),
        StructField("raw_line", StringType()),
        StructField("_raw_hash", StringType()),
        StructField("_source_file", StringType()),
    ]
)
_GROUP_CALLS_SCHEMA = StructType(
    [
        StructField("tenant_id", StringType()),
        StructField("event_date", DateType()),
        StructField("event_ts", TimestampType()),
        StructField("message_id", StringType()),
        StructField("group_id", StringType()),
        StructField("group_name", StringType()),
        StructField("group_plan", StringType()),
        StructField("group_tier", StringType()),
        StructField("group_industry", StringType()),
        StructField("group_employees", IntegerType()),
        StructField("group_seats", IntegerType()),
        StructField("parent_group_id", StringType()),
    ]
)
_HIERARCHY_CONTENT = (
    "tenant_id",
    "as_of_date",
    "account_id",
    "parent_account_id",
    "parent_source",
    "ancestors",
    "depth",
    "in_cycle",
    "declared_parent_id",
)


@dataclass(frozen=True)
class AccountsResult:
    restated: dict[str, dict[dt.date, set[str]]]  # tenant → date → {"hierarchy", …}
    rejected: dict[tuple[str, str], dict[str, int]]  # (source, tenant) → reason → rows
    accepted: dict[tuple[str, str], int]  # (source, tenant) → rows


def _range_predicate(ranges: Mapping[str, tuple[dt.date, dt.date]], column: str) -> str:
    clauses = []
    for tenant in sorted(ranges):
        require_tenant_id(tenant, "range predicate")
        lo, hi = ranges[tenant]
        clauses.append(
            f"(tenant_id = '{tenant}' AND {column} >= DATE'{lo.isoformat()}' "
            f"AND {column} <= DATE'{hi.isoformat()}')"
        )
    return " OR ".join(clauses) if clauses else "FALSE"


def _fingerprints(df: DataFrame, keys: Sequence[str], columns: Sequence[str]) -> DataFrame:
    """Per key: row count and two order-independent sums of row hashes (a multiset digest)."""
    row = F.to_json(F.struct(*columns))  # field names kept, so NULLs cannot shift values
    return df.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("_n"),
        F.sum(F.xxhash64(row).cast("decimal(38,0)")).alias("_h1"),
        F.sum(F.hash(row).cast("decimal(38,0)")).alias("_h2"),
    )


def _changed_keys(
    old: DataFrame | None, new: DataFrame, keys: Sequence[str], columns: Sequence[str]
) -> DataFrame:
    """Keys whose rows (of `columns`) differ between `old` and `new`, compared as multisets.

    Compares digests (count + 96 bits of hash sums) instead of rows: one aggregation per
    side and a join of the small results, instead of two `exceptAll` shuffles of the rows.
    """
    fresh = _fingerprints(new, keys, columns)
    if old is None:
        return fresh.select(*keys)
    before = _fingerprints(old, keys, columns)
    same = reduce(
        lambda a, b: a & b,
        (F.col(f"n.{c}").eqNullSafe(F.col(f"o.{c}")) for c in ("_n", "_h1", "_h2")),
    )
    return (
        fresh.alias("n")
        .join(before.alias("o"), list(keys), "full_outer")
        .where(~same)
        .select(*keys)
    )


def _bronze_delivery(
    ctx: RunContext, source: str, delivery_date: dt.date, tenants: Sequence[str]
) -> DataFrame:
    bronze = read_table(ctx.spark, ctx.path(BRONZE[source].name))
    if bronze is None:
        return ctx.spark.createDataFrame([], _BRONZE_SCHEMA)
    return bronze.where(tenants_predicate(tenants)).where(
        F.col("delivery_date") == F.lit(delivery_date)
    )


def _group_calls(ctx: RunContext, tenants: Sequence[str]) -> DataFrame:
    calls = read_table(ctx.spark, ctx.path(SILVER_GROUP_CALLS.name))
    if calls is None:
        return ctx.spark.createDataFrame([], _GROUP_CALLS_SCHEMA)
    return calls.where(tenants_predicate(tenants)).select(*_GROUP_CALLS_SCHEMA.fieldNames())


def build(
    ctx: RunContext,
    delivery_date: dt.date,
    tenants: Sequence[str],
    group_changes: Mapping[str, dt.date],
    horizon: Mapping[str, dt.date],
    base: SilverBase,
) -> AccountsResult:
    """Publish the silver account tables for one delivery date of `tenants` (see module doc).

    Old tables are read as of `base` (`jobs.silver_progress`): what a pass interrupted after
    publishing some of them changed still counts as a change."""
    spark = ctx.spark
    registered = set(ctx.settings.tenants.ids())
    tenants = sorted({require_tenant_id(t, "silver_accounts") for t in tenants} & registered)
    if not tenants:
        return AccountsResult({}, {}, {})
    ends = {t: max(horizon.get(t, delivery_date), delivery_date) for t in tenants}
    delivery_pred = partition_predicate({t: [delivery_date] for t in tenants}, "delivery_date")
    in_tenants = tenants_predicate(tenants)
    this_delivery = F.col("delivery_date") == F.lit(delivery_date)
    validation = ctx.settings.pipeline.validation
    restated: dict[str, dict[dt.date, set[str]]] = defaultdict(lambda: defaultdict(set))
    rejected: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    accepted: dict[tuple[str, str], int] = {}

    parsed: dict[str, DataFrame] = {}
    valid: dict[str, DataFrame] = {}
    old: dict[str, DataFrame | None] = {}  # pinned: the tables as of the base
    cached: list[DataFrame] = []
    try:
        # 1. The delivery's rows: typed, or rejected with a reason; one job counts them all.
        with ctx.stage("silver.accounts.parse"):
            counts = []
            for source, spec in TYPED_TABLES.items():
                p = _bronze_delivery(ctx, source, delivery_date, tenants).transform(
                    parse_records(source, validation.max_line_bytes, validation.max_field_chars)
                )
                parsed[source] = p.persist(StorageLevel.MEMORY_AND_DISK)
                cached.append(parsed[source])
                valid[source] = parsed[source].transform(valid_records(source, ctx.run_id))
                old[source] = base.read(ctx, spec, tenants)
                counts.append(
                    parsed[source]
                    .groupBy("tenant_id", "reject_reason")
                    .count()
                    .withColumn("source", F.lit(source))
                )
            for row in reduce(lambda a, b: a.unionByName(b), counts).collect():
                key = (row.source, row.tenant_id)
                if row.reject_reason is None:
                    accepted[key] = int(row["count"])
                else:
                    rejected[key][row.reject_reason] = int(row["count"])
        # 2. Which tenants' accounts / subscriptions snapshot of this date changed, and the
        #    local created dates of tickets this delivery added or changed (one job).
        timezones = {t.id: t.timezone for t in ctx.settings.tenants.tenants}
        with ctx.stage("silver.accounts.changes"):
            diffs = []
            for source in ("accounts", "subscriptions", "tickets"):
                before = old[source]
                before = None if before is None else before.where(this_delivery)
                keys, after = ["tenant_id"], valid[source]
                if source == "tickets":  # support load counts tickets by created date
                    day = local_date(F.col("created_at"), timezones).alias("day")
                    keys = ["tenant_id", "day"]
                    after = after.select("*", day)
                    before = None if before is None else before.select("*", day)
                diff = _changed_keys(before, after, keys, content_columns(source))
                if source != "tickets":
                    diff = diff.withColumn("day", F.lit(None).cast("date"))
                diffs.append(diff.withColumn("source", F.lit(source)))
            changed: dict[str, set[str]] = defaultdict(set)
            for row in reduce(lambda a, b: a.unionByName(b), diffs).collect():
                changed[row.source].add(row.tenant_id)
                if row.source == "tickets" and row.day is not None:
                    restated[row.tenant_id][row.day].add("tickets")
        # Seats as of D use the latest snapshot with delivery_date ≤ D: a changed snapshot
        # can move every date from its delivery to the horizon.
        for t in changed["subscriptions"]:
            for day in date_range(delivery_date, ends[t]):
                restated[t][day].add("subscriptions")

        rejects = [parsed[s].transform(rejected_records(s, ctx.run_id)) for s in TYPED_TABLES]
        with ctx.stage(SILVER_RECORDS_REJECTED.name):
            ctx.gates.publish(
                SILVER_RECORDS_REJECTED,
                reduce(lambda a, b: a.unionByName(b), rejects),
                delivery_pred,
            )

        def all_rows(source: str) -> DataFrame:
            """The tenants' rows of every delivery once this delivery is published."""
            before = old[source]
            if before is None:
                return valid[source]
            return before.where(~this_delivery).unionByName(valid[source])

        # 3. Tickets: current state, whole tenant partitions.
        with ctx.stage(SILVER_TICKETS.name):
            ctx.gates.publish(
                SILVER_TICKETS,
                all_rows("tickets").transform(current_tickets(timezones, ctx.run_id)),
                in_tenants,
            )

        # 4. Accounts SCD2 and 5. hierarchy, from all snapshots and group calls.
        snapshots = all_rows("accounts").persist(StorageLevel.MEMORY_AND_DISK)
        group_calls = _group_calls(ctx, tenants).persist(StorageLevel.MEMORY_AND_DISK)
        cached += [snapshots, group_calls]
        # History is a function of the snapshots and group calls: recompute it only for
        # tenants whose snapshot of this date changed or whose group calls changed.
        moved = sorted((changed["accounts"] | set(group_changes)) & set(tenants))
        if not moved and not table_exists(spark, ctx.path(SILVER_ACCOUNTS.name)):
            moved = tenants  # created (empty) on the first run: gold's gates join it
        if moved:
            with ctx.stage(SILVER_ACCOUNTS.name):
                _publish_accounts(
                    ctx,
                    snapshots.where(tenants_predicate(moved)),
                    group_calls.where(tenants_predicate(moved)),
                    moved,
                    ends,
                    restated,
                    base,
                )
        with ctx.stage(SILVER_ACCOUNT_HIERARCHY.name):
            _publish_hierarchy(
                ctx,
                snapshots,
                group_calls,
                tenants,
                {t: [delivery_date] for t in changed["accounts"]},
                group_changes,
                ends,
                restated,
                base,
            )
        # The delivery's typed partitions go last: every table above is derived from them
        # (computed from the old rows plus this delivery's, not re-read), so if a run stops
        # half-way, its re-run still sees the delivery as changed and redoes the rest.
        for source, spec in TYPED_TABLES.items():
            with ctx.stage(spec.name):
                ctx.gates.publish(spec, valid[source], delivery_pred)
    finally:
        for df in cached:
            df.unpersist()

    ctx.log.info(
        "silver accounts: %s tenants for delivery %s, %s restated dates",
        len(tenants),
        delivery_date,
        sum(len(d) for d in restated.values()),
    )
    return AccountsResult(
        {t: {d: set(r) for d, r in days.items()} for t, days in restated.items()},
        dict(rejected),
        accepted,
    )


def _publish_accounts(
    ctx: RunContext,
    snapshots: DataFrame,
    group_calls: DataFrame,
    tenants: Sequence[str],
    ends: Mapping[str, dt.date],
    restated: dict[str, dict[dt.date, set[str]]],
    base: SilverBase,
) -> None:
    """Recompute the tenants' SCD2 history; publish it only when it changed (always for a
    tenant an interrupted pass left half-written: the table may hold neither version)."""
    in_tenants = tenants_predicate(tenants)
    old = base.read(ctx, SILVER_ACCOUNTS, tenants)
    history = account_history(snapshots, group_calls, ctx.run_id).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        # Versions compared without valid_to / is_current: a change shows up as a version
        # that starts on the first date it affects, so the restatement starts there, not at
        # the account's first version.
        columns = [c for c in history.columns if c not in ("_run_id", "valid_to", "is_current")]
        keys = ["tenant_id", "account_id", "valid_from"]
        diff = _changed_keys(old, history, keys, columns)
        first = diff.groupBy("tenant_id").agg(F.min("valid_from").alias("first")).collect()
        if first or old is None or base.dirty(tenants):
            ctx.gates.publish(SILVER_ACCOUNTS, history, in_tenants)
    finally:
        history.unpersist()
    for row in first:
        for day in date_range(row.first, ends[row.tenant_id]):
            restated[row.tenant_id][day].add("accounts")


def _publish_hierarchy(
    ctx: RunContext,
    snapshots: DataFrame,
    group_calls: DataFrame,
    tenants: Sequence[str],
    snapshot_changes: Mapping[str, Sequence[dt.date]],
    group_changes: Mapping[str, dt.date],
    ends: Mapping[str, dt.date],
    restated: dict[str, dict[dt.date, set[str]]],
    base: SilverBase,
) -> None:
    """Rewrite the hierarchy from each tenant's earliest change; restate the dates that moved."""
    spark = ctx.spark
    old = base.read(ctx, SILVER_ACCOUNT_HIERARCHY, tenants)
    last_done: dict[str, dt.date] = {}
    if old is not None:
        last_done = {
            r.tenant_id: r.last
            for r in old.groupBy("tenant_id").agg(F.max("as_of_date").alias("last")).collect()
        }
    starts: dict[str, list[dt.date]] = defaultdict(list)
    for t in tenants:
        starts[t] += snapshot_changes.get(t, ())
        if t in group_changes:
            starts[t].append(group_changes[t])
        if t in last_done and last_done[t] < ends[t]:
            starts[t].append(last_done[t] + dt.timedelta(days=1))
    never_built = [t for t in tenants if t not in last_done]
    if never_built:  # first known date: first snapshot or group call (inputs are cached)
        seen = snapshots.select("tenant_id", F.col("delivery_date").alias("d")).unionByName(
            group_calls.where(F.col("group_id").isNotNull()).select(
                "tenant_id", F.col("event_date").alias("d")
            )
        )
        first_known = seen.where(tenants_predicate(never_built)).groupBy("tenant_id")
        for r in first_known.agg(F.min("d").alias("first")).collect():
            starts[r.tenant_id].append(r.first)
    ranges: dict[str, tuple[dt.date, dt.date]] = {}
    for t, days in starts.items():
        if days:
            start = min(days)
            ranges[t] = (start, max(ends[t], last_done.get(t, start), start))
    if not ranges and old is not None:
        return  # nothing changed and every tenant is materialised up to its horizon
    timeline = parent_timeline(snapshots, group_calls).persist(StorageLevel.MEMORY_AND_DISK)
    edges = hierarchy = None
    try:
        range_df = spark.createDataFrame(
            [(t, lo, hi) for t, (lo, hi) in sorted(ranges.items())],
            "tenant_id string, start_date date, end_date date",
        )
        edges = hierarchy_edges(timeline, range_df).persist(StorageLevel.MEMORY_AND_DISK)
        hierarchy = resolve_hierarchy(edges, MAX_HIERARCHY_DEPTH, ctx.run_id).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        predicate = _range_predicate(ranges, "as_of_date")
        moved = _changed_keys(
            None if old is None else old.where(predicate),
            hierarchy,
            ["tenant_id", "as_of_date"],
            _HIERARCHY_CONTENT,
        ).collect()
        if moved or old is None or base.dirty(ranges):
            ctx.gates.publish(SILVER_ACCOUNT_HIERARCHY, hierarchy, predicate)
        for row in moved:
            restated[row.tenant_id][row.as_of_date].add("hierarchy")
    finally:
        for df in (timeline, edges, hierarchy):
            if df is not None:
                df.unpersist()
