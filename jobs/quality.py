"""Quality rules as data, checked with Great Expectations 1.x (SPEC §7 "Gated").

A suite is the list of named rules a table's slice must pass before it is published; the
suites live in `expectations/<layer>.yaml` (table → rules) and the thresholds and severity
overrides in `conf/quality.yaml`. A rule is one Great Expectations expectation:

    - rule: dau_le_wau                       # unique within the table
      expect: column_pair_values_a_to_be_greater_than_b   # GX name without `expect_`
      column_A: wau_7d                       # the expectation's own arguments
      column_B: dau
      or_equal: true
      severity: fail                         # fail (default) | warn
      description: a week's actives include the day's

`columns: [a, b]` expands a rule into one expectation per column (`rule[a]`, `rule[b]`).
`expect: unexpected_rows` takes a Spark SQL `query` returning the offending rows, where
`{batch}` is the slice, `{layer.table}` a published table and `${name}` a threshold.

`Validator.validate` measures a slice once for every rule and tenant in one Spark job
(`jobs.transforms.quality`), then Great Expectations validates the per-tenant frame of
those measures through a file context under `<warehouse>/_quality` (its results feed the
Data Docs): every rule gets a verdict per tenant, whatever the number of rules or tenants.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import DataFrame

from jobs.config import SEVERITIES, ConfigError, QualityConf, Settings

GX_SEVERITY = {"fail": "critical", "warn": "warning"}
UNEXPECTED_ROWS = "unexpected_rows"
SCHEMA_RULE = "table_columns_to_match_set"
METRICS_SOURCE = "tenant_metrics"  # the GX pandas data source of the per-tenant frames
GATES_ASSET = "gates"  # its one asset: a row per (check, tenant), a column per rule
GATES_SUITE = "lakehouse.gates"  # + ".<layer>": every rule of a layer, as `table:rule` = 0
_TABLE_REF = re.compile(r"\{([a-z_]+\.[a-z_]+)\}")
_PARAM_REF = re.compile(r"\$\{([a-z_]+)\}")
_RULE_KEYS = {"rule", "expect", "severity", "description", "columns", "query"}
# `${name}` values a query may use besides conf/quality.yaml's params
DERIVED_PARAMS = ("delivery_date", "health_healthy", "health_watch")


def layer_of(table: str) -> str:
    """`silver.events` → `silver`: the gates' GX suites are one per layer."""
    return table.split(".", 1)[0]


@dataclass(frozen=True)
class Rule:
    """One named expectation of a table's suite."""

    table: str
    name: str
    expect: str  # Great Expectations name without `expect_`, or `unexpected_rows`
    kwargs: Mapping[str, Any]
    severity: str
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.table}:{self.name}"

    @property
    def expectation_type(self) -> str:
        return (
            "unexpected_rows_expectation"
            if self.expect == UNEXPECTED_ROWS
            else f"expect_{self.expect}"
        )


@dataclass(frozen=True)
class Outcome:
    """A rule's verdict on a slice (`tenant_id` None) or on one tenant's rows of it."""

    table: str
    rule: str
    expectation: str
    severity: str
    success: bool
    observed: str
    tenant_id: str | None = None
    delivery_date: dt.date | None = None
    unexpected: int = 0  # the rows of the tenant that break the rule (what GX checks is 0)
    check: int = 0  # which validation of the run (a table may be checked more than once)

    def describe(self) -> str:
        who = f"tenant {self.tenant_id}" if self.tenant_id else "all tenants"
        return (
            f"{who}: {self.table} rule {self.rule} ({self.expectation}, {self.severity}) "
            f"observed {self.observed}"
        )


# --------------------------------------------------------------------------- loading


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def expectation_class(expect: str) -> type:
    """The Great Expectations class for a rule's `expect` (ConfigError when unknown)."""
    import great_expectations.expectations as gxe

    name = "UnexpectedRowsExpectation" if expect == UNEXPECTED_ROWS else f"Expect{_camel(expect)}"
    cls = getattr(gxe, name, None)
    if cls is None:
        raise KeyError(expect)
    return cls


