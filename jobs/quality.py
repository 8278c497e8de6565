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

`Validator.validate` checks a slice once, as a whole, through a Great Expectations file
context under `<warehouse>/_quality` (so results feed the Data Docs). Only when a `fail`
rule breaks does it ask which tenants break it, by validating the failing expectations on
each tenant's rows: the normal path costs one validation per table and run.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.config import SEVERITIES, ConfigError, QualityConf, Settings

GX_SEVERITY = {"fail": "critical", "warn": "warning"}
UNEXPECTED_ROWS = "unexpected_rows"
_TABLE_REF = re.compile(r"\{([a-z_]+\.[a-z_]+)\}")
_PARAM_REF = re.compile(r"\$\{([a-z_]+)\}")
_RULE_KEYS = {"rule", "expect", "severity", "description", "columns", "query"}
# `${name}` values a query may use besides conf/quality.yaml's params
DERIVED_PARAMS = ("delivery_date", "health_healthy", "health_watch")


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


def _observed(result: Mapping[str, Any]) -> str:
    """A short human reading of a GX result (observed value or unexpected rows)."""
    rows = (result.get("details") or {}).get("unexpected_rows")
    if rows:
        first = ", ".join(f"{k}={v}" for k, v in rows[0].items())
        return f"{len(rows)} row(s), e.g. {first}"
    if "observed_value" in result and result["observed_value"] is not None:
        value = result["observed_value"]
        if isinstance(value, float):
            return f"{value:.4g}"
        text = str(value)
        return text if len(text) <= 200 else text[:197] + "..."
    if "unexpected_count" in result:
        count = result.get("unexpected_count") or 0
        total = result.get("element_count")
        examples = [str(v) for v in (result.get("partial_unexpected_list") or [])[:3]]
        text = f"{count} unexpected" + (f" of {total} rows" if total is not None else "")
        return text + (f", e.g. {', '.join(examples)}" if examples and count else "")
    return ""


