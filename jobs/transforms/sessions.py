"""Sessions (SPEC §4.7): per (tenant, person), qualifying events in event_ts order.

A new session starts when the gap to the previous qualifying event exceeds 30 minutes
(a gap of exactly 30 minutes continues the session). A session belongs to the account and
the local event_date of its first event, so a session that crosses local midnight counts on
the day it started.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

SESSION_GAP_SECONDS = 30 * 60


def sessionize(gap_seconds: int = SESSION_GAP_SECONDS) -> Callable[[DataFrame], DataFrame]:
    """Qualifying events → one row per session.

    Input columns: tenant_id, person_id, account_id, event_date, event_ts, message_id
    (only activity events: the caller filters `is_activity`). Output: tenant_id, person_id,
    session_id, account_id, event_date, session_start_ts, session_end_ts, events,
    duration_seconds. `message_id` breaks ties between events with the same timestamp so the
    result does not depend on row order.
    """
    gap_micros = gap_seconds * 1_000_000

    def transform(events: DataFrame) -> DataFrame:
        ordered = Window.partitionBy("tenant_id", "person_id").orderBy("event_ts", "message_id")
        micros = F.unix_micros("event_ts")
        marked = events.withColumn(
            "is_start",
            F.coalesce(micros - F.lag(micros).over(ordered) > gap_micros, F.lit(True)),
        ).withColumn("session_seq", F.sum(F.col("is_start").cast("int")).over(ordered))
        first = Window.partitionBy("tenant_id", "person_id", "session_seq").orderBy(
            "event_ts", "message_id"
        )
        with_first = marked.withColumn("first_rank", F.row_number().over(first))
        return (
            with_first.groupBy("tenant_id", "person_id", "session_seq")
            .agg(
                F.min("event_ts").alias("session_start_ts"),
                F.max("event_ts").alias("session_end_ts"),
                F.count(F.lit(1)).alias("events"),
                F.max(F.when(F.col("first_rank") == 1, F.col("account_id"))).alias("account_id"),
                F.max(F.when(F.col("first_rank") == 1, F.col("event_date"))).alias("event_date"),
                F.max(F.when(F.col("first_rank") == 1, F.col("message_id"))).alias("first_id"),
            )
            .select(
                "tenant_id",
                "person_id",
                # a function of the person and its first event: stable across restatements
                F.concat(
                    F.lit("s_"),
                    F.substring(
                        F.sha2(F.concat_ws("\x1f", "tenant_id", "person_id", "first_id"), 256),
                        1,
                        24,
                    ),
                ).alias("session_id"),
                "account_id",
                "event_date",
                "session_start_ts",
                "session_end_ts",
                "events",
                (F.unix_seconds("session_end_ts") - F.unix_seconds("session_start_ts")).alias(
                    "duration_seconds"
                ),
            )
        )

    return transform
