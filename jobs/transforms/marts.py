"""Gold marts (SPEC §6.4) as pure DataFrame functions: feature adoption, account health,
activation and monthly retention.

Like `jobs/transforms/gold.py`, each function gets frames already narrowed to what a run
recomputes and returns the rows of those partitions; formulas' parameters come from
`conf/health_score.yaml` and `conf/activation.yaml` (`jobs.config.HealthConf`,
`ActivationConf`) and every metric is described in `conf/metrics.yaml`.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.config import HEALTH_COMPONENTS, ActivationConf, HealthConf
from jobs.transforms.gold import LONGEST_WINDOW, counted_until, in_scope

TREND_LAG_DAYS = 28  # health's trend compares mau_28d with the value 28 days earlier
SHORT_WINDOW = 7


def _lineage(metric_version: str, run_id: str) -> list[Column]:
    return [F.lit(metric_version).alias("metric_version"), F.lit(run_id).alias("_run_id")]


def _window_dates(date_column: str, days: int) -> Column:
    """The dates whose trailing `days`-day window contains `date_column`."""
    return F.explode(F.sequence(F.col(date_column), F.date_add(date_column, days - 1)))


# --------------------------------------------------------------------------- feature adoption


def feature_adoption_daily(
    activity: DataFrame,
    targets: DataFrame,
    hierarchy: DataFrame,
    account_mau: DataFrame,
    metric_version: str,
    run_id: str,
) -> DataFrame:
    """One row per (tenant, activity_date, scope, account, feature_key) with adopters_28d > 0.

    `activity`: silver.person_account_daily rows (feature_events: each feature with its
    qualifying events) over the targets' 28-day windows. `account_mau`: the same dates'
    account_daily rows (tenant_id, activity_date, scope, account_id, mau_28d). users and
    events count the date itself, adopters_28d the distinct persons who used the feature in
    [D−27, D], and adoption_share = adopters_28d / the account's mau_28d in that scope.
    """
    uses = (
        activity.where(F.col("events") > 0)
        .select(
            "tenant_id",
            "event_date",
            "person_id",
            "account_id",
            F.inline("feature_events"),
        )
        .withColumnRenamed("events", "feature_events")
    )
    counted = counted_until(uses, ["tenant_id", "person_id", "account_id", "feature_key"])
    counted = counted.join(F.broadcast(targets), ["tenant_id", "activity_date"], "left_semi")
    today = F.col("event_date") == F.col("activity_date")
    per_person = (
        in_scope(counted, hierarchy)
        .groupBy(
            "tenant_id",
            "activity_date",
            "scope",
            F.col("scope_account_id").alias("account_id"),
            "feature_key",
            "person_id",
        )
        .agg(
            F.max(today.cast("int")).alias("_today"),
            F.sum(F.when(today, F.col("feature_events")).otherwise(0)).alias("_events"),
        )
    )
    keys = ["tenant_id", "activity_date", "scope", "account_id"]
    return (
        per_person.groupBy(*keys, "feature_key")
        .agg(
            F.sum("_today").cast("long").alias("users"),
            F.sum("_events").cast("long").alias("events"),
            F.count(F.lit(1)).alias("adopters_28d"),
        )
        .join(account_mau.select(*keys, "mau_28d"), keys, "left")
        .select(
            *keys,
            "feature_key",
            "users",
            "events",
            "adopters_28d",
            (F.col("adopters_28d") / F.col("mau_28d")).alias("adoption_share"),
            *_lineage(metric_version, run_id),
        )
    )


# --------------------------------------------------------------------------- health


def _capped(value: Column, target: float) -> Column:
    """value / target clipped to [0, 1], as a 0–100 score (NULL stays NULL: `greatest` and
    `least` skip NULLs, so it is tested first)."""
    clipped = F.least(F.greatest(value / F.lit(float(target)), F.lit(0.0)), F.lit(1.0))
    return F.when(value.isNotNull(), clipped * 100)


def _tier_weight(conf: HealthConf, component: str) -> Column:
    default = F.lit(float(conf.weights_for(None)[component]))
    tiers = sorted(t for t in conf.weights if t != "default")
    if not tiers:
        return default
    expr = F
    for tier in tiers:
        expr = expr.when(F.col("tier") == tier, float(conf.weights_for(tier)[component]))
    return expr.otherwise(default)


def tickets_in_window(
    tickets: DataFrame, targets: DataFrame, hierarchy: DataFrame, conf: HealthConf
) -> DataFrame:
    """Priority-weighted tickets created in [D−27, D] per (tenant, D, scope, account)."""
    weight = reduce(
        lambda expr, item: expr.when(F.col("priority") == item[0], float(item[1])),
        sorted(conf.ticket_weights.items()),
        F,
    ).otherwise(float(conf.ticket_weights.get("normal", 1.0)))
    counted = (
        tickets.where(F.col("account_id").isNotNull())
        .select(
            "tenant_id",
            "account_id",
            "created_date",
            weight.alias("_weight"),
            _window_dates("created_date", LONGEST_WINDOW).alias("activity_date"),
        )
        .join(F.broadcast(targets), ["tenant_id", "activity_date"], "left_semi")
    )
    return (
        in_scope(counted, hierarchy)
        .groupBy(
            "tenant_id", "activity_date", "scope", F.col("scope_account_id").alias("account_id")
        )
        .agg(F.sum("_weight").alias("weighted_tickets_28d"))
    )


def account_health_daily(
    account_days: DataFrame,
    seats: DataFrame,
    adoption: DataFrame,
    tickets: DataFrame,
    tiers: DataFrame,
    targets: DataFrame,
    conf: HealthConf,
    metric_version: str,
    run_id: str,
) -> DataFrame:
    """One row per (tenant, activity_date, scope, account) for accounts active in the last 28
    days or holding billable seats on the date.

    `account_days`: gold.account_daily rows for every target D and its inputs D−6 … D and
    D−28. `seats`: (tenant, activity_date, scope, account_id, seats) on the targets.
    `adoption`: gold.feature_adoption_daily rows of the targets. `tickets`: output of
    `tickets_in_window`. `tiers`: (tenant, activity_date, account_id, tier) — the account's
    own tier as of D (rollup rows use the scope account's tier).

    Components are 0–100; one without data (no seats, nothing 28 days earlier) is NULL and its
    weight is shared out among the others. `top_negative_drivers` names the (at most two)
    components that cost the score most: largest weight × (100 − score) first.
    """
    keys = ["tenant_id", "activity_date", "scope", "account_id"]
    t = conf.targets
    days = account_days.select(
        *keys, "dau", "wau_7d", "mau_28d", "events", "admin_actions", "collaboration_actions"
    )
    # each day's row counts towards the targets whose windows hold it
    spread = days.select(
        *[c for c in days.columns if c != "activity_date"],
        F.col("activity_date").alias("_day"),
        F.explode(
            F.sequence(F.col("activity_date"), F.date_add("activity_date", TREND_LAG_DAYS))
        ).alias("activity_date"),
    ).join(F.broadcast(targets), ["tenant_id", "activity_date"], "left_semi")
    lag = F.datediff("activity_date", "_day")
    short = lag < SHORT_WINDOW
    window = spread.groupBy(*keys).agg(
        F.max(F.when(lag == 0, F.col("wau_7d"))).alias("wau_7d"),
        F.max(F.when(lag == 0, F.col("mau_28d"))).alias("mau_28d"),
        F.max(F.when(lag == TREND_LAG_DAYS, F.col("mau_28d"))).alias("mau_28d_prior"),
        F.sum(F.when(short, F.col("dau"))).alias("dau_7d_sum"),
        F.sum(F.when(short, F.col("events"))).alias("events_7d"),
        F.sum(F.when(short, F.col("collaboration_actions"))).alias("collaboration_7d"),
        F.sum(F.when(lag < LONGEST_WINDOW, F.col("admin_actions"))).alias("admin_actions_28d"),
    )
    breadth = adoption.groupBy(*keys).agg(F.count(F.lit(1)).alias("features_28d"))
    base = (
        window.join(seats.where(F.col("seats") > 0).select(*keys, "seats"), keys, "full_outer")
        .where((F.coalesce(F.col("mau_28d"), F.lit(0)) > 0) | F.col("seats").isNotNull())
        .join(breadth, keys, "left")
        .join(tickets, keys, "left")
        .join(tiers, ["tenant_id", "activity_date", "account_id"], "left")
    )
    zero = F.lit(0)
    wau = F.coalesce(F.col("wau_7d"), zero)
    mau = F.coalesce(F.col("mau_28d"), zero)
    per_user = lambda total: F.coalesce(total, zero) / F.greatest(wau, F.lit(1))  # noqa: E731
    prior = F.col("mau_28d_prior")
    change = F.when(prior > 0, (mau - prior) / prior)
    scores = {
        "breadth": _capped(F.coalesce(F.col("features_28d"), zero), t.features_28d),
        "depth": _capped(per_user(F.col("events_7d")), t.events_per_user_week),
        "consistency": _capped(per_user(F.col("dau_7d_sum")) / SHORT_WINDOW, t.dau_per_wau),
        "admin_engagement": _capped(
            F.coalesce(F.col("admin_actions_28d"), zero), t.admin_actions_28d
        ),
        "collaboration": _capped(
            per_user(F.col("collaboration_7d")), t.collaboration_per_user_week
        ),
        "support_load": 100
        - _capped(F.coalesce(F.col("weighted_tickets_28d"), zero), t.weighted_tickets_28d),
        "seat_utilization": _capped(F.when(F.col("seats") > 0, mau / F.col("seats")), 1.0),
        "trend": _capped(change + t.trend_full_change, 2 * t.trend_full_change),
    }
    scored = base.select(
        *keys,
        F.coalesce(F.col("tier"), F.lit("unknown")).alias("tier"),
        *(F.round(expr, 1).alias(f"{name}_score") for name, expr in scores.items()),
    )
    weights = {name: _tier_weight(conf, name) for name in HEALTH_COMPONENTS}
    present = {name: F.col(f"{name}_score").isNotNull() for name in HEALTH_COMPONENTS}
    weighted = reduce(
        lambda a, b: a + b,
        (
            F.when(present[n], weights[n] * F.col(f"{n}_score")).otherwise(0.0)
            for n in HEALTH_COMPONENTS
        ),
    )
    total = reduce(
        lambda a, b: a + b,
        (F.when(present[n], weights[n]).otherwise(0.0) for n in HEALTH_COMPONENTS),
    )
    score = F.round(F.when(total > 0, weighted / total), 1)
    # (−cost, name) sorts the costliest first, ties alphabetically; NULL components drop out
    shortfalls = F.array(
        *(
            F.struct(
                (weights[n] * (F.col(f"{n}_score") - F.lit(100.0))).alias("gain"),
                F.lit(n).alias("name"),
            )
            for n in HEALTH_COMPONENTS
        )
    )
    ranked = F.sort_array(F.filter(shortfalls, lambda s: s["gain"] < 0))
    band = (
        F.when(F.col("health_score") >= conf.bands.healthy, "healthy")
        .when(F.col("health_score") >= conf.bands.watch, "watch")
        .otherwise("at_risk")
    )
    return scored.select(
        "*", score.alias("health_score"), F.slice(ranked, 1, 2).alias("_worst")
    ).select(
        *keys,
        "tier",
        "health_score",
        band.alias("band"),
        *(f"{n}_score" for n in HEALTH_COMPONENTS),
        F.transform("_worst", lambda s: s["name"]).alias("top_negative_drivers"),
        *_lineage(metric_version, run_id),
    )


# --------------------------------------------------------------------------- activation


def account_activation(
    activity: DataFrame,
    settled: DataFrame,
    horizons: DataFrame,
    conf: ActivationConf,
    metric_version: str,
    run_id: str,
) -> DataFrame:
    """One row per (tenant, account) first active in the recomputed range.

    `activity`: silver.person_account_daily rows of the range (direct attribution).
    `settled`: (tenant_id, account_id) of accounts first active before the range — left out.
    `horizons`: (tenant_id, horizon). An account activates on the first date by which, since
    its first active date, at least `min_active_users` distinct persons were active in it
    and `min_features` distinct features were used, within `within_days` days.
    """
    w = conf.within_days
    rows = activity.where((F.col("events") > 0) & F.col("account_id").isNotNull()).join(
        settled, ["tenant_id", "account_id"], "left_anti"
    )
    account = Window.partitionBy("tenant_id", "account_id")
    in_window = rows.select(
        "*", F.min("event_date").over(account).alias("first_active_date")
    ).where(F.datediff("event_date", "first_active_date") < w)

    def nth_first(values: DataFrame, column: str, n: int, alias: str) -> DataFrame:
        """Per account: the date its n-th distinct `column` value first appeared (NULL when
        fewer than n did), and how many distinct values appeared (`<alias>_count`)."""
        firsts = values.groupBy("tenant_id", "account_id", column).agg(
            F.min("event_date").alias("_first")
        )
        order = Window.partitionBy("tenant_id", "account_id").orderBy("_first", column)
        return (
            firsts.select("*", F.row_number().over(order).alias("_n"))
            .groupBy("tenant_id", "account_id")
            .agg(
                F.max(F.when(F.col("_n") == n, F.col("_first"))).alias(alias),
                F.count(F.lit(1)).alias(f"{alias}_count"),
            )
        )

    features = in_window.select(
        "tenant_id", "account_id", "event_date", F.explode("features").alias("feature_key")
    )
    users = nth_first(in_window, "person_id", conf.min_active_users, "_users_met")
    feats = nth_first(features, "feature_key", conf.min_features, "_features_met")
    firsts = in_window.groupBy("tenant_id", "account_id").agg(
        F.min("first_active_date").alias("first_active_date")
    )
    met = F.greatest("_users_met", "_features_met")
    activated = F.col("_users_met").isNotNull() & F.col("_features_met").isNotNull()
    return (
        firsts.join(users, ["tenant_id", "account_id"], "left")
        .join(feats, ["tenant_id", "account_id"], "left")
        .join(F.broadcast(horizons), "tenant_id")
        .select(
            "tenant_id",
            "first_active_date",
            "account_id",
            activated.alias("activated"),
            F.when(activated, met).alias("activation_date"),
            F.when(activated, F.datediff(met, "first_active_date")).alias("days_to_activate"),
            F.col("_users_met_count").cast("long").alias("active_users_in_window"),
            F.coalesce(F.col("_features_met_count"), F.lit(0))
            .cast("long")
            .alias("features_in_window"),
            (F.date_add("first_active_date", w - 1) <= F.col("horizon")).alias("window_closed"),
            *_lineage(metric_version, run_id),
        )
    )


# --------------------------------------------------------------------------- retention


def account_retention_monthly(
    cohorts: DataFrame,
    active: DataFrame,
    months: DataFrame,
    metric_version: str,
    run_id: str,
) -> DataFrame:
    """One row per (tenant, activity_month, cohort_month) for cohorts started by that month.

    `cohorts`: (tenant_id, account_id, first_active_date) of every account of the tenants.
    `active`: (tenant_id, account_id, activity_month) — accounts with direct qualifying
    activity in the month. `months`: (tenant_id, activity_month, month_complete) to produce.
    """
    cohort = cohorts.select(
        "tenant_id", "account_id", F.trunc("first_active_date", "month").alias("cohort_month")
    )
    sizes = cohort.groupBy("tenant_id", "cohort_month").agg(
        F.count(F.lit(1)).alias("cohort_accounts")
    )
    retained = (
        active.join(cohort, ["tenant_id", "account_id"])
        .groupBy("tenant_id", "activity_month", "cohort_month")
        .agg(F.countDistinct("account_id").alias("retained_accounts"))
    )
    grid = months.join(sizes, "tenant_id").where(F.col("cohort_month") <= F.col("activity_month"))
    return grid.join(retained, ["tenant_id", "activity_month", "cohort_month"], "left").select(
        "tenant_id",
        "activity_month",
        "cohort_month",
        F.months_between("activity_month", "cohort_month").cast("int").alias("months_since_first"),
        F.col("cohort_accounts").cast("long").alias("cohort_accounts"),
        F.coalesce(F.col("retained_accounts"), F.lit(0)).cast("long").alias("retained_accounts"),
        (F.coalesce(F.col("retained_accounts"), F.lit(0)) / F.col("cohort_accounts")).alias(
            "retention_rate"
        ),
        "month_complete",
        *_lineage(metric_version, run_id),
    )
