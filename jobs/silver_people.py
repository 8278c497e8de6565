"""Survivors of one delivery → persons, accounts and sessions (SPEC §4.4, §4.5, §4.7).

Incremental and a pure function of the evidence, in this order:

1. **Evidence.** The identity edges and `group` calls of the touched (tenant, event_date)
   partitions replace those partitions of `silver.identity_edges` / `silver.group_calls`.
   The nodes on edges that appeared in or disappeared from the tenant's whole graph (not
   merely from a date partition: a returning user is not news) are the *touched nodes*.
   "Old" is the tenant's tables as its last whole silver pass left them
   (`jobs.silver_progress`): after an interrupted pass, the evidence it published still
   counts as new, and the identity map it may have half-moved is re-derived.
2. **Stitching.** Only the components the touched nodes can reach are recomputed: the old
   persons of the touched nodes and of their raw neighbours (a node's K-guard status
   changes only when its own edges change, so this set is closed; see docs/decisions.md).
   Connected components run on that subgraph; `silver.identity_map` is MERGEd with the
   identifiers whose person changed, and `silver.identity_merges` logs who moved where.
3. **Restatement.** An identifier whose person changed is restated on every date it was
   seen (its events' person changed, and nothing else of theirs did); a person who gained or
   lost an identifier that made `group` calls on every date of the person (attribution); a
   person whose `group` calls changed from the call's date on (or on every date when the
   change reaches its earliest call, §4.5 rule 3).
4. **Publishing.** `silver.events` is rewritten for touched ∪ restated dates with
   `person_id`, `account_id` and `attribution`; `silver.sessions` for those dates ± 1 day
   (sessions cross midnight); `silver.person_account_daily` for those dates; and
   `silver.account_memberships` per tenant from the compact daily table.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import reduce

from delta.tables import DeltaTable
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.context import RunContext
from jobs.delta_io import (
    Dates,
    append,
    current_version,
    materialize,
    partition_predicate,
    read_table,
    release,
    replace_partitions,
    tenants_predicate,
    with_commit_retry,
)
from jobs.silver_progress import SilverBase
from jobs.spark import conf_for_the_call
from jobs.tables import (
    SILVER_ACCOUNT_MEMBERSHIPS,
    SILVER_EVENTS,
    SILVER_GROUP_CALLS,
    SILVER_IDENTITY_EDGES,
    SILVER_IDENTITY_MAP,
    SILVER_IDENTITY_MERGES,
    SILVER_PERSON_ACCOUNT_DAILY,
    SILVER_SESSIONS,
    TableSpec,
)
from jobs.transforms.attribution import attribute_accounts
from jobs.transforms.frames import checkpoint_observing
from jobs.transforms.identity import (
    apply_k_guard,
    connected_components,
    node,
    persons_of,
    raw_identity_edges,
    split_node,
)
from jobs.transforms.people import (
    GROUP_CALL_COLUMNS,
    memberships,
    person_account_daily,
)
from jobs.transforms.sessions import sessionize


@dataclass(frozen=True)
class PeopleResult:
    restated: dict[str, dict[dt.date, set[str]]]  # tenant → date → reasons
    group_changes: dict[str, dt.date]  # tenant → earliest event_date of a changed group call
    iterations: int
    affected_nodes: int
    changed_nodes: int
    largest_component: int


def event_node() -> Column:
    """The identifier an event belongs to: its user_id node, else its anonymous_id node."""
    return F.coalesce(
        node("user_id", F.col("user_id")), node("anonymous_id", F.col("anonymous_id"))
    )


def _map_nodes(identity_map: DataFrame) -> DataFrame:
    return identity_map.select(
        "tenant_id", F.concat_ws(":", "id_type", "id_value").alias("node"), "person_id"
    )


_FIRST_CALL = "first changed group call"  # not a restatement reason: a date to rebuild from


def _dates_by_reason(findings: list[DataFrame]) -> dict[str, Dates]:
    """The distinct (tenant_id, event_date) of small frames, per their `reason` column: one
    Spark job for all of them."""
    out: dict[str, Dates] = defaultdict(lambda: defaultdict(set))
    if findings:
        for row in reduce(DataFrame.unionByName, findings).distinct().collect():
            out[row.reason][row.tenant_id].add(row.event_date)
    return out


def _shift(dates: Dates, days: Iterable[int]) -> Dates:
    return {t: {d + dt.timedelta(days=k) for d in ds for k in days} for t, ds in dates.items()}


def _replace_evidence(
    ctx: RunContext,
    spec: TableSpec,
    new: DataFrame,
    predicate: str,
    base: SilverBase,
    tenants: list[str],
) -> tuple[DataFrame, int]:
    """Replace the touched partitions of an evidence table; → the symmetric difference
    (rows added or removed, with `change` = 'added' | 'removed') between old and new, and
    its number of rows.

    Old is the base (`jobs.silver_progress`). For a tenant an interrupted pass left
    half-written the whole tenant is compared: that pass may have published other dates."""
    old = base.read(ctx, spec, tenants)
    new = new.persist(StorageLevel.MEMORY_AND_DISK)
    content = [c for c in new.columns if not c.startswith("_")]  # lineage is not evidence
    after = new.select(content)
    dirty = base.dirty(tenants)
    if dirty:
        scope = f"({predicate}) OR {tenants_predicate(dirty)}"
        now = read_table(ctx.spark, ctx.path(spec.name))  # pinned before this write
        if now is not None:
            untouched = f"{tenants_predicate(dirty)} AND NOT ({predicate})"
            after = after.unionByName(now.where(untouched).select(content))
    else:
        scope = predicate
    if old is None:
        diff = after.withColumn("change", F.lit("added"))
    else:
        old = old.where(scope).select(content)
        diff = (
            after.exceptAll(old)
            .withColumn("change", F.lit("added"))
            .unionByName(old.exceptAll(after).withColumn("change", F.lit("removed")))
        )
    # materialised before the old rows are overwritten; counted by the same job
    diff, seen = checkpoint_observing(diff, n=F.count(F.lit(1)))
    ctx.gates.publish(spec, new, predicate)
    new.unpersist()
    return diff, seen["n"]


def _graph_changes(
    ctx: RunContext, edge_diff: DataFrame, base: SilverBase, tenants: list[str]
) -> tuple[DataFrame, int]:
    """Edges and nodes whose presence in the tenant's whole graph changed, and how many.

    `edge_diff` is per partition: a returning user's node is "added" to every new date.
    Only rows present in the union of all dates before and absent after (or the reverse)
    change the graph; the rest cost nothing downstream.
    """
    key = ["tenant_id", "src", "dkey"]
    candidates = edge_diff.select(
        "tenant_id", "src", F.coalesce("dst", F.lit("")).alias("dkey")
    ).distinct()

    def present(store: DataFrame, flag: str) -> DataFrame:
        return (
            store.select("tenant_id", "src", F.coalesce("dst", F.lit("")).alias("dkey"))
            .join(candidates, key, "left_semi")
            .distinct()
            .withColumn(flag, F.lit(True))
        )

    now = read_table(ctx.spark, ctx.path(SILVER_IDENTITY_EDGES.name))
    joined = candidates.join(present(now.where(tenants_predicate(tenants)), "now"), key, "left")
    before = base.read(ctx, SILVER_IDENTITY_EDGES, tenants)
    if before is not None:
        joined = joined.join(present(before, "before"), key, "left")
    else:
        joined = joined.withColumn("before", F.lit(None).cast("boolean"))
    changed = F.coalesce("now", F.lit(False)) != F.coalesce("before", F.lit(False))
    changes, seen = checkpoint_observing(
        joined.where(changed).select(
            "tenant_id", "src", F.when(F.col("dkey") != "", F.col("dkey")).alias("dst")
        ),
        n=F.count(F.lit(1)),
    )
    return changes, seen["n"]


def build(
    ctx: RunContext,
    delivery_date: dt.date,
    tenants: list[str],
    ranked: DataFrame,
    touched: Mapping[str, Iterable[dt.date]],
    base: SilverBase,
) -> PeopleResult:
    """Stitch, attribute and publish the survivors of the touched partitions; `base`: what
    they are compared with (`jobs.silver_progress`)."""
    spark = ctx.spark
    touched_dates: Dates = {t: set(d) for t, d in touched.items() if d}
    if not touched_dates:
        return PeopleResult({}, {}, 0, 0, 0, 0)
    predicate = partition_predicate(touched_dates, "event_date")
    tenant_filter = tenants_predicate(touched_dates)
    people = sorted(touched_dates)
    survivors = ranked.where("is_survivor").drop("is_survivor")

    # 1. evidence -------------------------------------------------------------------------
    with ctx.stage("silver.identity_edges"):
        edge_diff, _ = _replace_evidence(
            ctx,
            SILVER_IDENTITY_EDGES,
            raw_identity_edges(survivors, keys=("tenant_id", "event_date")).select(
                "tenant_id", "src", "dst", "event_date"
            ),
            predicate,
            base,
            people,
        )
    with ctx.stage("silver.group_calls"):
        call_diff, call_changes = _replace_evidence(
            ctx,
            SILVER_GROUP_CALLS,
            survivors.where(F.col("type") == "group").select(*GROUP_CALL_COLUMNS),
            predicate,
            base,
            people,
        )

    # 2. stitching ------------------------------------------------------------------------
    with ctx.stage("silver.identity"):
        edge_diff, graph_changes = _graph_changes(ctx, edge_diff, base, people)
        if not graph_changes and not base.dirty(people):  # the same graph: the same persons
            nodes = spark.createDataFrame([], "tenant_id string, node string")
            none = spark.createDataFrame([], "tenant_id string, person_id string")
            stitched = _Stitched(nodes, none, 0, 0, 0, 0)
        else:
            stitched = _stitch(ctx, edge_diff, people, delivery_date, base)

    # 3. restatement ----------------------------------------------------------------------
    with ctx.stage("silver.restatement"):
        identity_map = _map_nodes(read_table(spark, ctx.path(SILVER_IDENTITY_MAP.name)))
        identity_map = identity_map.where(tenant_filter)
        node_dates = (
            read_table(spark, ctx.path(SILVER_IDENTITY_EDGES.name))
            .where(tenant_filter)
            .where(F.col("dst").isNull())
            .select("tenant_id", "event_date", F.col("src").alias("node"))
        )
        person_dates = node_dates.join(identity_map, ["tenant_id", "node"]).select(
            "tenant_id", "person_id", "event_date"
        )
        calls = (
            read_table(spark, ctx.path(SILVER_GROUP_CALLS.name))
            .where(tenant_filter)
            .withColumn("node", event_node())
            .join(identity_map, ["tenant_id", "node"])
        )
        # (tenant_id, event_date, reason) of every finding, gathered by one collect
        findings: list[DataFrame] = []
        if stitched.changed_nodes:
            findings.append(
                node_dates.join(stitched.changed_ids, ["tenant_id", "node"], "left_semi")
                .select("tenant_id", "event_date")
                .unionByName(
                    person_dates.join(
                        stitched.restated_persons, ["tenant_id", "person_id"], "left_semi"
                    ).select("tenant_id", "event_date")
                )
                .withColumn("reason", F.lit("identity"))
            )
        if call_changes:
            findings += _attribution_restatement(call_diff, identity_map, calls, person_dates)
        found = _dates_by_reason(findings)
        by_identity, by_calls = found.get("identity", {}), found.get("attribution", {})
        group_changes = {t: min(ds) for t, ds in found.get(_FIRST_CALL, {}).items()}
    restated: dict[str, dict[dt.date, set[str]]] = defaultdict(lambda: defaultdict(set))
    for reason, dates in (
        ("events", touched_dates),
        ("identity", by_identity),
        ("attribution", by_calls),
    ):
        for tenant, ds in dates.items():
            for d in ds:
                restated[tenant][d].add(reason)
    written: Dates = {t: set(ds) for t, ds in restated.items()}

    # 4. publishing -----------------------------------------------------------------------
    events_path = ctx.path(SILVER_EVENTS.name)
    base = survivors
    extra: Dates = {t: ds - touched_dates.get(t, set()) for t, ds in written.items()}
    extra = {t: ds for t, ds in extra.items() if ds}
    existing = read_table(spark, events_path)
    if existing is not None and extra:
        base = base.unionByName(
            existing.where(partition_predicate(extra, "event_date")).select(survivors.columns)
        )
    with_person = (
        base.withColumn("node", event_node())
        .join(identity_map, ["tenant_id", "node"], "left")
        .drop("node")
    )
    calls = calls.join(
        with_person.select("tenant_id", "person_id").distinct(),
        ["tenant_id", "person_id"],
        "left_semi",
    ).select("tenant_id", "person_id", "event_ts", "group_id", "message_id")
    events = materialize(  # not persist(): the silver.events write would re-plan it
        with_person.transform(attribute_accounts(calls)).select(
            *survivors.columns, "person_id", "account_id", "attribution"
        )
    )
    try:
        with ctx.stage(SILVER_EVENTS.name):
            ctx.gates.publish(SILVER_EVENTS, events, partition_predicate(written, "event_date"))
        with ctx.stage(SILVER_PERSON_ACCOUNT_DAILY.name):
            ctx.gates.publish(
                SILVER_PERSON_ACCOUNT_DAILY,
                events.transform(person_account_daily(ctx.run_id)),
                partition_predicate(written, "event_date"),
            )
    finally:
        release(events)
    with ctx.stage(SILVER_SESSIONS.name):
        _publish_sessions(ctx, written)
    with ctx.stage(SILVER_ACCOUNT_MEMBERSHIPS.name):
        daily = read_table(spark, ctx.path(SILVER_PERSON_ACCOUNT_DAILY.name)).where(
            tenants_predicate(written)
        )
        ctx.gates.publish(
            SILVER_ACCOUNT_MEMBERSHIPS,
            daily.transform(memberships(ctx.run_id)),
            tenants_predicate(written),
        )
    edge_diff.unpersist()
    call_diff.unpersist()
    ctx.log.info(
        "silver.people: %s identifiers re-stitched, %s changed person, %s rounds, "
        "largest re-stitched component %s; events rewritten on %s partitions (%s beyond the "
        "delivery's)",
        stitched.affected_nodes,
        stitched.changed_nodes,
        stitched.iterations,
        stitched.largest_component,
        sum(len(d) for d in written.values()),
        sum(len(d) for d in extra.values()),
    )
    return PeopleResult(
        {t: dict(ds) for t, ds in restated.items()},
        group_changes,
        stitched.iterations,
        stitched.affected_nodes,
        stitched.changed_nodes,
        stitched.largest_component,
    )


@dataclass(frozen=True)
class _Stitched:
    changed_ids: DataFrame  # (tenant_id, node): identifiers whose person changed
    restated_persons: DataFrame  # (tenant_id, person_id): persons to restate on every date
    iterations: int
    affected_nodes: int
    changed_nodes: int
    largest_component: int


def _stitch(
    ctx: RunContext,
    edge_diff: DataFrame,
    tenants: list[str],
    delivery_date: dt.date,
    base: SilverBase,
) -> _Stitched:
    """Re-stitch the components `edge_diff` reaches; publish the map; → who to restate.

    "Old" persons are the base map's. For a tenant an interrupted pass left half-written,
    the identifiers whose person differs between the base map and the map as it is now
    are re-stitched as well, and the map is corrected from what it is now."""
    spark = ctx.spark
    tenant_filter = tenants_predicate(tenants)
    k = ctx.settings.pipeline.identity.max_user_ids_per_identifier
    map_path = ctx.path(SILVER_IDENTITY_MAP.name)
    map_version = current_version(spark, map_path)
    empty_map = spark.createDataFrame([], "tenant_id string, node string, person_id string")
    based = base.read(ctx, SILVER_IDENTITY_MAP, tenants)
    old_map = empty_map if based is None else _map_nodes(based)
    dirty = base.dirty(tenants)
    # an interrupted pass may have published a map the base does not know: "now" differs
    interrupted = bool(dirty) and map_version is not None
    now_map = old_map
    if interrupted:
        now_map = _map_nodes(read_table(spark, map_path, map_version)).where(tenant_filter)
    raw = (
        read_table(spark, ctx.path(SILVER_IDENTITY_EDGES.name))
        .where(tenant_filter)
        .select("tenant_id", "src", "dst")
        .distinct()
    )
    touched = edge_diff.select("tenant_id", F.col("src").alias("node")).unionByName(
        edge_diff.where(F.col("dst").isNotNull()).select("tenant_id", F.col("dst").alias("node"))
    )
    if interrupted:  # identifiers an interrupted pass moved
        touched = touched.unionByName(
            _paired(
                old_map.where(tenants_predicate(dirty)), now_map.where(tenants_predicate(dirty))
            )
            .where(_moved())
            .select("tenant_id", "node")
        )
    touched = touched.distinct()
    links = raw.where(F.col("dst").isNotNull())
    neighbours = (
        links.join(touched.withColumnRenamed("node", "src"), ["tenant_id", "src"])
        .select("tenant_id", F.col("dst").alias("node"))
        .unionByName(
            links.join(touched.withColumnRenamed("node", "dst"), ["tenant_id", "dst"]).select(
                "tenant_id", F.col("src").alias("node")
            )
        )
    )
    reach = touched.unionByName(neighbours).distinct()
    old_persons = old_map.join(reach, ["tenant_id", "node"]).select("tenant_id", "person_id")
    # the log line's figures ride on the checkpoints' own jobs as observed metrics
    affected, affected_n = checkpoint_observing(
        reach.unionByName(
            old_map.join(old_persons.distinct(), ["tenant_id", "person_id"]).select(
                "tenant_id", "node"
            )
        ).distinct(),
        n=F.count(F.lit(1)),
    )
    # every raw row incident to an affected node (complete K-guard degrees for those nodes);
    # materialised once: the K guard and the component rounds refer to it many times, and
    # each reference would otherwise scan the edge store again
    incident = (
        raw.join(affected.withColumnRenamed("node", "src"), ["tenant_id", "src"], "left_semi")
        .unionByName(
            links.join(affected.withColumnRenamed("node", "dst"), ["tenant_id", "dst"], "left_semi")
        )
        .localCheckpoint()
    )
    guarded = apply_k_guard(incident, k)
    inside = guarded.join(
        affected.withColumnRenamed("node", "src"), ["tenant_id", "src"], "left_semi"
    )
    inside = inside.where(F.col("dst").isNull()).unionByName(
        inside.where(F.col("dst").isNotNull()).join(
            affected.withColumnRenamed("node", "dst"), ["tenant_id", "dst"], "left_semi"
        )
    )
    components = connected_components(inside.localCheckpoint())
    component = Window.partitionBy("tenant_id", "component")
    sized, largest_n = checkpoint_observing(
        components.labels.withColumn("size", F.count(F.lit(1)).over(component)),
        n=F.max("size"),
    )
    labels = sized.drop("size")
    new_persons = persons_of(labels).localCheckpoint()
    new_nodes = _map_nodes(new_persons)

    def against(persons: DataFrame) -> DataFrame:
        """Every affected identifier: its person in `persons` (old) and now (new)."""
        inside = persons.join(affected, ["tenant_id", "node"], "left_semi")
        return _paired(inside, new_nodes)

    # how many identifiers went from one person to another rides on the checkpoint's job
    # (none: no merge log rows)
    old_id, new_id = F.col("old_person_id"), F.col("new_person_id")
    both, moved = checkpoint_observing(
        against(old_map),
        n=F.count(F.when(old_id.isNotNull() & new_id.isNotNull() & (old_id != new_id), 1)),
    )
    changed = both.where(_moved())

    if not interrupted:
        _publish_map(ctx, map_path, map_version, changed, new_persons)
    else:  # correct the map from what the interrupted pass left; restate from the base
        unpublished = against(now_map).localCheckpoint().where(_moved())
        _publish_map(ctx, map_path, map_version, unpublished, new_persons)
        changed = changed.unionByName(unpublished)  # persons the half-written map showed
    superseded = {t: base.runs_since_base[t] for t in dirty}
    _log_merges(ctx, both, moved["n"], delivery_date, superseded)
    changed_ids, changed_n = checkpoint_observing(
        changed.select("tenant_id", "node").distinct(), n=F.count(F.lit(1))
    )

    # An event's person changes exactly when its identifier's person does: those
    # identifiers' dates are restated. A person's other events change only through its
    # group calls (attribution, §4.5): persons that gained or lost an identifier that made
    # group calls are restated on all their dates, the new person and what is left of the
    # old one.
    call_nodes = (
        read_table(spark, ctx.path(SILVER_GROUP_CALLS.name))
        .where(tenant_filter)
        .select("tenant_id", event_node().alias("node"))
    )
    calls_moved = changed.join(call_nodes, ["tenant_id", "node"], "left_semi")
    old_hit = calls_moved.where(F.col("old_person_id").isNotNull()).select(
        "tenant_id", F.col("old_person_id").alias("p")
    )
    restated_persons = (
        calls_moved.where(F.col("new_person_id").isNotNull())
        .select("tenant_id", F.col("new_person_id").alias("person_id"))
        .unionByName(
            both.join(
                old_hit.withColumnRenamed("p", "old_person_id"), ["tenant_id", "old_person_id"]
            )
            .where(F.col("new_person_id").isNotNull())
            .select("tenant_id", F.col("new_person_id").alias("person_id"))
        )
        .distinct()
        .localCheckpoint()
    )
    return _Stitched(
        changed_ids,
        restated_persons,
        components.iterations,
        affected_n["n"],
        changed_n["n"],
        largest_n["n"] or 0,  # NULL: no identifier to stitch
    )


def _paired(before: DataFrame, after: DataFrame) -> DataFrame:
    """Identifiers of either map (tenant_id, node, person_id) with their person in each:
    `old_person_id`, `new_person_id` (NULL where a map does not have them)."""
    return before.withColumnRenamed("person_id", "old_person_id").join(
        after.withColumnRenamed("person_id", "new_person_id"), ["tenant_id", "node"], "full"
    )


def _moved() -> Column:
    """A row of `_paired` whose identifier changed person (or appeared, or went)."""
    return ~F.col("old_person_id").eqNullSafe(F.col("new_person_id"))


def _publish_map(
    ctx: RunContext,
    map_path: str,
    map_version: int | None,
    changed: DataFrame,
    new_persons: DataFrame,
) -> None:
    """One Delta commit: insert, move or delete the identifiers whose person changed."""
    lineage = [F.lit(ctx.run_id).alias("_run_id")]
    if map_version is None:  # the first map: its own tenants' partitions, never "all"
        first = [r.tenant_id for r in new_persons.select("tenant_id").distinct().collect()]
        predicate = tenants_predicate(first)
        ctx.gates.publish(SILVER_IDENTITY_MAP, new_persons.select("*", *lineage), predicate)
        return
    source = ctx.gates.keep(changed).select(
        "tenant_id",
        *split_node(F.col("node")),
        F.col("new_person_id").alias("person_id"),
        *lineage,
    )
    tenants = [r.tenant_id for r in source.select("tenant_id").distinct().collect()]
    if not tenants:
        return
    with_commit_retry(lambda: _merge_map(ctx, map_path, source, tenants), map_path)
    ctx.gates.record(SILVER_IDENTITY_MAP, map_version, tenants_predicate(tenants))


def _merge_map(ctx: RunContext, map_path: str, source: DataFrame, tenants: list[str]) -> None:
    """MERGE the changed identifiers into the map. The source is computed from local
    checkpoints, so it cannot change between the MERGE's two passes: Delta's own copy of
    the source (`merge.materializeSource`, a Spark job of its own) is turned off for it."""
    with conf_for_the_call(ctx.spark, {"spark.databricks.delta.merge.materializeSource": "none"}):
        (
            DeltaTable.forPath(ctx.spark, map_path)
            .alias("t")
            .merge(
                source.alias("s"),
                f"t.{tenants_predicate(tenants)} AND t.tenant_id = s.tenant_id "
                "AND t.id_type = s.id_type AND t.id_value = s.id_value",
            )
            .whenMatchedDelete(condition="s.person_id IS NULL")
            .whenMatchedUpdate(set={"person_id": "s.person_id", "_run_id": "s._run_id"})
            .whenNotMatchedInsert(
                condition="s.person_id IS NOT NULL",
                values={
                    c: f"s.{c}"
                    for c in ("tenant_id", "id_type", "id_value", "person_id", "_run_id")
                },
            )
            .execute()
        )


def _log_merges(
    ctx: RunContext,
    both: DataFrame,
    moves: int,
    delivery_date: dt.date,
    runs_since_base: Mapping[str, Iterable[str]],
) -> None:
    """Append who moved where: one row per (old person, new person) pair of this run.

    `both`: every re-stitched identifier with its old and new person; `moves`: how many of
    them changed from one person to another (no row to log without). `kind` is `merge` when
    the new person gathers identifiers of several old persons, `split` when the old person's
    identifiers now belong to several persons, else `renamed`.

    `runs_since_base`: per tenant an interrupted pass left half-written, the runs since its
    base. `both` is relative to the base, so it holds their moves again: their rows give way
    to this run's in the same commit.
    """
    known = both.where(F.col("old_person_id").isNotNull() & F.col("new_person_id").isNotNull())
    moves = known.where(F.col("old_person_id") != F.col("new_person_id"))
    pairs = moves.groupBy("tenant_id", "old_person_id", "new_person_id").agg(
        F.slice(F.sort_array(F.collect_set("node")), 1, 50).alias("identifiers"),
        F.count(F.lit(1)).alias("identifier_count"),
    )
    sources = known.groupBy("tenant_id", "new_person_id").agg(
        F.countDistinct("old_person_id").alias("_sources")
    )
    targets = known.groupBy("tenant_id", "old_person_id").agg(
        F.countDistinct("new_person_id").alias("_targets")
    )
    rows = (
        pairs.join(sources, ["tenant_id", "new_person_id"])
        .join(targets, ["tenant_id", "old_person_id"])
        .select(
            "tenant_id",
            F.lit(ctx.run_id).alias("run_id"),
            F.lit(delivery_date).alias("delivery_date"),
            "old_person_id",
            "new_person_id",
            F.when(F.col("_sources") > 1, "merge")
            .when(F.col("_targets") > 1, "split")
            .otherwise("renamed")
            .alias("kind"),
            "identifiers",
            "identifier_count",
            F.lit(ctx.started_at).cast("timestamp").alias("logged_at"),
        )
    )
    rows = ctx.gates.keep(rows)
    path = ctx.path(SILVER_IDENTITY_MERGES.name)
    before = current_version(ctx.spark, path)
    superseded = [
        f"({tenants_predicate([t])} AND run_id IN ({', '.join(repr(r) for r in sorted(runs))}))"
        for t, runs in sorted(runs_since_base.items())
        if runs
    ]
    scope = " OR ".join([f"run_id = '{ctx.run_id}'", *superseded])
    if superseded and before is not None:
        replace_partitions(rows, path, scope, SILVER_IDENTITY_MERGES.partition_by)
    elif not moves or (ctx.gates.blocked and rows.isEmpty()):
        return
    else:
        append(rows, path, SILVER_IDENTITY_MERGES.partition_by)
    ctx.gates.record(SILVER_IDENTITY_MERGES, before, scope)


def _attribution_restatement(
    call_diff: DataFrame, identity_map: DataFrame, calls: DataFrame, person_dates: DataFrame
) -> list[DataFrame]:
    """Dates whose attribution a changed `group` call can alter (§4.5 rules 2 and 3), with
    reason `attribution`, and each tenant's earliest changed call's date (`_FIRST_CALL`).

    A call at t changes "latest call ≤ ts" only for the person's events at or after t; it
    changes "earliest call" (all earlier events) only when it is, or was, the earliest.

    `calls`: the tenants' current group calls with their person.
    """
    changes = call_diff.withColumn("node", event_node()).join(identity_map, ["tenant_id", "node"])
    earliest_now = calls.groupBy("tenant_id", "person_id").agg(
        F.min("event_ts").alias("earliest_ts")
    )
    per_person = (
        changes.groupBy("tenant_id", "person_id")
        .agg(F.min("event_ts").alias("changed_ts"), F.min("event_date").alias("changed_date"))
        .join(earliest_now, ["tenant_id", "person_id"], "left")
        .select(
            "tenant_id",
            "person_id",
            F.when(
                F.col("earliest_ts").isNull() | (F.col("changed_ts") <= F.col("earliest_ts")),
                F.lit(dt.date(1900, 1, 1)),
            )
            .otherwise(F.col("changed_date"))
            .alias("from_date"),
        )
    )
    dates = (
        person_dates.join(per_person, ["tenant_id", "person_id"])
        .where(F.col("event_date") >= F.col("from_date"))
        .select("tenant_id", "event_date", F.lit("attribution").alias("reason"))
    )
    first_calls = (
        call_diff.groupBy("tenant_id")
        .agg(F.min("event_date").alias("event_date"))
        .withColumn("reason", F.lit(_FIRST_CALL))
    )
    return [dates, first_calls]


def _publish_sessions(ctx: RunContext, written: Dates) -> None:
    """Rewrite sessions of the written dates ± 1 day from the events of ± 2 days.

    A session belongs to the date of its first event; one that starts the day before a
    rewritten date can gain or lose events, and so can one that starts the day after.
    Sessions running more than 24 hours without a 30-minute pause are out of scope.
    """
    rewrite = _shift(written, (-1, 0, 1))
    window = _shift(written, (-2, -1, 0, 1, 2))
    events = (
        read_table(ctx.spark, ctx.path(SILVER_EVENTS.name))
        .where(partition_predicate(window, "event_date"))
        .where("is_activity AND person_id IS NOT NULL")
    )
    sessions = (
        events.transform(sessionize())
        .where(partition_predicate(rewrite, "event_date"))
        .withColumn("_run_id", F.lit(ctx.run_id))
    )
    ctx.gates.publish(SILVER_SESSIONS, sessions, partition_predicate(rewrite, "event_date"))
