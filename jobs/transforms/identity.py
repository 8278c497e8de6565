"""Identity stitching (SPEC §4.4): typed identifier graph → persons, DataFrames only.

Nodes are typed identifiers `user_id:<v>`, `anonymous_id:<v>`, `email:<pseudonym>`; edges
come from events (see `identity_edges`). An `anonymous_id` or `email` node linked to more
than K distinct `user_id` nodes is ambiguous (a shared device or mailbox) and contributes no
edges. A person is a connected component of what remains.

Components are found with the alternating large-star / small-star algorithm (Kiveris et al.,
"Connected Components in MapReduce and Beyond", SoCC 2014): O(log n) rounds of joins and
aggregations, no driver collection, no Python UDFs. Node keys carry their tenant, so two
tenants' graphs never touch. Each node ends up labelled with the smallest key of its
component, so a person id is a function of the component alone — not of processing order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.transforms.frames import checkpoint_observing

_SEP = "\x1f"


def node(id_type: str, value: Column) -> Column:
    """Typed node id, e.g. `user_id:42`; NULL when the identifier is absent."""
    return F.when(value.isNotNull(), F.concat(F.lit(f"{id_type}:"), value))


def raw_identity_edges(events: DataFrame, keys: Sequence[str] = ("tenant_id",)) -> DataFrame:
    """Every identity edge and node the events carry, before the K guard.

    `events` needs `keys`, type, user_id, anonymous_id, previous_id and email_hash (blocked
    identifier values already NULL). Returns `keys` + (src, dst) with src < dst for edges,
    and dst NULL for a node row (every identifier seen, so isolated nodes get a person too).
    Pass keys=("tenant_id", "event_date") for the per-date evidence store.
    """
    user = node("user_id", F.col("user_id"))
    anon = node("anonymous_id", F.col("anonymous_id"))
    email = node("email", F.col("email_hash"))
    is_alias = F.col("type") == "alias"
    is_identify = F.col("type") == "identify"
    pairs = events.select(
        *keys,
        F.array(
            F.struct(user.alias("a"), anon.alias("b")),
            F.struct(F.when(is_identify, email).alias("a"), F.coalesce(user, anon).alias("b")),
            F.struct(
                F.when(is_alias, user).alias("a"),
                F.when(is_alias, node("anonymous_id", F.col("previous_id"))).alias("b"),
            ),
            F.struct(
                F.when(is_alias, user).alias("a"),
                F.when(is_alias, node("user_id", F.col("previous_id"))).alias("b"),
            ),
            # node rows: b is NULL
            F.struct(user.alias("a"), F.lit(None).cast("string").alias("b")),
            F.struct(anon.alias("a"), F.lit(None).cast("string").alias("b")),
            F.struct(F.when(is_identify, email).alias("a"), F.lit(None).cast("string").alias("b")),
            F.struct(
                F.when(is_alias, node("anonymous_id", F.col("previous_id"))).alias("a"),
                F.lit(None).cast("string").alias("b"),
            ),
            F.struct(
                F.when(is_alias, node("user_id", F.col("previous_id"))).alias("a"),
                F.lit(None).cast("string").alias("b"),
            ),
        ).alias("pairs"),
    )
    a, b = F.col("p.a"), F.col("p.b")
    return (
        pairs.select(*keys, F.explode("pairs").alias("p"))
        .where(a.isNotNull() & (b.isNull() | (a != b)))
        .select(
            *keys,
            F.when(b.isNull(), a).otherwise(F.least(a, b)).alias("src"),
            F.when(b.isNotNull(), F.greatest(a, b)).alias("dst"),
        )
        .distinct()
    )


def apply_k_guard(raw: DataFrame, max_user_ids: int) -> DataFrame:
    """Drop the edges of ambiguous nodes: an `anonymous_id` or `email` node adjacent to more
    than `max_user_ids` distinct `user_id` nodes (a shared device or mailbox). Node rows stay.

    `raw`: tenant_id, src, dst (any extra key columns are ignored; edges are deduplicated).
    """
    rows = raw.select("tenant_id", "src", "dst").distinct()
    edges = rows.where(F.col("dst").isNotNull())
    both = edges.select("tenant_id", F.col("src").alias("n"), F.col("dst").alias("m")).unionByName(
        edges.select("tenant_id", F.col("dst").alias("n"), F.col("src").alias("m"))
    )
    ambiguous = (
        both.where(~F.col("n").startswith("user_id:") & F.col("m").startswith("user_id:"))
        .groupBy("tenant_id", "n")
        .agg(F.countDistinct("m").alias("user_ids"))
        .where(F.col("user_ids") > max_user_ids)
        .select("tenant_id", "n")
    )
    kept = edges.join(
        ambiguous.withColumnRenamed("n", "src"), ["tenant_id", "src"], "left_anti"
    ).join(ambiguous.withColumnRenamed("n", "dst"), ["tenant_id", "dst"], "left_anti")
    nodes = rows.where(F.col("dst").isNull())
    return kept.select("tenant_id", "src", "dst").unionByName(nodes)


def identity_edges(events: DataFrame, max_user_ids: int) -> DataFrame:
    """Identity edges (tenant_id, src, dst) after the K guard, plus a node row (dst NULL)
    for every identifier seen."""
    return apply_k_guard(raw_identity_edges(events), max_user_ids)


@dataclass(frozen=True)
class Components:
    """`labels`: (tenant_id, node, component) with component = smallest node of it."""

    labels: DataFrame
    iterations: int


def _edges_of(rows: DataFrame, *pairs: tuple[str, str]) -> DataFrame:
    """An edge (u, v) for each pair of `rows`' columns, per row: one pass over `rows`."""
    ends = [F.struct(F.col(u).alias("u"), F.col(v).alias("v")) for u, v in pairs]
    return rows.select(F.explode(F.array(*ends)).alias("e")).select("e.u", "e.v")


