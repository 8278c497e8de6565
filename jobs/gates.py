"""Gated publishing (SPEC §7): what a run writes passes its table's suite first, per tenant.

Every silver and gold write of a run goes through `Gatekeeper.publish`:

1. rows and partitions of tenants already blocked in this run are left out;
2. the slice is computed once (`delta_io.materialize`) and validated against the table's
   suite (`jobs.quality`: one Spark job measures every rule for every tenant; Great
   Expectations gives the verdicts);
3. a tenant whose rows break a `fail` rule is blocked: its rows are left out of this write,
   every earlier write of the run is undone for it (its partitions restored from the
   version before the write), and it is left out of every later write of the run;
4. the remaining tenants' slice is published in one Delta commit.

So each tenant's data of a run is published whole or not at all, the other tenants are
unaffected, and the run fails at the end naming tenant, table, rule and observed value.
Writes that are not `replaceWhere` (the identity map's MERGE, the merge log's append) use
`keep` to drop blocked tenants and `record` so that step 3 can undo them too.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.context import RunContext
from jobs.delta_io import (
    current_version,
    materialize,
    read_table,
    release,
    replace_partitions,
    tenants_predicate,
)
from jobs.quality import Outcome, Validator
from jobs.tables import OPS_DELIVERY_STATS, TableSpec

DELIVERY_PROFILE = "silver.delivery_profile"


class GateFailed(RuntimeError):
    """A `fail` rule blocked one or more tenants; the others were published."""


@dataclass(frozen=True)
class _Write:
    table: str
    path: str
    version_before: int | None
    scope: str  # the rows this write replaced, as a predicate
    partition_by: tuple[str, ...]


@dataclass
class Gatekeeper:
    ctx: RunContext
    blocked: dict[str, list[Outcome]] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0  # time spent validating
    delivery_date: dt.date | None = None
    rows_validated: dict[str, int] = field(default_factory=dict)  # slice rows each gate saw
    _writes: list[_Write] = field(default_factory=list)
    _validator: Validator | None = None
    _recorded: int = 0

    @property
    def validator(self) -> Validator:
        if self._validator is None:
            self._validator = Validator(self.ctx.settings, self.ctx.run_id, self.ctx.log)
        return self._validator

    # ------------------------------------------------------------------ publishing

    def keep(self, df: DataFrame) -> DataFrame:
        """`df` without the rows of blocked tenants."""
        if not self.blocked:
            return df
        return df.where(f"NOT ({tenants_predicate(self.blocked)})")

    def _scoped(self, predicate: str) -> str:
        if not self.blocked:
            return predicate
        return f"({predicate}) AND NOT ({tenants_predicate(self.blocked)})"

    def publish(self, spec: TableSpec, df: DataFrame, predicate: str, *, raw: bool = False) -> None:
        """Validate the slice `df` and replace the `predicate` rows of `spec` with it,
        for every tenant that is not blocked.

        `raw` (bronze): the landed lines are kept whatever the gates say — bronze is the
        archive the gates stand behind — so nothing is left out or withdrawn; a broken
        `fail` rule still blocks the tenant from silver and gold."""
        if not raw:
            df = self.keep(df)
        gated = self.validator.has_suite(spec.name)
        if gated:  # computed once: validated, then written from what was kept
            df = materialize(df)
        try:
            if gated:
                self.check(spec.name, df)
            if raw:
                replace_partitions(df, self.ctx.path(spec.name), predicate, spec.partition_by)
            else:
                self._replace(spec, self.keep(df), self._scoped(predicate))
        finally:
            if gated:
                release(df)

    def _replace(self, spec: TableSpec, df: DataFrame, predicate: str) -> None:
        path = self.ctx.path(spec.name)
        before = current_version(self.ctx.spark, path)
        replace_partitions(df, path, predicate, spec.partition_by)
        self.record(spec, before, predicate)

    def record(self, spec: TableSpec, version_before: int | None, scope: str) -> None:
        """Note a write done outside `publish` (MERGE, append) so that it can be undone."""
        path = self.ctx.path(spec.name)
        self._writes.append(_Write(spec.name, path, version_before, scope, spec.partition_by))

    # ------------------------------------------------------------------ checking

    def check(self, table: str, df: DataFrame) -> set[str]:
        """Validate `df` against `table`'s suite; block the tenants breaking a fail rule.
        Returns the tenants blocked by this check."""
        started = time.perf_counter()
        with self.ctx.stage(f"gate {table}"):
            outcomes = self.validator.validate(table, df, self.delivery_date)
        self.seconds += time.perf_counter() - started
        self.outcomes += outcomes
        self.rows_validated[table] = self.rows_validated.get(table, 0) + sum(
            self.validator.rows_seen.values()
        )
        for o in outcomes:
            if not o.success and (o.tenant_id is None or o.severity == "warn"):
                log = self.ctx.log.error if o.severity == "fail" else self.ctx.log.warning
                log("gate %s: rule %s (%s) failed for %s: %s", table, o.rule, o.severity,
                    o.tenant_id or "all tenants", o.observed)  # fmt: skip
        failing: dict[str, list[Outcome]] = {}
        for o in outcomes:
            if not o.success and o.severity == "fail" and o.tenant_id is not None:
                failing.setdefault(o.tenant_id, []).append(o)
        for tenant, reasons in sorted(failing.items()):
            self.block(tenant, reasons)
        return set(failing)

    def block(self, tenant: str, reasons: Sequence[Outcome]) -> None:
        """Withhold `tenant` from the rest of the run and undo what the run published for it."""
        for o in reasons:
            self.ctx.log.error("gate blocks %s", o.describe())
        if tenant in self.blocked:
            self.blocked[tenant] += list(reasons)
            return
        self.blocked[tenant] = list(reasons)
        with self.ctx.stage("gate withdraw"):
            for w in reversed(self._writes):
                scope = f"({w.scope}) AND tenant_id = '{tenant}'"
                current = read_table(self.ctx.spark, w.path)
                old = (
                    read_table(self.ctx.spark, w.path, w.version_before)
                    if w.version_before is not None
                    else current.limit(0)
                )
                replace_partitions(old.where(scope), w.path, scope, w.partition_by)
        if self._writes:
            self.ctx.log.warning(
                "gate: withdrew %d writes of this run for tenant %s", len(self._writes), tenant
            )

    def check_delivery(self, delivery_date: dt.date, lines: Mapping[str, tuple[int, int]]) -> None:
        """The delivery gate, before any silver row of it is published: per registered
        tenant, the rejected share and the volume against its trailing deliveries.
        `lines`: tenant → (landed event lines, rejected lines)."""
        if not lines or not self.validator.has_suite(DELIVERY_PROFILE):
            return
        trailing = self._trailing_volumes(delivery_date, sorted(lines))
        rows = []
        for tenant, (landed, rejected) in sorted(lines.items()):
            history = trailing.get(tenant, [])
            base = median(history) if history else None
            rows.append(
                (
                    tenant,
                    delivery_date,
                    landed,
                    rejected,
                    rejected / landed if landed else 0.0,
                    float(base) if base is not None else None,
                    landed / base if base else None,
                )
            )
        profile = self.ctx.spark.createDataFrame(
            rows,
            "tenant_id string, delivery_date date, landed_lines long, rejected_lines long, "
            "rejected_share double, trailing_median_lines double, volume_ratio double",
        )
        self.check(DELIVERY_PROFILE, profile)

    def _trailing_volumes(
        self, delivery_date: dt.date, tenants: Sequence[str]
    ) -> dict[str, list[int]]:
        """Landed lines of each tenant's last N deliveries before `delivery_date` (the latest
        run's count per delivery), from `ops.delivery_stats`."""
        stats = read_table(self.ctx.spark, self.ctx.path(OPS_DELIVERY_STATS.name))
        if stats is None:
            return {}
        n = self.ctx.settings.quality.trailing_deliveries
        latest = (
            stats.where(tenants_predicate(tenants))
            .where(F.col("delivery_date") < F.lit(delivery_date))
            .groupBy("tenant_id", "delivery_date")
            .agg(F.max_by("landed_lines", "recorded_at").alias("landed_lines"))
        )
        out: dict[str, list[tuple[dt.date, int]]] = {}
        for r in latest.collect():  # one row per tenant-delivery: small
            out.setdefault(r.tenant_id, []).append((r.delivery_date, int(r.landed_lines)))
        return {t: [v for _, v in sorted(rows)[-n:]] for t, rows in out.items()}

    # ------------------------------------------------------------------ outcome

    def unrecorded(self) -> list[Outcome]:
        """Outcomes not yet handed to the ledger (each is handed over once), as Great
        Expectations confirms them (`Validator.confirm`: one validation per hand-over)."""
        new = self.outcomes[self._recorded :]
        self._recorded = len(self.outcomes)
        if not new:
            return []
        with self.ctx.stage("gate verdicts"):
            return self.validator.confirm(new)

    def failure(self) -> GateFailed | None:
        if not self.blocked:
            return None
        parts = [o.describe() for reasons in self.blocked.values() for o in reasons]
        return GateFailed(
            f"quality gate blocked {len(self.blocked)} tenant(s) "
            f"({', '.join(sorted(self.blocked))}); the other tenants were published. "
            + "; ".join(parts)
        )

    def data_docs(self) -> str | None:
        if self._validator is None or not self.ctx.settings.quality.data_docs:
            return None
        return self._validator.build_data_docs()


