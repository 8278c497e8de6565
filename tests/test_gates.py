"""Quality gates (SPEC §7 "Gated"): every fail rule blocks exactly the tenant that breaks it,
leaves that tenant's published data as it was and lets the other tenants publish."""

from __future__ import annotations

import dataclasses
import gzip
import json
import random
import shutil
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.config import ConfigError, QualityConf, load_settings
from jobs.context import RunContext
from jobs.delta_io import partitions_written, read_table, tenants_predicate
from jobs.gates import DELIVERY_PROFILE
from jobs.generate import DEFAULT_START, generate_landing
from jobs.pipeline import execute
from jobs.quality import Rule, load_suites
from jobs.tables import SILVER_TICKETS, TableSpec

from .conftest import TINY_DAYS

BAD, GOOD = "acme", "globex"
NEW_RUN = "run_new"
DEFAULT_SUITES = load_suites(load_settings().quality)


def _spec(table: str) -> TableSpec:
    import jobs.tables as tables

    for value in vars(tables).values():
        if isinstance(value, TableSpec) and value.name == table:
            return value
    raise KeyError(table)


def _fail_rules() -> list[Rule]:
    """Every fail rule of a silver or gold table that one tenant's rows can break; a rule
    written for several columns (`not_null[a]`, `not_null[b]`) once, on its first column
    after tenant_id (the expansion is the loader's, tested above)."""
    chosen: dict[tuple[str, str], Rule] = {}
    for table, rules in DEFAULT_SUITES.items():
        if table.split(".")[0] not in ("silver", "gold") or table == DELIVERY_PROFILE:
            continue
        for rule in rules:
            if rule.severity != "fail" or rule.name.endswith("[tenant_id]"):
                continue
            chosen.setdefault((table, rule.name.split("[")[0]), rule)
    return list(chosen.values())


# --------------------------------------------------------------------------- corruption


def _bad_rows():
    return F.col("tenant_id") == BAD


def _when_bad(df: DataFrame, column: str, value) -> DataFrame:
    return df.withColumn(column, F.when(_bad_rows(), value).otherwise(F.col(column)))


def _one_less(column: str, dtype: T.DataType):
    if isinstance(dtype, T.TimestampType):
        return F.col(column) - F.expr("INTERVAL 1 SECOND")
    if isinstance(dtype, T.DateType):
        return F.date_sub(F.col(column), 1)
    return F.col(column) - F.lit(1).cast(dtype)


SQL_CORRUPTIONS = {  # rule → how acme's rows break it
    "account_iff_attributed": lambda df: _when_bad(df, "account_id", F.lit(None)),
    "persons_in_identity_map": lambda df: _when_bad(df, "person_id", F.lit("p_nobody")),
    "one_current_version": lambda df: _when_bad(df, "is_current", F.lit(False)),
    "cycles_have_no_parent": lambda df: _when_bad(
        _when_bad(df, "in_cycle", F.lit(True)), "parent_account_id", F.lit("acc_x")
    ),
    "accounts_in_silver": lambda df: _when_bad(df, "account_id", F.lit("acc_nobody")),
    "events_reconcile_with_silver": lambda df: _when_bad(
        df, "unattributed_events", F.col("unattributed_events") + 1
    ),
    "tenant_dau_covers_accounts": lambda df: _when_bad(df, "dau", F.lit(0).cast("long")),
    "band_matches_score": lambda df: _when_bad(
        _when_bad(df, "health_score", F.lit(0.0)), "band", F.lit("healthy")
    ),
}


def corrupt(df: DataFrame, rule: Rule, params: dict[str, float]) -> DataFrame:
    """`df` with the rows of tenant BAD changed so that they break `rule`."""
    args, kind = rule.kwargs, rule.expect
    if kind == "unexpected_rows":
        return SQL_CORRUPTIONS[rule.name](df)
    if kind == "column_values_to_not_be_null":
        return _when_bad(df, args["column"], F.lit(None))
    if kind == "column_values_to_be_in_set":
        return _when_bad(df, args["column"], F.lit("bogus"))
    if kind == "column_values_to_be_between":

        def bound(v):
            return params[v["$PARAMETER"]] if isinstance(v, dict) else v

        column = args["column"]
        value = (
            bound(args["max_value"]) + 1
            if args.get("max_value") is not None
            else bound(args["min_value"]) - 1
        )
        return _when_bad(df, column, F.lit(value).cast(df.schema[column].dataType))
    if kind == "column_pair_values_a_to_be_greater_than_b":
        a, b = args["column_A"], args["column_B"]
        df = _when_bad(df, b, F.coalesce(F.col(b), F.col(a)))
        return _when_bad(df, a, _one_less(b, df.schema[b].dataType))
    if kind == "compound_columns_to_be_unique":
        return df.unionByName(df.where(_bad_rows()).limit(1))
    raise AssertionError(f"no corruption for {rule.key}")