# Each star step is one window over its edges grouped by u: the smallest neighbour travels
# with every edge instead of being aggregated and joined back, so a round's plan reads its
# input once per step rather than once per reference.
def _smallest_v_of_u() -> Column:
    return F.min("v").over(Window.partitionBy("u"))


def _large_star(edges: DataFrame) -> DataFrame:
    """Every neighbour v > u of u linked to the smallest of u and its neighbours."""
    return (
        _edges_of(edges, ("u", "v"), ("v", "u"))
        .withColumn("m", F.least(_smallest_v_of_u(), F.col("u")))
        .where(F.col("v") > F.col("u"))
        .select(F.col("v").alias("u"), F.col("m").alias("v"))
        .where(F.col("u") != F.col("v"))
        .distinct()
    )


def _small_star(edges: DataFrame) -> DataFrame:
    """u and every neighbour smaller than u linked to the smallest of those neighbours."""
    linked = (
        _edges_of(edges, ("u", "v"), ("v", "u"))
        .where(F.col("v") < F.col("u"))  # neighbours smaller than u
        .withColumn("m", _smallest_v_of_u())
    )
    return _edges_of(linked, ("v", "m"), ("u", "m")).where(F.col("u") != F.col("v")).distinct()


def _marked(edges: DataFrame) -> DataFrame:
    """Small-star output with `open`: whether the edge keeps its component from being a
    star around its smallest node (u has another edge, or v has an edge of its own). Small
    star always points down (v < u) and a forest of stars is a fixed point of both steps,
    so a round without an open edge is the last one."""
    sources = edges.select(F.col("u").alias("v")).distinct().withColumn("has_edge", F.lit(1))
    return edges.join(sources, "v", "left").select(
        "u",
        "v",
        (
            (F.count(F.lit(1)).over(Window.partitionBy("u")) > 1) | F.col("has_edge").isNotNull()
        ).alias("open"),
    )