# --------------------------------------------------------------------------- re-checking


def _layer_tables(layer: str) -> list[TableSpec]:
    import jobs.tables as tables

    specs = [v for v in vars(tables).values() if isinstance(v, TableSpec)]
    specs += list(tables.BRONZE.values())
    return sorted({s.name: s for s in specs if s.name.startswith(f"{layer}.")}.values(),
                  key=lambda s: s.name)  # fmt: skip


def recheck(ctx: RunContext, layer: str, day: dt.date, tenants: Sequence[str]) -> list[Outcome]:
    """Re-run a layer's gates on what is published: per table with a suite, the partitions
    dated `day` (tables partitioned by tenant only: all their rows) of `tenants`; for
    silver, also the delivery profile of delivery `day` from `ops.delivery_stats`.
    Nothing is written but the verdicts (`ops.quality_results`) and the Data Docs."""
    gates = ctx.gates
    gates.delivery_date = day
    for spec in _layer_tables(layer):
        if not gates.validator.has_suite(spec.name):
            continue
        df = read_table(ctx.spark, ctx.path(spec.name))
        if df is None:
            continue
        df = df.where(tenants_predicate(tenants))
        if len(spec.partition_by) > 1:
            df = df.where(F.col(spec.partition_by[1]) == F.lit(day))
        gates.check(spec.name, df)  # one Spark job; an empty slice gets no verdicts
    if layer == "silver":
        stats = read_table(ctx.spark, ctx.path(OPS_DELIVERY_STATS.name))
        if stats is not None:
            latest = (
                stats.where(tenants_predicate(tenants))
                .where(F.col("delivery_date") == F.lit(day))
                .groupBy("tenant_id")
                .agg(F.max_by(F.struct("landed_lines", "rejected"), "recorded_at").alias("s"))
                .collect()
            )
            lines = {r.tenant_id: (int(r.s.landed_lines), int(r.s.rejected)) for r in latest}
            gates.check_delivery(day, lines)
    return gates.unrecorded()