# --------------------------------------------------------------------------- helpers


def _copy_warehouse(source: str, target: Path) -> str:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("_quality"))
    return str(target)


_COPIES: dict[str, str] = {}


def _warehouse_for(table: str, source: str, factory: pytest.TempPathFactory) -> str:
    """One copy of the tiny warehouse per table: a case leaves the blocked tenant's rows
    as they were and re-publishes the other tenant's, so the cases of a table can share."""
    if table not in _COPIES:
        _COPIES[table] = _copy_warehouse(source, factory.mktemp("gated") / "wh")
    return _COPIES[table]


def _rows(spark, settings, table: str, tenant: str) -> DataFrame:
    return read_table(spark, settings.table_path(table)).where(F.col("tenant_id") == tenant)


def _same(left: DataFrame, right: DataFrame) -> bool:
    return left.exceptAll(right).count() == 0 and right.exceptAll(left).count() == 0


def _new_slice(spark, settings, table: str) -> DataFrame:
    """Both tenants' rows of `table`, re-stamped as written by a new run."""
    df = read_table(spark, settings.table_path(table)).where(tenants_predicate([BAD, GOOD]))
    return df.withColumn("_run_id", F.lit(NEW_RUN))


# --------------------------------------------------------------------------- tests


def test_suites_load_with_fail_and_warn_rules() -> None:
    rules = [r for rules in DEFAULT_SUITES.values() for r in rules]
    assert len(rules) >= 60
    assert {r.severity for r in rules} == {"fail", "warn"}
    assert {"silver.events", "gold.account_daily", DELIVERY_PROFILE} <= DEFAULT_SUITES.keys()
    keys = [r.key for r in rules]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("t.x: [{rule: a, expect: column_values_to_be_purple, column: c}]", "t.x[0].expect"),
        ("t.x: [{rule: a, expect: column_values_to_not_be_null, column: c, severity: loud}]",
         "t.x[0].severity"),
        ("t.x: [{rule: a, expect: unexpected_rows, query: 'SELECT 1'}]", "t.x[0].query"),
        ("t.x: [{rule: a, expect: unexpected_rows,\n"
         "       query: 'SELECT * FROM {batch} WHERE x > ${nope}'}]",
         "${nope} is not in params"),
        ("t.x: [{rule: a, expect: column_values_to_not_be_null, column: c},\n"
         "      {rule: a, expect: column_values_to_not_be_null, column: d}]", "used twice"),
        ("t.x: [{expect: column_values_to_not_be_null}]", "needs `rule` and `expect`"),
    ],
)  # fmt: skip
def test_a_broken_suite_file_is_refused_with_its_file_and_rule(
    tmp_path: Path, body: str, message: str
) -> None:
    (tmp_path / "bad.yaml").write_text(body + "\n")
    conf = QualityConf(suites_dir=str(tmp_path), params={"p": 1.0})
    with pytest.raises(ConfigError) as err:
        load_suites(conf)
    assert message in str(err.value)
    assert "bad.yaml" in str(err.value)


def test_a_severity_override_must_name_an_existing_rule(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "t.x: [{rule: a, expect: column_values_to_not_be_null, column: c}]\n"
    )
    conf = QualityConf(str(tmp_path), {}, severity={"t.x:b": "warn"})
    with pytest.raises(ConfigError, match=r"no such rule t\.x:b"):
        load_suites(conf)
    conf = QualityConf(str(tmp_path), {}, severity={"t.x:a": "warn"})
    assert load_suites(conf)["t.x"][0].severity == "warn"