@dataclass
class Validator:
    """One Great Expectations file context per run; validates slices against the suites."""

    settings: Settings
    run_name: str
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("lakehouse"))
    suites: dict[str, tuple[Rule, ...]] = field(init=False)
    result_keys: list[Any] = field(default_factory=list)
    _context: Any = None
    _batches: dict[str, Any] = field(default_factory=dict)
    _definitions: dict[tuple[Any, ...], Any] = field(default_factory=dict)

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
            self._source = self._context.data_sources.add_or_update_spark("lakehouse")
        return self._context

    def _batch_definition(self, table: str) -> Any:
        if table not in self._batches:
            self._gx()
            try:
                asset = self._source.get_asset(table)
            except LookupError:
                asset = self._source.add_dataframe_asset(table)
            try:
                self._batches[table] = asset.get_batch_definition("slice")
            except KeyError:
                self._batches[table] = asset.add_batch_definition_whole_dataframe("slice")
        return self._batches[table]

    def _expectation(self, rule: Rule, delivery_date: dt.date | None, detail: bool = False) -> Any:
        """The GX expectation of `rule`; `detail`: SQL rules keep their offending rows."""
        cls = expectation_class(rule.expect)
        kwargs = dict(rule.kwargs)
        if detail and rule.expect == UNEXPECTED_ROWS:
            kwargs["result_format"] = "COMPLETE"  # ≤ 200 rows; the queries return per tenant
        if rule.expect == UNEXPECTED_ROWS:
            query = _TABLE_REF.sub(
                lambda m: f"delta.`{self.settings.table_path(m.group(1))}`",
                kwargs["unexpected_rows_query"],
            )
            values = {
                **self.settings.quality.params,
                "delivery_date": delivery_date,
                "health_healthy": self.settings.health.bands.healthy,
                "health_watch": self.settings.health.bands.watch,
            }
            kwargs["unexpected_rows_query"] = _PARAM_REF.sub(
                lambda m: _sql_literal(values[m.group(1)]), query
            )
        meta = {"rule": rule.name, "severity": rule.severity}
        return cls(
            **kwargs,
            severity=GX_SEVERITY[rule.severity],
            meta=meta,
            description=rule.description or None,
        )

    def _suite(
        self,
        table: str,
        rules: Iterable[Rule],
        delivery_date: dt.date | None,
        detail: bool = False,
    ) -> Any:
        import great_expectations as gx

        suite = gx.ExpectationSuite(name=table)
        for rule in rules:
            suite.add_expectation(self._expectation(rule, delivery_date, detail))
        return suite

    def validate(
        self, table: str, df: DataFrame, delivery_date: dt.date | None = None
    ) -> list[Outcome]:
        """The suite's verdict on `df`: one Outcome per rule, then for each broken `fail`
        rule one Outcome per tenant of `df` that breaks it.

        The first pass asks only pass/fail (conf `result_format`, BOOLEAN_ONLY by default:
        the fewest Spark jobs). Rules that fail are validated again with SUMMARY detail
        (observed values, offending tenants) as a suite of their own, `<table>.failed`, so
        the Data Docs show what broke."""
        rules = {r.name: r for r in self.suites.get(table, ())}
        if not rules:
            return []
        result = self._run(table, list(rules.values()), df, delivery_date,
                           self.settings.quality.result_format)  # fmt: skip
        outcomes = {o.rule: o for o in (self._outcome(table, r, delivery_date) for r in result)}
        failed = [rules[name] for name, o in outcomes.items() if not o.success]
        if failed and self.settings.quality.result_format != "SUMMARY":
            detail = self._run(f"{table}.failed", failed, df, delivery_date, "SUMMARY")
            for r in detail:
                o = self._outcome(table, r, delivery_date)
                outcomes[o.rule] = o
        found = list(outcomes.values())
        broken = [rules[o.rule] for o in found if not o.success and o.severity == "fail"]
        if broken:
            found += self._by_tenant(table, df, broken, delivery_date)
        return found

    def _run(
        self,
        name: str,
        rules: Sequence[Rule],
        df: DataFrame,
        delivery_date: dt.date | None,
        result_format: str,
    ) -> list[Any]:
        """Validate `df` with `rules` as the stored suite `name`; results go to the store."""
        import great_expectations as gx
        from great_expectations.core.run_identifier import RunIdentifier

        context = self._gx()
        key = (name, tuple(r.name for r in rules), delivery_date)
        definition = self._definitions.get(key)
        if definition is None:  # stored once per run (and delivery, for date-bound SQL)
            table = name.removesuffix(".failed")
            suite = context.suites.add_or_update(self._suite(name, rules, delivery_date))
            definition = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=name, data=self._batch_definition(table), suite=suite)
            )
            if not name.endswith(".failed"):  # those vary with what failed: not reused
                self._definitions[key] = definition
        fmt: dict[str, Any] = {"result_format": result_format}
        if result_format != "BOOLEAN_ONLY":
            fmt["unexpected_index_column_names"] = ["tenant_id"]
        result = definition.run(
            batch_parameters={"dataframe": df},
            expectation_parameters=dict(self.settings.quality.params),
            result_format=fmt,
            run_id=RunIdentifier(run_name=self.run_name),
        )
        return list(result.results)

    def _outcome(
        self, table: str, r: Any, delivery_date: dt.date | None, tenant: str | None = None
    ) -> Outcome:
        config = r.expectation_config
        meta = config.meta or {}
        observed = (
            "error: " + str(r.exception_info.get("exception_message"))[:300]
            if (r.exception_info and r.exception_info.get("raised_exception"))
            else _observed(r.result or {})
        )
        return Outcome(
            table=table,
            rule=meta.get("rule", config.type),
            expectation=config.type,
            severity=meta.get("severity", "fail"),
            success=bool(r.success),
            observed=observed,
            tenant_id=tenant,
            delivery_date=delivery_date,
        )

    def _by_tenant(
        self, table: str, df: DataFrame, rules: Sequence[Rule], delivery_date: dt.date | None
    ) -> list[Outcome]:
        tenants = sorted(r.tenant_id for r in df.select("tenant_id").distinct().collect())
        batch_definition = self._batch_definition(table)
        outcomes = []
        for tenant in tenants:
            batch = batch_definition.get_batch(
                batch_parameters={"dataframe": df.where(F.col("tenant_id") == tenant)}
            )
            result = batch.validate(
                self._suite(f"{table}.{tenant}", rules, delivery_date, detail=True),
                expectation_parameters=dict(self.settings.quality.params),
                result_format="BASIC",
            )
            outcomes += [
                self._outcome(table, r, delivery_date, tenant)
                for r in result.results
                if not r.success
            ]
        return outcomes

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
