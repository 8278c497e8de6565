"""Quality rules measured per tenant in a fixed number of Spark jobs (docs/decisions.md,
"Quality gates").

A table's suite is a list of rules (`jobs.quality.Rule`). Instead of asking Great
Expectations to run one Spark query per rule, the slice is measured here in at most three
jobs whatever the number of rules or tenants:

- `row_rule_counts`: one grouped aggregate for every rule decided row by row (not null,
  between, in set, column pair), with the slice's row count per tenant;
- `duplicate_counts`: one job for every compound-uniqueness rule;
- `sql_counts`: every `unexpected_rows` query, grouped by tenant and unioned into one job.

Each function returns one small row per (rule, tenant): how many rows break the rule and
one example. What those numbers decide is Great Expectations' call (`jobs.quality`). The
unexpected-row conditions follow Great Expectations' own Spark conditions, so a verdict is
the one GX would give on that tenant's rows: a NULL is unexpected only to `not_null`;
`between` and `in_set` skip NULLs; a column pair skips rows per `ignore_row_if` (default:
both values missing) and a comparison with one NULL is not unexpected; uniqueness skips rows
whose columns are all NULL and counts every row of a repeated combination.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

ROW_RULES = (
    "column_values_to_not_be_null",
    "column_values_to_be_between",
    "column_values_to_be_in_set",
    "column_pair_values_a_to_be_greater_than_b",
)
UNIQUE_RULE = "compound_columns_to_be_unique"
SQL_RULE = "unexpected_rows"
SCHEMA_RULE = "table_columns_to_match_set"
COUNTS = "rule string, tenant_id string, unexpected long, example string"


def resolve(value: Any, params: Mapping[str, float]) -> Any:
    """A rule argument with `{$PARAMETER: name}` replaced by the threshold's value."""
    if isinstance(value, Mapping) and "$PARAMETER" in value:
        return params[value["$PARAMETER"]]
    return value


def unexpected(expect: str, kwargs: Mapping[str, Any], params: Mapping[str, float]) -> Column:
    """True on a row that breaks a row-by-row rule; False (never NULL) elsewhere."""
    if expect == "column_values_to_not_be_null":
        return F.col(kwargs["column"]).isNull()
    if expect == "column_values_to_be_between":
        c = F.col(kwargs["column"])
        low, high = (
            resolve(kwargs.get("min_value"), params),
            resolve(kwargs.get("max_value"), params),
        )
        inside = F.lit(True)
        if low is not None:
            inside &= (c > F.lit(low)) if kwargs.get("strict_min") else (c >= F.lit(low))
        if high is not None:
            inside &= (c < F.lit(high)) if kwargs.get("strict_max") else (c <= F.lit(high))
        return c.isNotNull() & ~inside
    if expect == "column_values_to_be_in_set":
        c = F.col(kwargs["column"])
        return c.isNotNull() & ~c.isin(list(kwargs["value_set"]))
    if expect == "column_pair_values_a_to_be_greater_than_b":
        a, b = F.col(kwargs["column_A"]), F.col(kwargs["column_B"])
        ignore = kwargs.get("ignore_row_if", "both_values_are_missing")
        if ignore == "both_values_are_missing":
            kept = ~(a.isNull() & b.isNull())
        elif ignore == "either_value_is_missing":
            kept = a.isNotNull() & b.isNotNull()
        elif ignore == "neither":
            kept = F.lit(True)
        else:
            raise ValueError(f"ignore_row_if: {ignore!r} is not a column-pair option")
        meets = ((a >= b) | a.eqNullSafe(b)) if kwargs.get("or_equal") else (a > b)
        return F.coalesce(kept & ~meets, F.lit(False))
    raise ValueError(f"{expect} is not a row-by-row rule")


def _example(expect: str, kwargs: Mapping[str, Any]) -> Column | None:
    if expect in ("column_values_to_be_between", "column_values_to_be_in_set"):
        return F.col(kwargs["column"]).cast("string")
    if expect == "column_pair_values_a_to_be_greater_than_b":
        a, b = kwargs["column_A"], kwargs["column_B"]
        return F.concat_ws(
            ", ",
            F.concat(F.lit(f"{a}="), F.coalesce(F.col(a).cast("string"), F.lit("null"))),
            F.concat(F.lit(f"{b}="), F.coalesce(F.col(b).cast("string"), F.lit("null"))),
        )
    return None


