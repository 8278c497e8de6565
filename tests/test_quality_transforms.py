"""The per-tenant rule measures (`jobs.transforms.quality`) on small inline frames: each
rule's unexpected rows per tenant, and the same verdicts Great Expectations' own Spark
validation gives on each tenant's rows."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import SparkSession

from jobs.transforms import quality as q

PARAMS = {"share_max": 0.5}
ROWS = [
    # tenant, id, a, b, share, kind, day
    ("acme", "m1", 5, 3, 0.1, "track", dt.date(2026, 3, 5)),
    ("acme", "m1", 2, 3, 0.9, "bogus", dt.date(2026, 3, 5)),
    ("acme", "m2", None, 3, None, None, dt.date(2026, 3, 6)),
    ("acme", "m3", None, None, 0.5, "page", None),
    ("globex", "m1", 3, 3, 0.0, "page", dt.date(2026, 3, 5)),
    ("globex", "m4", 7, None, 0.2, "track", dt.date(2026, 3, 5)),
    ("globex", None, 1, 0, 0.3, "identify", dt.date(2026, 3, 5)),
    ("globex", None, 1, 0, 0.3, "identify", dt.date(2026, 3, 5)),
]
SCHEMA = "tenant_id string, id string, a int, b int, share double, kind string, day date"

ROW_RULES = [
    ("id_not_null", "column_values_to_not_be_null", {"column": "id"}),
    ("day_not_null", "column_values_to_not_be_null", {"column": "day"}),
    ("share_range", "column_values_to_be_between",
     {"column": "share", "min_value": 0, "max_value": {"$PARAMETER": "share_max"}}),
    ("share_strict", "column_values_to_be_between",
     {"column": "share", "min_value": 0, "max_value": 0.5, "strict_max": True}),
    ("kind_known", "column_values_to_be_in_set",
     {"column": "kind", "value_set": ["track", "page", "identify"]}),
    ("a_gt_b", "column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "b"}),
    ("a_ge_b", "column_pair_values_a_to_be_greater_than_b",
     {"column_A": "a", "column_B": "b", "or_equal": True}),
    ("a_ge_b_both", "column_pair_values_a_to_be_greater_than_b",
     {"column_A": "a", "column_B": "b", "or_equal": True,
      "ignore_row_if": "either_value_is_missing"}),
]  # fmt: skip
UNIQUE_RULES = [
    ("key_unique", ["tenant_id", "id"], "all_values_are_missing"),
    ("id_unique", ["id", "day"], "any_value_is_missing"),
]


def _measures(df) -> dict[tuple[str, str], int]:
    return {(r.rule, r.tenant_id): r.unexpected for r in df.collect()}


def test_row_rules_count_unexpected_rows_per_tenant_in_one_aggregate(spark: SparkSession):
    df = spark.createDataFrame(ROWS, SCHEMA)
    got = _measures(q.row_rule_counts(df, ROW_RULES, PARAMS))
    assert got == {
        ("", "acme"): 4, ("", "globex"): 4,
        ("id_not_null", "acme"): 0, ("id_not_null", "globex"): 2,
        ("day_not_null", "acme"): 1, ("day_not_null", "globex"): 0,
        ("share_range", "acme"): 1, ("share_range", "globex"): 0,  # NULL share skipped
        ("share_strict", "acme"): 2, ("share_strict", "globex"): 0,  # 0.5 is out when strict
        ("kind_known", "acme"): 1, ("kind_known", "globex"): 0,
        ("a_gt_b", "acme"): 1, ("a_gt_b", "globex"): 1,  # a NULL side is not unexpected
        ("a_ge_b", "acme"): 1, ("a_ge_b", "globex"): 0,
        ("a_ge_b_both", "acme"): 1, ("a_ge_b_both", "globex"): 0,
    }  # fmt: skip
    examples = {(r.rule, r.tenant_id): r.example for r in
                q.row_rule_counts(df, ROW_RULES, PARAMS).collect()}  # fmt: skip
    assert examples[("share_range", "acme")] == "0.9"
    assert examples[("kind_known", "acme")] == "bogus"
    assert examples[("a_gt_b", "globex")] == "a=3, b=3"
    assert examples[("id_not_null", "globex")] is None


def test_duplicates_count_every_row_of_a_repeated_combination(spark: SparkSession):
    df = spark.createDataFrame(ROWS, SCHEMA)
    got = _measures(q.duplicate_counts(df, UNIQUE_RULES))
    # (acme, m1) twice; (globex, NULL) twice — NULLs group together, all-NULL rows only skip
    # (m1, 03-05) across both tenants: three rows; rows with a NULL skipped (any missing)
    assert got == {("key_unique", "acme"): 2, ("key_unique", "globex"): 2,
                   ("id_unique", "acme"): 2, ("id_unique", "globex"): 1}  # fmt: skip


def test_sql_rules_are_grouped_by_tenant_and_unioned(spark: SparkSession):
    df = spark.createDataFrame(ROWS, SCHEMA)
    df.createOrReplaceTempView("qt_batch")
    over = spark.sql("SELECT tenant_id, id, share FROM qt_batch WHERE share > 0.4")
    none = spark.sql("SELECT tenant_id FROM qt_batch WHERE a > 100")
    rows = q.sql_counts([("high_share", over), ("huge_a", none)]).collect()
    assert [(r.rule, r.tenant_id, r.unexpected) for r in rows] == [("high_share", "acme", 2)]
    assert '"tenant_id":"acme"' in rows[0].example


def test_an_unknown_ignore_row_if_is_refused() -> None:
    with pytest.raises(ValueError, match="ignore_row_if"):
        kwargs = {"column_A": "a", "column_B": "b", "ignore_row_if": "sometimes"}
        q.unexpected("column_pair_values_a_to_be_greater_than_b", kwargs, {})


def test_verdicts_match_great_expectations_own_spark_validation_per_tenant(spark, tmp_path):
    """The differential check: GX validating each tenant's rows itself (its Spark engine)
    passes a rule exactly when the measure counts no unexpected row for that tenant."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from jobs.quality import expectation_class

    df = spark.createDataFrame(ROWS, SCHEMA)
    measured = _measures(q.row_rule_counts(df, ROW_RULES, PARAMS))
    measured.update(_measures(q.duplicate_counts(df, UNIQUE_RULES)))
    context = gx.get_context(mode="ephemeral")
    batch_def = (
        context.data_sources.add_spark("qt")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = gx.ExpectationSuite(name="qt")
    for name, expect, kwargs in ROW_RULES:
        suite.add_expectation(expectation_class(expect)(**kwargs, meta={"rule": name}))
    for name, columns, ignore in UNIQUE_RULES:
        suite.add_expectation(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=columns, ignore_row_if=ignore, meta={"rule": name}
            )
        )
    for tenant in ("acme", "globex"):
        rows = df.where(f"tenant_id = '{tenant}'")
        batch = batch_def.get_batch(batch_parameters={"dataframe": rows})
        result = batch.validate(suite, expectation_parameters=PARAMS)
        for r in result.results:
            rule = r.expectation_config.meta["rule"]
            if rule == "id_unique":  # across tenants in the slice: not a per-tenant question
                continue
            assert r.success == (measured.get((rule, tenant), 0) == 0), (rule, tenant)
