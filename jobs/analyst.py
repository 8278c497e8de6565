"""The analyst's way in: gold tables as small pandas frames, and the plots of
`notebooks/account_analytics.ipynb`.

Every query aggregates in Spark and brings back at most a few thousand rows (gold is
account-sized, and each helper narrows it further), so the notebook stays light on any
warehouse size. Tables are addressed by name (`gold.account_daily`), as in `lakehouse sql`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.config import Settings, load_settings

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

BAND_ORDER = ("at_risk", "watch", "healthy")
BAND_COLORS = {"at_risk": "#c0392b", "watch": "#f0ad4e", "healthy": "#27ae60"}


def open_warehouse(warehouse: str | None = None) -> tuple[SparkSession, Settings]:
    """A Spark session with every table of the warehouse registered by `layer.name`."""
    from jobs.catalog import register_tables
    from jobs.spark import build_session

    settings = load_settings(warehouse=warehouse)
    spark = build_session(settings, app_name="lakehouse notebook")
    register_tables(spark, settings)
    return spark, settings


def latest_date(spark: SparkSession, table: str = "gold.account_health_daily") -> dt.date:
    """The latest activity_date every tenant of `table` has rows for (tenants' horizons
    differ: a few early-stamped events can put one tenant a day ahead)."""
    return (
        spark.sql(
            f"SELECT min(d) AS d FROM "
            f"(SELECT max(activity_date) AS d FROM {table} GROUP BY tenant_id)"
        )
        .first()
        .d
    )


def health_by_tier(spark: SparkSession, as_of: dt.date) -> pd.DataFrame:
    """Direct-scope health rows on `as_of`: tenant, account, tier, score, band, drivers."""
    return spark.sql(
        f"""
        SELECT tenant_id, account_id, tier, health_score, band,
               concat_ws(', ', top_negative_drivers) AS weakest_drivers
        FROM gold.account_health_daily
        WHERE scope = 'direct' AND activity_date = DATE'{as_of.isoformat()}'
        ORDER BY health_score
        """
    ).toPandas()


def _gold(spark: SparkSession, table: str, tenant: str) -> DataFrame:
    """One tenant's rows of `gold.<table>` (values go through the DataFrame API, never
    into SQL text)."""
    return spark.table(f"gold.{table}").where(F.col("tenant_id") == tenant)


def top_rollup_account(spark: SparkSession, tenant: str, as_of: dt.date) -> str:
    """The tenant's account with the most 28-day active persons in rollup scope."""
    row = (
        _gold(spark, "account_daily", tenant)
        .where(f"scope = 'rollup' AND activity_date = DATE'{as_of.isoformat()}'")
        .orderBy(F.desc("mau_28d"), "account_id")
        .first()
    )
    if row is None:
        raise LookupError(f"no gold.account_daily rows for tenant {tenant!r} on {as_of}")
    return row.account_id


def activity_trend(spark: SparkSession, tenant: str, account: str) -> pd.DataFrame:
    """dau / wau_7d / mau_28d per date for one account, direct and rollup side by side."""
    return (
        _gold(spark, "account_daily", tenant)
        .where(F.col("account_id") == account)
        .select("activity_date", "scope", "dau", "wau_7d", "mau_28d", "stickiness")
        .orderBy("activity_date", "scope")
        .toPandas()
    )


def feature_adoption(spark: SparkSession, tenant: str, as_of: dt.date) -> pd.DataFrame:
    """Per feature on `as_of`, direct scope: accounts using it, 28-day adopters, and the
    median share of an account's monthly actives who adopted it."""
    return (
        _gold(spark, "feature_adoption_daily", tenant)
        .where(f"scope = 'direct' AND activity_date = DATE'{as_of.isoformat()}'")
        .groupBy("feature_key")
        .agg(
            F.count(F.lit(1)).alias("accounts"),
            F.sum("adopters_28d").alias("adopters_28d"),
            F.percentile("adoption_share", 0.5).alias("median_adoption_share"),
        )
        .orderBy(F.desc("adopters_28d"))
        .toPandas()
    )


def retention_matrix(spark: SparkSession, tenant: str) -> pd.DataFrame:
    """Cohort month × months since first activity → share of the cohort's accounts active."""
    rows = (
        _gold(spark, "account_retention_monthly", tenant)
        .select("cohort_month", "months_since_first", "retention_rate")
        .toPandas()
    )
    return rows.pivot(
        index="cohort_month", columns="months_since_first", values="retention_rate"
    ).sort_index()


# --------------------------------------------------------------------------- plots


def plot_health_by_tier(health: pd.DataFrame, ax: Axes) -> None:
    """Stacked bars: accounts per tier, split by band."""
    counts = health.groupby(["tier", "band"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[b for b in BAND_ORDER if b in counts.columns])
    counts.plot.bar(stacked=True, ax=ax, color=[BAND_COLORS[b] for b in counts.columns])
    ax.set_xlabel("tier")
    ax.set_ylabel("accounts")
    ax.set_title("Account health by tier")


def plot_activity_trend(trend: pd.DataFrame, account: str, ax: Axes) -> None:
    """DAU / WAU / MAU lines; solid for the account's rollup scope, dashed for direct."""
    for scope, style in (("rollup", "-"), ("direct", "--")):
        part = trend[trend["scope"] == scope]
        for metric in ("dau", "wau_7d", "mau_28d"):
            ax.plot(part["activity_date"], part[metric], style, label=f"{metric} ({scope})")
    ax.set_title(f"Active persons, account {account}")
    ax.set_ylabel("persons")
    ax.legend(fontsize="small", ncol=2)
    ax.tick_params(axis="x", labelrotation=45)


def plot_feature_adoption(adoption: pd.DataFrame, ax: Axes) -> None:
    """Horizontal bars: 28-day adopters per feature."""
    ordered = adoption.sort_values("adopters_28d")
    ax.barh(ordered["feature_key"].astype(str), ordered["adopters_28d"])
    ax.set_xlabel("persons who used it in the last 28 days")
    ax.set_title("Feature adoption")


def plot_retention(matrix: pd.DataFrame, ax: Axes) -> None:
    """Heatmap of monthly account retention by cohort."""
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(matrix.columns)), [str(c) for c in matrix.columns])
    ax.set_yticks(range(len(matrix.index)), [str(i)[:7] for i in matrix.index])
    ax.set_xlabel("months since first activity")
    ax.set_ylabel("cohort")
    ax.set_title("Account retention")
    ax.figure.colorbar(image, ax=ax, label="share of cohort active")