def row_rule_counts(
    df: DataFrame, rules: Sequence[tuple[str, str, Mapping[str, Any]]], params: Mapping[str, float]
) -> DataFrame:
    """One grouped aggregate: per tenant, its rows (rule `""`) and for each row-by-row rule
    (name, expect, kwargs) its unexpected rows and one offending value."""
    aggs = [F.count(F.lit(1)).alias("_rows")]
    for i, (_, expect, kwargs) in enumerate(rules):
        bad = unexpected(expect, kwargs, params)
        aggs.append(F.sum(F.when(bad, 1).otherwise(0)).cast("long").alias(f"_u{i}"))
        example = _example(expect, kwargs)
        if example is None:
            aggs.append(F.lit(None).cast("string").alias(f"_e{i}"))
        else:
            aggs.append(F.first(F.when(bad, example), ignorenulls=True).alias(f"_e{i}"))
    wide = df.groupBy("tenant_id").agg(*aggs)
    entries = [
        F.struct(
            F.lit("").alias("rule"),
            F.col("_rows").alias("unexpected"),
            F.lit(None).cast("string").alias("example"),
        )
    ]
    entries += [
        F.struct(
            F.lit(name).alias("rule"),
            F.col(f"_u{i}").alias("unexpected"),
            F.col(f"_e{i}").alias("example"),
        )
        for i, (name, _, _) in enumerate(rules)
    ]
    return wide.select(
        F.col("tenant_id").cast("string"), F.explode(F.array(*entries)).alias("m")
    ).select("m.rule", "tenant_id", "m.unexpected", "m.example")


def duplicate_counts(df: DataFrame, rules: Sequence[tuple[str, Sequence[str], str]]) -> DataFrame:
    """Per (uniqueness rule, tenant): the rows whose combination of `columns` occurs more than
    once in the slice. `rules`: (name, columns, ignore_row_if)."""
    parts = []
    for name, columns, ignore in rules:
        missing = [F.col(c).isNull() for c in columns]
        rows = df.select("tenant_id", *columns)
        if ignore == "all_values_are_missing":
            rows = rows.where(~reduce(lambda a, b: a & b, missing))
        elif ignore == "any_value_is_missing":
            rows = rows.where(~reduce(lambda a, b: a | b, missing))
        elif ignore != "never":
            raise ValueError(f"ignore_row_if: {ignore!r} is not a multi-column option")
        rows = rows.withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy(*columns)))
        example = F.concat_ws(
            ", ",
            *[
                F.concat(F.lit(f"{c}="), F.coalesce(F.col(c).cast("string"), F.lit("null")))
                for c in columns
            ],
        )
        parts.append(
            rows.where(F.col("_n") > 1)
            .groupBy(F.col("tenant_id").cast("string").alias("tenant_id"))
            .agg(F.count(F.lit(1)).alias("unexpected"), F.first(example).alias("example"))
            .select(F.lit(name).alias("rule"), "tenant_id", "unexpected", "example")
        )
    return reduce(DataFrame.unionByName, parts)


def sql_counts(offending: Sequence[tuple[str, DataFrame]]) -> DataFrame:
    """Per (SQL rule, tenant): the rows its query returned, and the first as JSON.
    `offending`: (rule name, the rule's query as a DataFrame with a `tenant_id` column)."""
    parts = [
        rows.groupBy(F.col("tenant_id").cast("string").alias("tenant_id"))
        .agg(
            F.count(F.lit(1)).alias("unexpected"),
            F.first(F.to_json(F.struct(*[F.col(f"`{c}`") for c in rows.columns]))).alias("example"),
        )
        .select(F.lit(name).alias("rule"), "tenant_id", "unexpected", "example")
        for name, rows in offending
    ]
    return reduce(DataFrame.unionByName, parts)
