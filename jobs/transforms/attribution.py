"""Account attribution of qualifying events (SPEC §4.5), exactly this precedence:

1. the event's own `group_id`;
2. else the `group_id` of the person's latest `group` call with event_ts ≤ the event's;
3. else the `group_id` of the person's earliest `group` call;
4. else unattributed (NULL: counted at tenant level, never dropped).

An as-of lookup without a range join: group calls and events of one person are ordered
together (a group call sorts before an event at the same instant, so "≤" holds) and the last
non-null group id seen so far is carried forward.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def attribute_accounts(group_calls: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Add `account_id` and `attribution` (own | latest_group | earliest_group | none).

    `group_calls`: tenant_id, person_id, event_ts, group_id, message_id of `group` events.
    Input events: tenant_id, person_id, event_ts, group_id, message_id (+ any columns).
    """

    def transform(events: DataFrame) -> DataFrame:
        event_type = events.select(F.struct(*events.columns).alias("e")).schema["e"].dataType
        calls = group_calls.select(
            "tenant_id",
            "person_id",
            "event_ts",
            F.lit(0).alias("_order"),
            F.col("message_id").alias("_mid"),
            F.col("group_id").alias("_call_group"),
            F.lit(None).cast(event_type).alias("_event"),
        )
        probes = events.select(
            "tenant_id",
            "person_id",
            "event_ts",
            F.lit(1).alias("_order"),
            F.col("message_id").alias("_mid"),
            F.lit(None).cast("string").alias("_call_group"),
            F.struct(*events.columns).alias("_event"),
        )
        timeline = Window.partitionBy("tenant_id", "person_id").orderBy(
            "event_ts", "_order", "_mid"
        )
        person = Window.partitionBy("tenant_id", "person_id")
        call_key = F.when(F.col("_call_group").isNotNull(), F.struct("event_ts", "_mid"))
        looked_up = (
            calls.unionByName(probes)
            .withColumn(
                "_latest",
                F.last("_call_group", ignorenulls=True).over(
                    timeline.rowsBetween(Window.unboundedPreceding, Window.currentRow)
                ),
            )
            .withColumn("_earliest", F.min_by("_call_group", call_key).over(person))
            .where(F.col("_order") == 1)
        )
        own, latest, earliest = F.col("_event.group_id"), F.col("_latest"), F.col("_earliest")
        return looked_up.select(
            "_event.*",
            F.coalesce(own, latest, earliest).alias("account_id"),
            F.when(own.isNotNull(), "own")
            .when(latest.isNotNull(), "latest_group")
            .when(earliest.isNotNull(), "earliest_group")
            .otherwise("none")
            .alias("attribution"),
        )

    return transform
