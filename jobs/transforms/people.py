"""Per-person compact tables derived from attributed silver events.

`person_account_daily` is the grain gold's windows are built from (one row per tenant,
date, person and account with any event), so a 28-day distinct count reads 28 small
partitions instead of 28 days of events. `memberships` folds it into one row per person and
account.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

GROUP_CALL_COLUMNS = (
    "tenant_id",
    "event_date",
    "event_ts",
    "message_id",
    "group_id",
    "user_id",
    "anonymous_id",
    "group_name",
    "group_plan",
    "group_tier",
    "group_industry",
    "group_employees",
    "group_seats",
    "parent_group_id",
    "delivery_date",
    "_run_id",
)


def _histogram(values: Column) -> Column:
    """array<string> → array<struct<feature_key, events>>: each distinct value and how often
    it occurs, sorted by value (an array, not a map, so rows stay comparable in set
    operations)."""
    return F.transform(
        F.array_sort(F.array_distinct(values)),
        lambda k: F.struct(
            k.alias("feature_key"),
            F.size(F.filter(values, lambda v: v == k)).cast("long").alias("events"),
        ),
    )


def person_account_daily(run_id: str) -> Callable[[DataFrame], DataFrame]:
    """Attributed events → one row per (tenant_id, event_date, person_id, account_id).

    `events` counts qualifying events only (SPEC §4.3); `all_events` counts every call, so
    a person seen only through identify / group calls still has a row (membership evidence)
    with events = 0. `role` is the role of the day's latest identify call that carried one.
    `feature_events` lists each feature_key used that day with its qualifying events (feature
    adoption counts events per feature from it); `features` is its sorted keys.
    """

    def transform(events: DataFrame) -> DataFrame:
        activity = F.col("is_activity")
        identify_role = F.when(
            (F.col("type") == "identify") & F.col("role").isNotNull(),
            F.struct("event_ts", "message_id", "role"),
        )
        return (
            events.where(F.col("person_id").isNotNull())
            .groupBy("tenant_id", "event_date", "person_id", "account_id")
            .agg(
                F.count(F.when(activity, 1)).alias("events"),
                F.count(F.lit(1)).alias("all_events"),
                F.count(F.when(activity & (F.col("category") == "admin"), 1)).alias(
                    "admin_actions"
                ),
                F.count(F.when(activity & (F.col("category") == "collaboration"), 1)).alias(
                    "collaboration_actions"
                ),
                F.collect_list(F.when(activity, F.col("feature_key"))).alias("_feature_hits"),
                F.min(F.when(activity, F.col("event_ts"))).alias("first_activity_at"),
                F.min("event_ts").alias("first_seen_at"),
                F.max("event_ts").alias("last_seen_at"),
                F.max(identify_role).alias("_role"),
            )
            .select(
                "tenant_id",
                "event_date",
                "person_id",
                "account_id",
                "events",
                "all_events",
                "admin_actions",
                "collaboration_actions",
                F.array_sort(F.array_distinct("_feature_hits")).alias("features"),
                _histogram(F.col("_feature_hits")).alias("feature_events"),
                "first_activity_at",
                "first_seen_at",
                "last_seen_at",
                F.col("_role.role").alias("role"),
                F.col("_role.event_ts").alias("role_at"),
                F.lit(run_id).alias("_run_id"),
            )
        )

    return transform


def memberships(run_id: str) -> Callable[[DataFrame], DataFrame]:
    """`person_account_daily` → one row per (tenant_id, person_id, account_id).

    role: the person's latest identify role (roles are person traits in §3.1), else NULL.
    """

    def transform(daily: DataFrame) -> DataFrame:
        person = Window.partitionBy("tenant_id", "person_id")
        latest_role = F.max(F.when(F.col("role").isNotNull(), F.struct("role_at", "role"))).over(
            person
        )["role"]
        return (
            daily.withColumn("person_role", latest_role)
            .where(F.col("account_id").isNotNull())
            .groupBy("tenant_id", "person_id", "account_id")
            .agg(
                F.max("person_role").alias("role"),
                F.min("first_seen_at").alias("first_seen_at"),
                F.max("last_seen_at").alias("last_seen_at"),
                F.count(F.when(F.col("events") > 0, 1)).alias("active_days"),
                F.sum("events").alias("events"),
            )
            .withColumn("is_admin", F.col("role").isin("owner", "admin"))
            .withColumn("_run_id", F.lit(run_id))
        )

    return transform