def _rules_of(table: str, items: Any, where: str, conf: QualityConf) -> list[Rule]:
    if not isinstance(items, list):
        raise ConfigError(f"{where}: expected a list of rules")
    rules: list[Rule] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping) or "rule" not in item or "expect" not in item:
            raise ConfigError(f"{at}: a rule needs `rule` and `expect`")
        name, expect = str(item["rule"]), str(item["expect"])
        try:
            expectation_class(expect)
        except KeyError:
            raise ConfigError(
                f"{at}.expect: {expect!r} is not a Great Expectations expectation"
            ) from None
        severity = conf.severity.get(f"{table}:{name}", item.get("severity", "fail"))
        if severity not in SEVERITIES:
            raise ConfigError(f"{at}.severity: {severity!r} is not one of fail, warn")
        kwargs = {k: v for k, v in item.items() if k not in _RULE_KEYS}
        if expect == UNEXPECTED_ROWS:
            if "query" not in item or "{batch}" not in str(item["query"]):
                raise ConfigError(f"{at}.query: an unexpected_rows rule needs SQL over {{batch}}")
            kwargs["unexpected_rows_query"] = " ".join(str(item["query"]).split())
            for param in _PARAM_REF.findall(kwargs["unexpected_rows_query"]):
                if param not in conf.params and param not in DERIVED_PARAMS:
                    raise ConfigError(f"{at}.query: ${{{param}}} is not in params")
        description = str(item.get("description", ""))
        columns = item.get("columns")
        variants = [(name, kwargs)]
        if columns is not None:
            if not isinstance(columns, list) or not columns:
                raise ConfigError(f"{at}.columns: expected a non-empty list of column names")
            variants = [(f"{name}[{c}]", {**kwargs, "column": c}) for c in columns]
        for rule_name, args in variants:
            rules.append(Rule(table, rule_name, expect, args, severity, description))
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: rule names used twice: {', '.join(dupes)}")
    return rules


