"""What silver compares against: a tenant's tables as its last whole silver pass left them.

Silver publishes evidence (identity edges, group calls, the typed account snapshots) and the
tables derived from it (identity map, events, account history, hierarchy) in several
commits, and works out what to restate by comparing each new table with the old one. A
driver killed between two of those commits leaves the evidence new and what follows it old;
its re-run, comparing against the half-written tables, would see no change and leave them so.

So every silver pass of a delivery appends, per tenant, a `started` row to
`ops.silver_progress` with the versions of `BASE_TABLES` it compares against, and a `done`
row once its restatements are recorded. A pass that finds a tenant's latest row `started`
(or `done` with deliveries still pending) knows an earlier pass died half-way:

- it compares against the versions the first interrupted pass started from, carried
  forward, however many passes die in a row;
- it compares the tenant's whole evidence, not only the partitions of its own delivery, and
  re-derives the identity map from the difference as well as from what was published since;
- the tenant stays *pending* until the interrupted deliveries themselves are re-run
  (Airflow's retry, or `lakehouse run --date D`); every pass in between says so in its log.

A clean tenant compares against the versions current when its pass starts: the same
tables it would read anyway, at no extra cost. See docs/decisions.md, "Crash safety".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.context import RunContext
from jobs.delta_io import append, current_version, read_table, tenants_predicate
from jobs.ledger import utc_now
from jobs.tables import (
    OPS_SILVER_PROGRESS,
    SILVER_ACCOUNT_HIERARCHY,
    SILVER_ACCOUNTS,
    SILVER_ACCOUNTS_SNAPSHOTS,
    SILVER_GROUP_CALLS,
    SILVER_IDENTITY_EDGES,
    SILVER_IDENTITY_MAP,
    SILVER_SUBSCRIPTIONS,
    SILVER_TICKET_VERSIONS,
    TableSpec,
)

# the tables silver compares new results with (everything a restatement is derived from)
BASE_TABLES: tuple[TableSpec, ...] = (
    SILVER_IDENTITY_EDGES,
    SILVER_GROUP_CALLS,
    SILVER_IDENTITY_MAP,
    SILVER_ACCOUNTS_SNAPSHOTS,
    SILVER_SUBSCRIPTIONS,
    SILVER_TICKET_VERSIONS,
    SILVER_ACCOUNTS,
    SILVER_ACCOUNT_HIERARCHY,
)

PROGRESS_SCHEMA = T.StructType(
    [
        T.StructField("tenant_id", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("delivery_date", T.DateType(), False),
        T.StructField("state", T.StringType(), False),  # started | done
        T.StructField("base_versions", T.MapType(T.StringType(), T.LongType()), False),
        T.StructField("pending_deliveries", T.ArrayType(T.DateType(), False), False),
        T.StructField("runs_since_base", T.ArrayType(T.StringType(), False), False),
        T.StructField("recorded_at", T.TimestampType(), False),
    ]
)


@dataclass(frozen=True)
class SilverBase:
    """The versions one silver pass compares against, per tenant."""

    delivery_date: dt.date
    versions: dict[str, dict[str, int]]  # tenant → table → version
    pending: dict[str, tuple[dt.date, ...]]  # tenant → deliveries interrupted passes left
    runs_since_base: dict[str, tuple[str, ...]]  # tenant → runs that wrote after its base

    def dirty(self, tenants: Iterable[str]) -> list[str]:
        """The `tenants` an interrupted pass left half-written."""
        return sorted(t for t in tenants if t in self.pending)

    def read(self, ctx: RunContext, spec: TableSpec, tenants: Iterable[str]) -> DataFrame | None:
        """`spec`'s rows of `tenants` as of their base versions; None when no tenant had it.

        Tenants the pass did not start for are read as they are now."""
        groups: dict[int | None, list[str]] = defaultdict(list)
        for t in sorted(set(tenants)):
            if t in self.versions:
                if spec.name in self.versions[t]:
                    groups[self.versions[t][spec.name]].append(t)
            else:
                groups[None].append(t)
        parts = []
        for version, members in groups.items():
            table = read_table(ctx.spark, ctx.path(spec.name), version)
            if table is not None:
                parts.append(table.where(tenants_predicate(members)))
        return reduce(DataFrame.unionByName, parts) if parts else None


def _latest(ctx: RunContext, tenants: Sequence[str]) -> dict[str, T.Row]:
    table = read_table(ctx.spark, ctx.path(OPS_SILVER_PROGRESS.name))
    if table is None or not tenants:
        return {}
    rows = (
        table.where(tenants_predicate(tenants))
        .groupBy("tenant_id")
        .agg(F.max_by(F.struct(*PROGRESS_SCHEMA.fieldNames()), "recorded_at").alias("last"))
        .collect()
    )
    return {r.tenant_id: r.last for r in rows}


def pending_deliveries(ctx: RunContext, tenant: str) -> list[dt.date]:
    """The deliveries of `tenant` interrupted silver passes left half-built."""
    last = _latest(ctx, [tenant]).get(tenant)
    return [] if last is None else sorted(_left(last))


def _left(last: T.Row) -> set[dt.date]:
    """Deliveries pending after the tenant's `last` row: a `started` row is a pass that
    never finished."""
    left = set(last.pending_deliveries)
    if last.state == "started":
        left.add(last.delivery_date)
    return left


def start(ctx: RunContext, delivery_date: dt.date, tenants: Sequence[str]) -> SilverBase:
    """Record that silver begins `delivery_date` for `tenants`; → what it compares against."""
    tenants = sorted(set(tenants))
    now_versions = {}
    for spec in BASE_TABLES:
        version = current_version(ctx.spark, ctx.path(spec.name))
        if version is not None:
            now_versions[spec.name] = version
    versions, pending, runs = {}, {}, {}
    for t, last in _latest(ctx, tenants).items():
        left = _left(last)
        if left:
            versions[t] = dict(last.base_versions)
            pending[t] = tuple(sorted(left))
            runs[t] = tuple(last.runs_since_base)  # each pass lists itself
    for t in tenants:
        versions.setdefault(t, now_versions)
    base = SilverBase(delivery_date, versions, pending, runs)
    for t in base.dirty(tenants):
        ctx.log.warning(
            "silver: tenant %s has deliveries an interrupted (or gate-blocked) pass left "
            "unfinished (%s); this pass compares against the tables before them, and the "
            "tenant stays pending until they are re-run",
            t,
            ", ".join(d.isoformat() for d in pending[t]),
        )
    _record(ctx, base, tenants, "started")
    return base


def finish(ctx: RunContext, base: SilverBase) -> None:
    """Record that silver's pass of `base.delivery_date` is complete: its restatements are
    recorded. A tenant with other interrupted deliveries keeps its base until they are.

    A tenant a gate blocked gets no `done` row: withdrawing restored its tables to what they
    were before this pass, which for a pending tenant is not its base."""
    done = [t for t in sorted(base.versions) if t not in ctx.gates.blocked]
    _record(ctx, base, done, "done")


def _record(ctx: RunContext, base: SilverBase, tenants: Sequence[str], state: str) -> None:
    now = utc_now()
    rows = []
    for t in tenants:
        pending = set(base.pending.get(t, ()))
        if state == "done":
            pending.discard(base.delivery_date)
        keep = bool(pending) or state == "started"
        rows.append(
            (
                t,
                ctx.run_id,
                base.delivery_date,
                state,
                base.versions[t] if keep else {},
                sorted(pending),
                [*base.runs_since_base.get(t, ()), ctx.run_id] if keep else [],
                now,
            )
        )
    if rows:
        append(
            ctx.spark.createDataFrame(rows, PROGRESS_SCHEMA),
            ctx.path(OPS_SILVER_PROGRESS.name),
            OPS_SILVER_PROGRESS.partition_by,
        )
