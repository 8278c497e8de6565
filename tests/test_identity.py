"""Identity graph and connected components (SPEC §4.4) on hand-built cases."""

from __future__ import annotations

import random

import pytest

from jobs.transforms.identity import connected_components, identity_edges

from .reference_model import UnionFind

SCHEMA = (
    "tenant_id string, type string, user_id string, anonymous_id string, "
    "previous_id string, email_hash string"
)
K = 3


def persons(spark, rows, k: int = K) -> dict[tuple[str, str], str]:
    """(tenant, node) → component, from event rows."""
    events = spark.createDataFrame(rows, SCHEMA)
    result = connected_components(identity_edges(events, k))
    return {(r.tenant_id, r.node): r.component for r in result.labels.collect()}


def groups(labels: dict[tuple[str, str], str]) -> set[frozenset[str]]:
    by_component: dict[tuple[str, str], set[str]] = {}
    for (tenant, node_id), component in labels.items():
        by_component.setdefault((tenant, component), set()).add(f"{tenant}/{node_id}")
    return {frozenset(v) for v in by_component.values()}


def test_anonymous_identify_alias_email_chain_is_one_person(spark) -> None:
    rows = [
        ("acme", "page", None, "dev-1", None, None),           # anonymous visit
        ("acme", "identify", "u-old", "dev-1", None, "e1"),    # signs up: dev-1 ↔ u-old, e1
        ("acme", "alias", "u-new", None, "u-old", None),       # migrates to a new user id
        ("acme", "track", "u-new", "dev-2", None, None),       # second device
        ("acme", "identify", None, "dev-3", None, "e1"),       # third device, same email
        ("acme", "track", "u-other", "dev-9", None, None),     # someone else
    ]  # fmt: skip
    labels = persons(spark, rows)
    assert groups(labels) == {
        frozenset({"acme/anonymous_id:dev-1", "acme/user_id:u-old", "acme/email:e1",
                   "acme/user_id:u-new", "acme/anonymous_id:u-old", "acme/anonymous_id:dev-2",
                   "acme/anonymous_id:dev-3"}),
        frozenset({"acme/user_id:u-other", "acme/anonymous_id:dev-9"}),
    }  # fmt: skip
    # the label is the component's smallest node
    assert labels[("acme", "user_id:u-new")] == "anonymous_id:dev-1"


@pytest.mark.parametrize(("users", "shared"), [(K, True), (K + 1, False)])
def test_shared_device_at_k_links_and_above_k_does_not(spark, users, shared) -> None:
    rows = [("acme", "track", f"u{i}", "kiosk", None, None) for i in range(users)]
    rows.append(("acme", "track", "u0", "laptop-0", None, None))
    labels = persons(spark, rows)
    linked = {labels[("acme", f"user_id:u{i}")] for i in range(users)}
    assert (len(linked) == 1) is shared
    assert ("acme", "anonymous_id:kiosk") in labels  # the device stays a node of its own
    assert labels[("acme", "anonymous_id:laptop-0")] == labels[("acme", "user_id:u0")]


def test_shared_mailbox_above_k_links_nobody(spark) -> None:
    rows = [("acme", "identify", f"u{i}", None, None, "team@") for i in range(K + 1)]
    labels = persons(spark, rows)
    assert len({labels[("acme", f"user_id:u{i}")] for i in range(K + 1)}) == K + 1
    assert labels[("acme", "email:team@")] == "email:team@"


def test_tenants_never_share_a_person(spark) -> None:
    rows = [
        ("acme", "identify", "u1", "d1", None, "same-email-token"),
        ("globex", "identify", "u1", "d1", None, "same-email-token"),
    ]
    labels = persons(spark, rows)
    assert groups(labels) == {
        frozenset({"acme/user_id:u1", "acme/anonymous_id:d1", "acme/email:same-email-token"}),
        frozenset({"globex/user_id:u1", "globex/anonymous_id:d1",
                   "globex/email:same-email-token"}),
    }  # fmt: skip


def test_long_chain_converges_and_order_does_not_matter(spark) -> None:
    n = 40  # a path u0 - d0 - u1 - d1 - ... with a large diameter
    rows = []
    for i in range(n):
        rows.append(("acme", "track", f"u{i:02d}", f"d{i:02d}", None, None))
        rows.append(("acme", "track", f"u{i + 1:02d}", f"d{i:02d}", None, None))
    first = persons(spark, rows)
    random.Random(3).shuffle(rows)
    second = persons(spark, rows)
    assert first == second
    assert len(set(first.values())) == 1 and len(first) == 2 * n + 1


def test_blocked_values_are_already_null_and_make_no_nodes(spark) -> None:
    rows = [("acme", "track", "u1", None, None, None), ("acme", "alias", "u2", None, None, None)]
    labels = persons(spark, rows)
    assert set(labels) == {("acme", "user_id:u1"), ("acme", "user_id:u2")}


def test_iteration_bound_is_enforced(spark) -> None:
    rows = [("acme", "track", f"u{i}", f"d{i}", None, None) for i in range(6)]
    rows += [("acme", "track", f"u{i + 1}", f"d{i}", None, None) for i in range(5)]
    events = spark.createDataFrame(rows, SCHEMA)
    with pytest.raises(RuntimeError, match="did not converge in 1 rounds"):
        connected_components(identity_edges(events, K), max_iterations=1)
    assert connected_components(identity_edges(events, K)).iterations >= 2


@pytest.mark.parametrize("seed", [1, 2])
def test_components_of_random_graphs_match_a_union_find(spark, seed) -> None:
    """Stars, chains and stray edges over two tenants: every label the smallest node of
    its component, as a plain union-find gives it."""
    rng = random.Random(seed)
    rows, reference = [], {}
    for tenant in ("acme", "globex"):
        nodes = [f"user_id:u{i:03d}" for i in range(60)]
        edges = [tuple(rng.sample(nodes, 2)) for _ in range(45)]
        edges += [(nodes[i], nodes[i + 1]) for i in range(10, 25)]  # a long chain
        rows += [(tenant, a, b) for a, b in edges] + [(tenant, n, None) for n in nodes]
        components = UnionFind()  # its root: the smallest node of the component
        for a, b in edges:
            components.union(a, b)
        reference.update({(tenant, n): components.find(n) for n in nodes})
    edges = spark.createDataFrame(rows, "tenant_id string, src string, dst string")
    result = connected_components(edges)
    assert {(r.tenant_id, r.node): r.component for r in result.labels.collect()} == reference