def load_suites(conf: QualityConf) -> dict[str, tuple[Rule, ...]]:
    """Every `expectations/*.yaml`: table name → its rules (ConfigError names file and rule)."""
    suites: dict[str, tuple[Rule, ...]] = {}
    for path in sorted(conf.suites_path().glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected table → rules at the top level")
        for table, items in data.items():
            if table in suites:
                raise ConfigError(f"{path}: {table}: suite defined in two files")
            suites[table] = tuple(_rules_of(table, items, f"{path}: {table}", conf))
    unknown = [k for k in conf.severity if k not in {r.key for s in suites.values() for r in s}]
    if unknown:
        raise ConfigError(f"conf/quality.yaml: severity: no such rule {', '.join(unknown)}")
    return suites


# --------------------------------------------------------------------------- validating


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _observed(rule: Rule, unexpected: int, rows: int, example: str | None) -> str:
    """A short human reading of a rule's measure on one tenant's rows."""
    if rule.expect == SCHEMA_RULE:
        return f"columns {example}"
    if rule.expect == UNEXPECTED_ROWS:
        if not unexpected or not example:
            return f"{unexpected} row(s)"
        try:
            first = ", ".join(f"{k}={v}" for k, v in json.loads(example).items())
        except ValueError:
            first = example
        text = f"{unexpected} row(s), e.g. {first}"
    else:
        text = f"{unexpected} unexpected of {rows} rows"
        if unexpected and example:
            text += f", e.g. {example}"
    return text if len(text) <= 300 else text[:297] + "..."


def gxe_between(rule: Rule) -> Any:
    """The expectation GX checks for `rule` on the per-tenant frame: its column `table:rule`
    (the rule's unexpected rows per check and tenant; empty where the row is another
    table's) is 0. Meta and description carry the rule as written."""
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeBetween(
        column=rule.key,
        min_value=0,
        max_value=0,
        severity=GX_SEVERITY[rule.severity],
        meta={
            "rule": rule.name,
            "severity": rule.severity,
            "expectation": rule.expectation_type,
            "arguments": {k: str(v) for k, v in rule.kwargs.items()},
        },
        description=f"{rule.expectation_type}: {rule.description}"
        if rule.description
        else rule.expectation_type,
    )


@dataclass
class Validator:
    """One Great Expectations file context per run; validates slices against the suites.

    A slice is measured per tenant in one Spark job (`jobs.transforms.quality`: every rule's
    unexpected rows per tenant), and Great Expectations validates that small per-tenant
    frame: each rule is an expectation that its column of unexpected rows is 0, with the
    tenant as the index, so every rule gets a verdict per tenant in GX's validation results,
    the Data Docs and `ops.quality_results`."""

    settings: Settings
    run_name: str
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("lakehouse"))
    suites: dict[str, tuple[Rule, ...]] = field(init=False)
    _context: Any = None
    _validations: dict[str, Any] = field(default_factory=dict)  # layer → its definition
    _checks: int = 0
    rows_seen: dict[str | None, int] = field(default_factory=dict)  # the last slice's, per tenant
    _views: int = 0

    def __post_init__(self) -> None:
        self.suites = load_suites(self.settings.quality)

    @property
    def root(self) -> Path:
        return Path(self.settings.warehouse) / "_quality"

    def has_suite(self, table: str) -> bool:
        return bool(self.suites.get(table))

    def _gx(self) -> Any:
        if self._context is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            logging.getLogger("great_expectations").setLevel(logging.WARNING)
            self.root.mkdir(parents=True, exist_ok=True)
            self._context = gx.get_context(mode="file", project_root_dir=str(self.root))
            self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
            self._source = self._context.data_sources.add_or_update_pandas(METRICS_SOURCE)
        return self._context

    def _definition(self, layer: str) -> Any:
        """The validation definition of `layer`'s gates: every rule of the layer's suites,
        as a column of the per-tenant frame (`table:rule`), checked to be 0."""
        if layer not in self._validations:
            import great_expectations as gx

            context = self._gx()
            try:
                asset = self._source.get_asset(GATES_ASSET)
            except LookupError:
                asset = self._source.add_dataframe_asset(GATES_ASSET)
            try:
                batch = asset.get_batch_definition("tenants")
            except KeyError:
                batch = asset.add_batch_definition_whole_dataframe("tenants")
            name = f"{GATES_SUITE}.{layer}"
            expectations = [gxe_between(r) for r in self._layer_rules(layer)]
            digest = hashlib.sha256(
                json.dumps([e.configuration.to_json_dict() for e in expectations],
                           sort_keys=True, default=str).encode()
            ).hexdigest()  # fmt: skip
            try:  # the stored suite, when the rules have not changed since it was stored
                stored = context.validation_definitions.get(name)
                if stored.suite.meta.get("rules_sha256") == digest:
                    self._validations[layer] = stored
                    return stored
            except Exception:  # none stored yet, or stored by another layout: store anew
                pass
            # updating a stored suite rule by rule is slow in GX: replace it whole
            for store in (context.validation_definitions, context.suites):
                with contextlib.suppress(Exception):
                    store.delete(name)
            suite = gx.ExpectationSuite(name=name, meta={"rules_sha256": digest})
            for expectation in expectations:
                suite.add_expectation(expectation)
            suite = context.suites.add(suite)
            self._validations[layer] = context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=suite)
            )
        return self._validations[layer]

    def _layer_rules(self, layer: str) -> list[Rule]:
        return [r for table, rules in self.suites.items() if layer_of(table) == layer
                for r in rules]  # fmt: skip

    def _query(self, rule: Rule, view: str, delivery_date: dt.date | None) -> str:
        """An `unexpected_rows` rule's SQL over the view `view`, with tables and thresholds
        filled in."""
        query = rule.kwargs["unexpected_rows_query"].replace("{batch}", view)
        query = _TABLE_REF.sub(lambda m: f"delta.`{self.settings.table_path(m.group(1))}`", query)
        values = {
            **self.settings.quality.params,
            "delivery_date": delivery_date,
            "health_healthy": self.settings.health.bands.healthy,
            "health_watch": self.settings.health.bands.watch,
        }
        return _PARAM_REF.sub(lambda m: _sql_literal(values[m.group(1)]), query)

    def measure(
        self, rules: Sequence[Rule], df: DataFrame, delivery_date: dt.date | None
    ) -> tuple[dict[str | None, int], dict[tuple[str, str | None], tuple[int, str | None]]]:
        """The slice's rows per tenant, and per (rule, tenant) its unexpected rows and one
        example, in one Spark job (rules the slice cannot break for a tenant are absent)."""
        from jobs.transforms import quality as q

        params = self.settings.quality.params
        row_rules = [(r.name, r.expect, r.kwargs) for r in rules if r.expect in q.ROW_RULES]
        unique = [
            (
                r.name,
                list(r.kwargs["column_list"]),
                r.kwargs.get("ignore_row_if", "all_values_are_missing"),
            )
            for r in rules
            if r.expect == q.UNIQUE_RULE
        ]
        parts = [q.row_rule_counts(df, row_rules, params)]
        if unique:
            parts.append(q.duplicate_counts(df, unique))
        sql = [r for r in rules if r.expect == UNEXPECTED_ROWS]
        if sql:
            self._views += 1
            view = f"_gate_{re.sub(r'[^a-z0-9]', '_', self.run_name.lower())}_{self._views}"
            df.createOrReplaceTempView(view)
            parts.append(
                q.sql_counts(
                    [
                        (r.name, df.sparkSession.sql(self._query(r, view, delivery_date)))
                        for r in sql
                    ]
                )
            )
        measured = reduce(DataFrame.unionByName, parts)
        try:
            found = measured.collect()  # a row per rule and tenant: small
        finally:
            if sql:
                df.sparkSession.catalog.dropTempView(view)
        rows: dict[str | None, int] = {}
        counts: dict[tuple[str, str | None], tuple[int, str | None]] = {}
        for r in found:
            if r.rule == "":
                rows[r.tenant_id] = int(r.unexpected)
            else:
                counts[(r.rule, r.tenant_id)] = (int(r.unexpected), r.example)
        return rows, counts

    def validate(
        self, table: str, df: DataFrame, delivery_date: dt.date | None = None
    ) -> list[Outcome]:
        """The suite's verdict on `df`: one Outcome per rule and tenant of `df`.

        Rows without a tenant (a NULL `tenant_id`) cannot be blamed on one tenant: what they
        break, every tenant of the slice breaks. A slice with no tenant at all gets verdicts
        with `tenant_id` None."""
        rules = self.suites.get(table, ())
        if not rules:
            return []
        rows, counts = self.measure(rules, df, delivery_date)
        self.rows_seen = rows
        if not rows:  # a write that only removes rows has nothing to check
            return []
        tenants: list[str | None] = sorted(t for t in rows if t is not None) or [None]
        columns_rule = {r.name: sorted(df.columns) for r in rules if r.expect == SCHEMA_RULE}

        def unexpected(rule: Rule, tenant: str | None) -> tuple[int, str | None]:
            if rule.name in columns_rule:
                expected = set(rule.kwargs["column_set"])
                actual = set(columns_rule[rule.name])
                exact = rule.kwargs.get("exact_match", True)
                broken = actual != expected if exact else not expected <= actual
                return int(broken), ", ".join(columns_rule[rule.name])
            n, example = counts.get((rule.name, tenant), (0, None))
            if tenant is not None and (rule.name, None) in counts:
                orphan, orphan_example = counts[(rule.name, None)]
                n, example = n + orphan, example or orphan_example
            return n, example

        self._checks += 1
        outcomes = []
        for rule in rules:
            for tenant in tenants:
                n, example = unexpected(rule, tenant)
                outcomes.append(
                    Outcome(
                        table=table,
                        rule=rule.name,
                        expectation=rule.expectation_type,
                        severity=rule.severity,
                        success=n == 0,
                        observed=_observed(rule, n, rows.get(tenant, 0), example),
                        tenant_id=tenant,
                        delivery_date=delivery_date,
                        unexpected=n,
                        check=self._checks,
                    )
                )
        return outcomes

    def confirm(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Great Expectations' verdicts on `outcomes` (measured by `validate`): one
        validation per layer the outcomes reach, stored under the run's name, of a frame
        with a row per check and tenant and a column per rule of the layer. GX must agree
        with the verdict each gate acted on; a disagreement is a bug in the measures and
        fails the run."""
        import great_expectations as gx  # noqa: F401  (GX must be importable)

        for layer in sorted({layer_of(o.table) for o in outcomes}):
            self._confirm_layer(layer, [o for o in outcomes if layer_of(o.table) == layer])
        return list(outcomes)

    def _confirm_layer(self, layer: str, outcomes: Sequence[Outcome]) -> None:
        import pandas as pd
        from great_expectations.core.run_identifier import RunIdentifier

        rows: dict[tuple[int, str | None], dict[str, Any]] = {}
        for o in outcomes:
            first = {"check": o.check, "table": o.table, "tenant_id": o.tenant_id}
            row = rows.setdefault((o.check, o.tenant_id), first)
            row[f"{o.table}:{o.rule}"] = o.unexpected
        keys = [r.key for r in self._layer_rules(layer)]
        frame = pd.DataFrame(list(rows.values())).reindex(
            columns=["check", "table", "tenant_id", *keys]
        )
        result = self._definition(layer).run(
            batch_parameters={"dataframe": frame},
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": ["check", "tenant_id"],
            },
            run_id=RunIdentifier(run_name=self.run_name),
        )
        failing: set[tuple[str, int, str | None]] = set()
        for r in result.results:
            key = r.expectation_config.kwargs["column"]
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"gate rule {key}: Great Expectations could not check it: "
                    f"{r.exception_info.get('exception_message')}"
                )
            for i in (r.result or {}).get("unexpected_index_list") or []:
                failing.add((key, int(i["check"]), i["tenant_id"]))
        for o in outcomes:
            if o.success == ((f"{o.table}:{o.rule}", o.check, o.tenant_id) in failing):
                raise RuntimeError(
                    f"gate {o.table}: Great Expectations and the gate disagree on rule "
                    f"{o.rule} for tenant {o.tenant_id} ({o.unexpected} unexpected rows)"
                )

    def build_data_docs(self) -> str | None:
        """Render this run's validation results (and the index) into the Data Docs site;
        the pages rendered point at vendored CSS/JS when `jobs.docs_assets` has them."""
        from jobs import docs_assets

        if self._context is None:
            return None
        store = self._context.validation_results_store
        mine = [k for k in store.list_keys() if k.run_id.run_name == self.run_name]
        started = time.time() - 1
        sites = self._context.build_data_docs(resource_identifiers=mine)
        index = next(iter(sites.values()), None)
        if index and index.startswith("file://"):
            site = Path(index.removeprefix("file://")).parent
            pages = [p for p in site.rglob("*.html") if p.stat().st_mtime >= started]
            docs_assets.localize(site, pages)
        return index