@pytest.mark.slow
@pytest.mark.parametrize("rule", _fail_rules(), ids=lambda r: r.key)
def test_every_fail_rule_blocks_only_the_tenant_breaking_it(
    spark, tiny, tmp_path_factory: pytest.TempPathFactory, rule: Rule
) -> None:
    source, _, _ = tiny
    warehouse = _warehouse_for(rule.table, source.warehouse, tmp_path_factory)
    settings = dataclasses.replace(source, warehouse=warehouse)
    ctx = RunContext(spark, settings, "run_gate_test", "test", b"k" * 16)
    table = rule.table
    before_bad = _rows(spark, settings, table, BAD)
    fresh = _new_slice(spark, settings, table)
    assert fresh.where(_bad_rows()).count() > 0
    assert fresh.where(F.col("tenant_id") == GOOD).count() > 0

    ctx.gates.publish(
        _spec(table), corrupt(fresh, rule, settings.quality.params), tenants_predicate([BAD, GOOD])
    )

    assert set(ctx.gates.blocked) == {BAD}, [
        o.describe() for o in ctx.gates.outcomes if not o.success
    ]
    assert any(o.rule == rule.name and o.tenant_id == BAD for o in ctx.gates.blocked[BAD])
    message = str(ctx.gates.failure())
    for part in (f"tenant {BAD}", table, rule.name, rule.expectation_type, "observed"):
        assert part in message
    assert _same(_rows(spark, settings, table, BAD), before_bad), "the blocked tenant changed"
    good = _rows(spark, settings, table, GOOD)
    assert good.count() == fresh.where(F.col("tenant_id") == GOOD).count()
    assert good.where(F.col("_run_id") != NEW_RUN).count() == 0, "the other tenant not published"


@pytest.mark.slow
def test_a_later_gate_withdraws_what_the_run_already_published_for_the_tenant(
    spark, tiny, tmp_path: Path
) -> None:
    source, _, _ = tiny
    settings = dataclasses.replace(
        source, warehouse=_copy_warehouse(source.warehouse, tmp_path / "wh")
    )
    ctx = RunContext(spark, settings, "run_gate_test", "test", b"k" * 16)
    tickets_bad = _rows(spark, settings, SILVER_TICKETS.name, BAD)
    both = tenants_predicate([BAD, GOOD])
    ctx.gates.publish(SILVER_TICKETS, _new_slice(spark, settings, SILVER_TICKETS.name), both)
    assert not ctx.gates.blocked
    assert _rows(spark, settings, SILVER_TICKETS.name, BAD).where(
        F.col("_run_id") != NEW_RUN).count() == 0  # fmt: skip

    rule = next(r for r in DEFAULT_SUITES["silver.sessions"] if r.name == "session_unique")
    sessions = _new_slice(spark, settings, "silver.sessions")
    ctx.gates.publish(_spec("silver.sessions"), corrupt(sessions, rule, {}), both)

    assert set(ctx.gates.blocked) == {BAD}
    assert _same(_rows(spark, settings, SILVER_TICKETS.name, BAD), tickets_bad)
    assert _rows(spark, settings, SILVER_TICKETS.name, GOOD).where(
        F.col("_run_id") != NEW_RUN).count() == 0  # fmt: skip
    # later writes of the run leave the blocked tenant out altogether
    ctx.gates.publish(SILVER_TICKETS, _new_slice(spark, settings, SILVER_TICKETS.name), both)
    assert _same(_rows(spark, settings, SILVER_TICKETS.name, BAD), tickets_bad)


SILVER_AND_GOLD = (
    "silver.events", "silver.events_rejected", "silver.events_duplicates", "silver.sessions",
    "silver.identity_map", "silver.identity_edges", "silver.person_account_daily",
    "silver.account_memberships", "silver.accounts", "silver.account_hierarchy",
    "silver.subscriptions", "silver.tickets", "gold.account_daily", "gold.account_hourly",
    "gold.tenant_daily", "gold.feature_adoption_daily", "gold.account_health_daily",
    "gold.account_activation", "gold.account_retention_monthly",
)  # fmt: skip


def _malform_half(path: Path, seed: int = 3) -> int:
    """Replace every other line of the delivery's event files (plain and gzip) with
    broken JSON."""
    rng = random.Random(seed)
    broken = 0
    for f in sorted(path.iterdir()):
        zipped = f.name.endswith(".gz")
        raw = gzip.decompress(f.read_bytes()) if zipped else f.read_bytes()
        lines = raw.decode("utf-8").splitlines()
        for i in range(0, len(lines), 2):
            lines[i] = lines[i][: rng.randint(1, 20)] + "\u0000{"
            broken += 1
        data = ("\n".join(lines) + "\n").encode("utf-8")
        f.write_bytes(gzip.compress(data) if zipped else data)
    return broken