def connected_components(
    edges: DataFrame,
    max_iterations: int = 40,
    checkpoint: Callable[[DataFrame], DataFrame] = lambda df: df.localCheckpoint(),
) -> Components:
    """Label every node of `identity_edges` output with its component's smallest node.

    Each round (large-star then small-star) is materialised with `checkpoint` to keep the
    plan short, in one Spark job with its convergence test; on a cluster pass a reliable
    `df.checkpoint()` instead (it must be eager: the test is read when it returns). Raises
    RuntimeError when the graph has not converged after `max_iterations` rounds.
    """
    keyed = edges.select(
        F.concat_ws(_SEP, "tenant_id", "src").alias("u"),
        F.when(F.col("dst").isNotNull(), F.concat_ws(_SEP, "tenant_id", "dst")).alias("v"),
    )
    all_nodes = (
        keyed.select("u")
        .unionByName(keyed.where(F.col("v").isNotNull()).select(F.col("v").alias("u")))
        .distinct()
    )
    current = checkpoint(keyed.where(F.col("v").isNotNull()).select(
        F.least("u", "v").alias("u"), F.greatest("u", "v").alias("v")
    ).distinct())  # fmt: skip
    rounds = 0
    while True:
        rounds += 1
        # the convergence test rides on the round's own job: an observed metric of the
        # frame being checkpointed, not a second action over the checkpoint
        marked, flags = checkpoint_observing(
            _marked(_small_star(_large_star(current))),
            checkpoint,
            open=F.max(F.col("open").cast("int")),
        )
        current = marked.select("u", "v")
        if not flags["open"]:  # NULL: no edge left at all
            break
        if rounds >= max_iterations:
            raise RuntimeError(f"connected components did not converge in {max_iterations} rounds")
    # converged: every edge is (node, smallest node of its component)
    labelled = all_nodes.join(current, "u", "left").select(
        "u", F.coalesce(F.least("v", "u"), F.col("u")).alias("c")
    )
    labels = labelled.select(
        F.substring_index("u", _SEP, 1).alias("tenant_id"),
        F.expr(f"substr(u, instr(u, '{_SEP}') + 1)").alias("node"),
        F.expr(f"substr(c, instr(c, '{_SEP}') + 1)").alias("component"),
    )
    return Components(labels, rounds)


def person_id(tenant_id: Column, component: Column) -> Column:
    """Deterministic person id from the component's smallest node (no raw identifier in it)."""
    return F.concat(
        F.lit("p_"), F.substring(F.sha2(F.concat_ws(_SEP, tenant_id, component), 256), 1, 24)
    )


def _type_rank(node_id: Column) -> Column:
    return (
        F.when(node_id.startswith("user_id:"), 0).when(node_id.startswith("email:"), 1).otherwise(2)
    )


def split_node(node_id: Column) -> tuple[Column, Column]:
    """`user_id:42` → (id_type 'user_id', id_value '42'); the inverse of `node`."""
    return (
        F.substring_index(node_id, ":", 1).alias("id_type"),
        F.substr(node_id, F.instr(node_id, ":") + 1).alias("id_value"),
    )


def persons_of(labels: DataFrame) -> DataFrame:
    """Component labels → (tenant_id, id_type, id_value, person_id).

    The person id hashes the component's representative: its smallest `user_id` node, else
    its smallest email, else its smallest anonymous id. Any member would give a deterministic
    id; preferring the login keeps a person's id stable while devices come and go.
    """
    component = Window.partitionBy("tenant_id", "component")
    representative = F.min(
        F.struct(_type_rank(F.col("node")).alias("r"), F.col("node").alias("n"))
    ).over(component)["n"]
    return labels.select(
        "tenant_id",
        *split_node(F.col("node")),
        person_id(F.col("tenant_id"), representative).alias("person_id"),
    )