@pytest.mark.slow
def test_a_tenant_sending_half_malformed_lines_is_blocked_and_the_others_publish(
    spark, tiny, tmp_path: Path
) -> None:
    source, _, _ = tiny
    landing = tmp_path / "landing"
    generate_landing("tiny", 4, 7, landing, DEFAULT_START)
    day4 = TINY_DAYS[-1] + (TINY_DAYS[1] - TINY_DAYS[0])
    assert _malform_half(landing / "events" / f"tenant_id={BAD}" / f"delivery_date={day4}") > 100
    settings = dataclasses.replace(
        source,
        landing=str(landing),
        warehouse=_copy_warehouse(source.warehouse, tmp_path / "wh"),
    )
    before = {t: _rows(spark, settings, t, BAD) for t in SILVER_AND_GOLD}

    result = execute(settings, "run", [day4], None, spark=spark)

    assert result.status == "failed"
    for part in (f"tenant {BAD}", DELIVERY_PROFILE, "rejected_share",
                 "expect_column_values_to_be_between", "observed"):  # fmt: skip
        assert part in result.error
    share = next(s.rejected / s.landed_lines for s in result.stats if s.tenant_id == BAD)
    assert 0.45 < share < 0.6
    assert f"{share:.4g}"[:4] in result.error
    for table in SILVER_AND_GOLD:
        assert _same(_rows(spark, settings, table, BAD), before[table]), table
    # the other tenants published their day 4
    written = partitions_written(spark, settings.table_path("silver.events"), result.run_id)
    tenant = F.regexp_extract("partition", "tenant_id=([^/]+)", 1).alias("t")
    tenants = {r.t for r in written.select(tenant).distinct().collect()}
    assert tenants == {"globex", "initech"}
    progress = read_table(spark, settings.table_path("ops.gold_progress"))
    by_tenant = {r.tenant_id: r._run_id for r in progress.collect()}
    assert by_tenant["globex"] == result.run_id and by_tenant[BAD] != result.run_id
    # the ledger and the Data Docs say what happened
    runs = read_table(spark, settings.table_path("ops.pipeline_runs")).where(
        F.col("run_id") == result.run_id).where("status = 'failed'").collect()  # fmt: skip
    assert len(runs) == 1 and runs[0].blocked_tenants == [BAD]
    assert runs[0].data_docs and runs[0].data_docs == result.data_docs
    index = Path(result.data_docs.removeprefix("file://"))
    assert index.is_file() and "lakehouse.gates.silver" in index.read_text(encoding="utf-8")
    pages = list((index.parent / "validations").rglob(f"{result.run_id}/*/*.html"))
    text = " ".join(p.read_text(encoding="utf-8") for p in pages)
    assert f"{DELIVERY_PROFILE}:rejected_share" in text and "silver.events:" in text
    assert BAD in text  # the failing tenant, as GX's unexpected index
    verdicts = read_table(spark, settings.table_path("ops.quality_results")).where(
        (F.col("run_id") == result.run_id) & (F.col("tenant_id") == BAD)).collect()  # fmt: skip
    # verdicts for its bronze and its delivery profile, none after it: the tenant was blocked
    assert {v.table_name for v in verdicts if not v.table_name.startswith("bronze.")} == {
        DELIVERY_PROFILE
    }
    profile = [(v.rule, v.success) for v in verdicts if v.table_name == DELIVERY_PROFILE]
    assert ("rejected_share", False) in profile and len(profile) == 2
    assert all(v.success for v in verdicts if v.table_name.startswith("bronze."))
    assert json.dumps(runs[0].gate_failures)  # plain strings


@pytest.mark.slow
def test_gate_and_runs_commands(spark, tiny, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jobs.cli import app

    source, _, _ = tiny
    warehouse = _copy_warehouse(source.warehouse, tmp_path / "wh")
    runner = CliRunner()
    runs = runner.invoke(app, ["runs", "--warehouse", warehouse])
    assert runs.exit_code == 0, runs.output
    assert "succe" in runs.output  # folded cells: the status may wrap

    day = str(TINY_DAYS[1])
    ok = runner.invoke(app, ["gate", "--layer", "gold", "--date", day, "--warehouse", warehouse,
                             "--tenant", GOOD])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "FAIL" not in ok.output
    verdicts = read_table(spark, f"{warehouse}/ops/quality_results")
    assert verdicts.where("table_name = 'gold.account_daily'").count() > 5

    bad = runner.invoke(app, ["gate", "--layer", "platinum", "--date", day])
    assert bad.exit_code == 2 and "--layer" in bad.output
