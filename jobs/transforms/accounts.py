"""CRM, billing and support exports → typed silver rows, account history and hierarchy.

Pure DataFrame → DataFrame functions (SPEC §3.2–3.4, §4.6); the job is `jobs.silver_accounts`.

Validation follows the events transform: lines are parsed with `try_parse_json` (VARIANT), so
JSON types are exact. One reason per line, the first that applies in `REJECT_REASONS` order:

* `oversized_record` — line longer than the configured limit;
* `invalid_json` — not a JSON object;
* `invalid_type` — a field of the wrong JSON type (a number sent as a string or the reverse,
  a fractional number for an integer field), an integer outside the column's range, a value
  outside its enum (tier, status, priority), a negative `seats` or `employee_count`, a `csat`
  outside 1–5;
* `missing_field` — a required field absent, JSON null or empty;
* `field_too_long` — an id longer than `max_field_chars`;
* `invalid_timestamp` — a date or timestamp string that does not parse (dates are
  `YYYY-MM-DD`; timestamps are full ISO-8601 date-times, no offset = UTC).

Optional text fields that are empty or blank are NULL (an empty `parent_account_id` is "no
parent").

Account state as of a date D (SPEC §4.6, also used for the SCD2 attributes): the latest CRM
snapshot with delivery_date ≤ D that contains the account; only when no snapshot up to D
contains it, the account's `group` calls with event_date ≤ D. Consequences, deliberately:
an account once seen in the CRM keeps its last CRM state after it disappears from later
snapshots; group calls after an account's first CRM appearance are ignored. Two rows for one
account in one snapshot: the one with the smallest raw-line hash is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.config import TICKET_PRIORITIES
from jobs.transforms.events import is_present, json_type, local_date, parse_timestamp
from jobs.transforms.frames import checkpoint_observing

REJECT_REASONS = (
    "oversized_record",
    "invalid_json",
    "invalid_type",
    "missing_field",
    "field_too_long",
    "invalid_timestamp",
)
TIERS = ("starter", "growth", "strategic")
SUBSCRIPTION_STATUSES = ("trialing", "active", "past_due", "canceled")
TICKET_STATUSES = ("new", "open", "pending", "solved", "closed")
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INT", "BIGINT")
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


@dataclass(frozen=True)
class Field:
    """One exported field: its kind (id | string | int | bigint | date | timestamp)."""

    name: str
    kind: str
    required: bool = False
    values: tuple[str, ...] | None = None  # allowed values of a string field
    min_value: int | None = None
    max_value: int | None = None

    @property
    def spark_type(self) -> str:
        return {"id": "string", "string": "string"}.get(self.kind, self.kind)


FIELDS: dict[str, tuple[Field, ...]] = {
    "accounts": (
        Field("account_id", "id", required=True),
        Field("name", "string"),
        Field("parent_account_id", "id"),
        Field("tier", "string", values=TIERS),
        Field("industry", "string"),
        Field("employee_count", "int", min_value=0),
        Field("region", "string"),
        Field("renewal_date", "date"),
        Field("created_at", "timestamp"),
    ),
    "subscriptions": (
        Field("subscription_id", "id", required=True),
        Field("account_id", "id", required=True),
        Field("plan", "string"),
        Field("status", "string", values=SUBSCRIPTION_STATUSES),
        Field("seats", "int", min_value=0),
        Field("mrr_cents", "bigint"),
        Field("currency", "string"),
        Field("current_period_start", "timestamp"),
        Field("current_period_end", "timestamp"),
        Field("canceled_at", "timestamp"),
    ),
    "tickets": (
        Field("ticket_id", "id", required=True),
        Field("account_id", "id"),
        Field("requester_user_id", "id"),
        Field("created_at", "timestamp", required=True),
        Field("updated_at", "timestamp"),
        Field("status", "string", values=TICKET_STATUSES),
        Field("priority", "string", values=TICKET_PRIORITIES),
        Field("csat", "int", min_value=1, max_value=5),
    ),
}
LINEAGE = ("_raw_hash", "_source_file", "_run_id")


def content_columns(source: str) -> list[str]:
    """The typed columns of a source's silver rows, without partition or lineage columns."""
    return [f.name for f in FIELDS[source]]


# --------------------------------------------------------------------------- validation


def _extract(doc: Column, f: Field) -> list[Column]:
    """Step 1 for one field: its JSON type and its raw value (string or integer)."""
    t = json_type(doc, f.name)
    path = f"$.{f.name}"
    if f.kind in ("int", "bigint"):
        raw = F.when(t.isin(*_INTEGER_TYPES), F.try_variant_get(doc, path, f.kind))
    else:
        raw = F.when(t == "STRING", F.variant_get(doc, path, "string"))
    return [t.alias(f"_t_{f.name}"), raw.alias(f"_r_{f.name}")]


def _check(f: Field) -> list[Column]:
    """Step 2 for one field: typed value `_v_`, wrong-type flag `_w_`, bad date/time `_b_`."""
    t, raw = F.col(f"_t_{f.name}"), F.col(f"_r_{f.name}")
    if f.kind in ("int", "bigint"):
        wrong = is_present(t) & raw.isNull()
        if f.min_value is not None:
            wrong = wrong | (raw < f.min_value)
        if f.max_value is not None:
            wrong = wrong | (raw > f.max_value)
        wrong = F.coalesce(wrong, F.lit(False))
        return [
            F.when(~wrong, raw).alias(f"_v_{f.name}"),
            wrong.alias(f"_w_{f.name}"),
            F.lit(False).alias(f"_b_{f.name}"),
        ]
    text = F.when(F.trim(raw) != "", raw)
    wrong = is_present(t) & (t != "STRING")
    if f.values is not None:
        wrong = wrong | (text.isNotNull() & ~text.isin(*f.values))
    if f.kind == "date":
        value = F.when(
            text.rlike(_ISO_DATE), F.to_date(F.try_to_timestamp(text, F.lit("yyyy-MM-dd")))
        )
    elif f.kind == "timestamp":
        value = parse_timestamp(text)
    else:
        value = text
    bad_time = text.isNotNull() & value.isNull() if f.kind in ("date", "timestamp") else None
    return [
        value.alias(f"_v_{f.name}"),
        F.coalesce(wrong, F.lit(False)).alias(f"_w_{f.name}"),
        (F.coalesce(bad_time, F.lit(False)) if bad_time is not None else F.lit(False)).alias(
            f"_b_{f.name}"
        ),
    ]


def _any(columns: list[Column]) -> Column:
    return reduce(lambda a, b: a | b, columns) if columns else F.lit(False)


def parse_records(
    source: str, max_line_bytes: int, max_field_chars: int
) -> Callable[[DataFrame], DataFrame]:
    """Bronze rows of `source` → typed fields + `reject_reason` (NULL for valid rows).

    Input: tenant_id, delivery_date, raw_line, _raw_hash, _source_file (bronze columns).
    Output: tenant_id, delivery_date, the source's fields, reject_reason, raw_line,
    _raw_hash, _source_file. Built in small projection steps (extract, check, decide) so
    the expression trees stay small: analysis time grows quickly with nested VARIANT calls.
    """
    fields = FIELDS[source]
    keep = ["tenant_id", "delivery_date", "raw_line", "_raw_hash", "_source_file"]

    def transform(bronze: DataFrame) -> DataFrame:
        text = F.regexp_replace(F.col("raw_line"), "^\ufeff", "")
        oversized = F.octet_length(F.col("raw_line")) > max_line_bytes
        docs = bronze.select(
            *keep,
            oversized.alias("_oversized"),
            F.when(~oversized, F.try_parse_json(text)).alias("doc"),
            text.rlike(r"^\s*\{").alias("_is_object"),
        )
        extracted = docs.select(
            *keep, "_oversized", "_is_object", "doc",
            *(c for f in fields for c in _extract(F.col("doc"), f)),
        )  # fmt: skip
        checked = extracted.select(
            *keep, "_oversized", "_is_object", F.col("doc").isNull().alias("_no_doc"),
            *(c for f in fields for c in _check(f)),
        )  # fmt: skip
        value = {f.name: F.col(f"_v_{f.name}") for f in fields}
        too_long = [
            F.coalesce(F.char_length(value[f.name]) > max_field_chars, F.lit(False))
            for f in fields
            if f.kind == "id"
        ]
        reason = (
            F.when(F.col("_oversized"), "oversized_record")
            .when(F.col("_no_doc") | ~F.col("_is_object"), "invalid_json")
            .when(_any([F.col(f"_w_{f.name}") for f in fields]), "invalid_type")
            .when(_any([value[f.name].isNull() for f in fields if f.required]), "missing_field")
            .when(_any(too_long), "field_too_long")
            .when(_any([F.col(f"_b_{f.name}") for f in fields]), "invalid_timestamp")
        )
        return checked.select(
            "tenant_id",
            "delivery_date",
            *(value[f.name].cast(f.spark_type).alias(f.name) for f in fields),
            reason.alias("reject_reason"),
            "raw_line",
            "_raw_hash",
            "_source_file",
        )

    return transform


def valid_records(source: str, run_id: str) -> Callable[[DataFrame], DataFrame]:
    """Parsed rows without a reject reason → silver rows (partition, fields, lineage)."""

    def transform(parsed: DataFrame) -> DataFrame:
        return parsed.where(F.col("reject_reason").isNull()).select(
            "tenant_id",
            "delivery_date",
            *content_columns(source),
            "_raw_hash",
            "_source_file",
            F.lit(run_id).alias("_run_id"),
        )

    return transform


def rejected_records(source: str, run_id: str) -> Callable[[DataFrame], DataFrame]:
    """Rejected rows: reason next to the raw line and its lineage (`silver.records_rejected`)."""
    key = FIELDS[source][0].name

    def transform(parsed: DataFrame) -> DataFrame:
        return parsed.where(F.col("reject_reason").isNotNull()).select(
            "tenant_id",
            "delivery_date",
            F.lit(source).alias("source"),
            F.col("reject_reason").alias("reason"),
            F.col(key).alias("record_id"),
            "raw_line",
            "_source_file",
            "_raw_hash",
            F.lit(run_id).alias("_run_id"),
        )

    return transform


# --------------------------------------------------------------------------- tickets


def current_tickets(timezones: Mapping[str, str], run_id: str) -> Callable[[DataFrame], DataFrame]:
    """Ticket versions → one row per (tenant_id, ticket_id): its current state (SPEC §3.4).

    The version with the latest `updated_at` (a version without one counts as updated at its
    `created_at`); ties: the latest delivery, then the largest raw-line hash (deterministic).
    Adds `versions` (how many rows the ticket has), `first_delivery_date`, and the tenant-local
    `created_date` / `updated_date`.
    """

    def transform(versions: DataFrame) -> DataFrame:
        updated = F.coalesce(F.col("updated_at"), F.col("created_at"))
        ticket = Window.partitionBy("tenant_id", "ticket_id")
        latest = ticket.orderBy(
            updated.desc(), F.col("delivery_date").desc(), F.col("_raw_hash").desc()
        )
        ranked = versions.select(
            "*",
            F.row_number().over(latest).alias("_rank"),
            F.count(F.lit(1)).over(ticket).alias("versions"),
            F.min("delivery_date").over(ticket).alias("first_delivery_date"),
        )
        return ranked.where(F.col("_rank") == 1).select(
            "tenant_id",
            *content_columns("tickets"),
            local_date(F.col("created_at"), timezones).alias("created_date"),
            local_date(updated, timezones).alias("updated_date"),
            "versions",
            "first_delivery_date",
            F.col("delivery_date").alias("last_delivery_date"),
            "_raw_hash",
            F.lit(run_id).alias("_run_id"),
        )

    return transform


# --------------------------------------------------------------------------- accounts

ACCOUNT_ATTRIBUTES = (
    "name",
    "parent_account_id",
    "tier",
    "industry",
    "employee_count",
    "region",
    "renewal_date",
    "plan",
    "seats_hint",
)
GROUP_TRAITS = {  # silver.accounts attribute → silver.group_calls column
    "name": "group_name",
    "parent_account_id": "parent_group_id",
    "tier": "group_tier",
    "industry": "group_industry",
    "employee_count": "group_employees",
    "plan": "group_plan",
    "seats_hint": "group_seats",
}
_ATTRIBUTE_TYPES = {"employee_count": "int", "seats_hint": "int", "renewal_date": "date"}


def _blank_to_null(c: Column) -> Column:
    return F.when(F.trim(c) != "", c)


def crm_rows(snapshots: DataFrame) -> DataFrame:
    """One row per (tenant_id, delivery_date, account_id): duplicates → smallest raw hash."""
    w = Window.partitionBy("tenant_id", "delivery_date", "account_id").orderBy("_raw_hash")
    return (
        snapshots.withColumn("_n", F.row_number().over(w))
        .where(F.col("_n") == 1)
        .drop("_n")
        .withColumn("parent_account_id", _blank_to_null(F.col("parent_account_id")))
    )


def _first_crm(crm: DataFrame) -> DataFrame:
    return crm.groupBy("tenant_id", "account_id").agg(F.min("delivery_date").alias("_first_crm"))


def _group_calls_before_crm(group_calls: DataFrame, crm: DataFrame) -> DataFrame:
    """Group calls of accounts on dates before the account's first CRM snapshot."""
    calls = group_calls.where(F.col("group_id").isNotNull()).withColumn(
        "account_id", F.col("group_id")
    )
    return calls.join(_first_crm(crm), ["tenant_id", "account_id"], "left").where(
        F.col("_first_crm").isNull() | (F.col("event_date") < F.col("_first_crm"))
    )


def account_history(snapshots: DataFrame, group_calls: DataFrame, run_id: str) -> DataFrame:
    """SCD2 history per (tenant_id, account_id): valid_from / valid_to (exclusive, NULL = open).

    `snapshots`: silver.accounts_snapshots rows; `group_calls`: silver.group_calls rows.
    CRM versions start on their snapshot's delivery_date (plan and seats_hint are NULL: the
    CRM export has neither). Group versions exist only before the account's first CRM
    snapshot; each trait is the latest non-NULL value among the account's group calls up to
    the end of the event_date (calls ordered by event_ts, then message_id), so a call that
    sends only some traits does not blank the others; region and renewal_date are NULL.
    Consecutive versions with equal attributes and source are collapsed.
    """
    crm = crm_rows(snapshots)
    crm_versions = crm.select(
        "tenant_id",
        "account_id",
        F.col("delivery_date").alias("valid_from"),
        F.lit("crm").alias("source"),
        *(
            (F.col(a) if a in crm.columns else F.lit(None))
            .cast(_ATTRIBUTE_TYPES.get(a, "string"))
            .alias(a)
            for a in ACCOUNT_ATTRIBUTES
        ),
    )
    calls = _group_calls_before_crm(group_calls, crm)
    order = Window.partitionBy("tenant_id", "account_id").orderBy(
        "event_date", "event_ts", "message_id"
    )
    so_far = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    carried = calls.select(
        "tenant_id",
        "account_id",
        "event_date",
        "event_ts",
        "message_id",
        *(
            F.last(
                _blank_to_null(F.col(c)) if a == "parent_account_id" else F.col(c),
                ignorenulls=True,
            )
            .over(so_far)
            .alias(a)
            for a, c in GROUP_TRAITS.items()
        ),
    )
    end_of_day = Window.partitionBy("tenant_id", "account_id", "event_date").orderBy(
        F.col("event_ts").desc(), F.col("message_id").desc()
    )
    group_versions = (
        carried.withColumn("_n", F.row_number().over(end_of_day))
        .where(F.col("_n") == 1)
        .select(
            "tenant_id",
            "account_id",
            F.col("event_date").alias("valid_from"),
            F.lit("group").alias("source"),
            *(
                (F.col(a) if a in GROUP_TRAITS else F.lit(None))
                .cast(_ATTRIBUTE_TYPES.get(a, "string"))
                .alias(a)
                for a in ACCOUNT_ATTRIBUTES
            ),
        )
    )
    versions = crm_versions.unionByName(group_versions)
    timeline = Window.partitionBy("tenant_id", "account_id").orderBy("valid_from")
    same = reduce(
        lambda x, y: x & y,
        (F.col(c).eqNullSafe(F.lag(c).over(timeline)) for c in ("source", *ACCOUNT_ATTRIBUTES)),
    )
    changed = versions.withColumn("_changed", (F.row_number().over(timeline) == 1) | ~same).where(
        "_changed"
    )
    valid_to = F.lead("valid_from").over(timeline)
    return changed.select(
        "tenant_id",
        "account_id",
        "valid_from",
        valid_to.alias("valid_to"),
        valid_to.isNull().alias("is_current"),
        "source",
        *ACCOUNT_ATTRIBUTES,
        F.lit(run_id).alias("_run_id"),
    )


# --------------------------------------------------------------------------- hierarchy


def parent_timeline(snapshots: DataFrame, group_calls: DataFrame) -> DataFrame:
    """Declared parent per account as a step function (SPEC §4.6).

    One row per (tenant_id, account_id, valid_from) with valid_to (exclusive, NULL = open),
    parent_id and parent_source ('crm' | 'group' | NULL). An account is known from its
    first snapshot or its first group call (with or without a parent); until a parent is
    known it is a root. CRM snapshots rule from the account's first snapshot on; before
    that, the latest group call (by event_ts, then message_id) of each event_date whose
    parent_group_id is set gives the parent from that date.
    """
    crm = crm_rows(snapshots)
    crm_points = crm.select(
        "tenant_id",
        "account_id",
        F.col("delivery_date").alias("valid_from"),
        F.col("parent_account_id").alias("parent_id"),
        F.lit("crm").alias("parent_source"),
        F.lit(2).alias("_priority"),
    )
    calls = _group_calls_before_crm(group_calls, crm).withColumn(
        "parent_id", _blank_to_null(F.col("parent_group_id"))
    )
    last_of_day = Window.partitionBy("tenant_id", "account_id", "event_date").orderBy(
        F.col("event_ts").desc(), F.col("message_id").desc()
    )
    group_points = (
        calls.where(F.col("parent_id").isNotNull())
        .withColumn("_n", F.row_number().over(last_of_day))
        .where(F.col("_n") == 1)
        .select(
            "tenant_id",
            "account_id",
            F.col("event_date").alias("valid_from"),
            "parent_id",
            F.lit("group").alias("parent_source"),
            F.lit(1).alias("_priority"),
        )
    )
    seen = crm.select("tenant_id", "account_id", F.col("delivery_date").alias("d")).unionByName(
        group_calls.where(F.col("group_id").isNotNull()).select(
            "tenant_id", F.col("group_id").alias("account_id"), F.col("event_date").alias("d")
        )
    )
    known_points = seen.groupBy("tenant_id", "account_id").agg(
        F.min("d").alias("valid_from"),
        F.lit(None).cast("string").alias("parent_id"),
        F.lit(None).cast("string").alias("parent_source"),
        F.lit(0).alias("_priority"),
    )
    points = crm_points.unionByName(group_points).unionByName(known_points)
    best = Window.partitionBy("tenant_id", "account_id", "valid_from").orderBy(
        F.col("_priority").desc()
    )
    timeline = Window.partitionBy("tenant_id", "account_id").orderBy("valid_from")
    return (
        points.withColumn("_n", F.row_number().over(best))
        .where(F.col("_n") == 1)
        .select(
            "tenant_id",
            "account_id",
            "valid_from",
            F.lead("valid_from").over(timeline).alias("valid_to"),
            "parent_id",
            F.when(F.col("parent_id").isNotNull(), F.col("parent_source")).alias("parent_source"),
        )
    )


def hierarchy_edges(timeline: DataFrame, ranges: DataFrame) -> DataFrame:
    """Declared parent per (tenant_id, as_of_date, account_id) for the dates of `ranges`.

    `ranges`: tenant_id, start_date, end_date (inclusive). A parent id that is not a known
    account on that date gets a row of its own as a root (parent_id NULL), so every account
    that appears in a chain has a row and its rollup scope is defined.
    """
    spans = timeline.join(ranges, "tenant_id")
    lo = F.greatest(F.col("valid_from"), F.col("start_date"))
    hi = F.least(F.coalesce(F.date_sub(F.col("valid_to"), 1), F.col("end_date")), F.col("end_date"))
    edges = spans.where(lo <= hi).select(
        "tenant_id",
        F.explode(F.sequence(lo, hi)).alias("as_of_date"),
        "account_id",
        "parent_id",
        "parent_source",
    )
    keys = ["tenant_id", "as_of_date", "account_id"]
    unknown_parents = (
        edges.where(F.col("parent_id").isNotNull())
        .select("tenant_id", "as_of_date", F.col("parent_id").alias("account_id"))
        .distinct()
        .join(edges.select(*keys), keys, "left_anti")
        .select(
            *keys,
            F.lit(None).cast("string").alias("parent_id"),
            F.lit(None).cast("string").alias("parent_source"),
        )
    )
    return edges.unionByName(unknown_parents)


_OPEN, _ROOT, _CYCLE, _ENTERS_CYCLE, _TOO_DEEP = "open", "root", "cycle", "enters_cycle", "deep"


def _climb(state: DataFrame, edges: DataFrame, max_depth: int) -> DataFrame:
    """One level up for the open chains: append the current top's parent or close the chain."""
    ups = edges.select(
        "tenant_id",
        "as_of_date",
        F.col("account_id").alias("_top"),
        F.col("parent_id").alias("_up"),
    )
    climbing = state.where(F.col("_status") == _OPEN).join(
        ups, ["tenant_id", "as_of_date", "_top"], "left"
    )
    up = F.col("_up")
    status = (
        F.when(up.isNull(), _ROOT)
        .when(up == F.col("account_id"), _CYCLE)
        .when(F.array_contains(F.col("_chain"), up), _ENTERS_CYCLE)
        .when(F.size(F.col("_chain")) >= max_depth, _TOO_DEEP)
        .otherwise(_OPEN)
    )
    climbed = climbing.withColumn("_status", status).select(
        *[c for c in state.columns if c not in ("_chain", "_top", "_entry")],
        F.when(F.col("_status") == _OPEN, F.concat("_chain", F.array(up)))
        .otherwise(F.col("_chain"))
        .alias("_chain"),
        up.alias("_top"),
        F.when(F.col("_status") == _ENTERS_CYCLE, up).alias("_entry"),
    )
    return state.where(F.col("_status") != _OPEN).unionByName(climbed)


def resolve_hierarchy(
    edges: DataFrame, max_depth: int = 32, run_id: str | None = None
) -> DataFrame:
    """Effective parent, ancestors (nearest first), depth and in_cycle per edge row.

    Chains are climbed one level per round with a join against `edges` (one small Spark job
    per level: lineage is cut with a local checkpoint each round, and the same job tells
    whether a chain is still open; the loop stops when none is), so nothing is collected to
    the driver and depth is bounded only by `max_depth`. A chain closes when it reaches a
    root, returns to its own account (the account is in a cycle), reaches an account already
    in the chain (it leads into a cycle: its ancestors stop at the first cycle member, which
    is a root), or exceeds `max_depth` (treated like a cycle: the account becomes a root
    flagged in_cycle). Cycle members are roots: parent NULL, ancestors [], depth 0, in_cycle
    true; `declared_parent_id` keeps the parent the sources declared, for the quality report.

    `edges`: tenant_id, as_of_date, account_id, parent_id, parent_source (one row per
    account and date; every parent id has a row of its own) — persist it before calling.
    """
    start = edges.select(
        "tenant_id",
        "as_of_date",
        "account_id",
        F.col("parent_id").alias("declared_parent_id"),
        F.col("parent_source").alias("declared_parent_source"),
        F.when(F.col("parent_id").isNull(), _ROOT)
        .when(F.col("parent_id") == F.col("account_id"), _CYCLE)
        .otherwise(_OPEN)
        .alias("_status"),
        F.when(
            F.col("parent_id").isNotNull() & (F.col("parent_id") != F.col("account_id")),
            F.array(F.col("parent_id")),
        )
        .otherwise(F.array().cast("array<string>"))
        .alias("_chain"),
        F.col("parent_id").alias("_top"),
        F.lit(None).cast("string").alias("_entry"),
    )
    # whether a chain is still open rides on each level's own job (an observed metric)
    still_open = F.max((F.col("_status") == _OPEN).cast("int"))
    state, seen = checkpoint_observing(start, open=still_open)
    for _ in range(max_depth + 1):
        if not seen["open"]:  # 0, or None: no rows at all
            break
        state, seen = checkpoint_observing(_climb(state, edges, max_depth), open=still_open)
    status, chain = F.col("_status"), F.col("_chain")
    ancestors = (
        F.when(status == _ROOT, chain)
        .when(
            status == _ENTERS_CYCLE,
            F.slice(chain, F.lit(1), F.array_position(chain, F.col("_entry")).cast("int")),
        )
        .otherwise(F.array().cast("array<string>"))
    )
    parent = F.get(ancestors, 0)
    resolved = state.select(
        "tenant_id",
        "as_of_date",
        "account_id",
        parent.alias("parent_account_id"),
        F.when(parent.isNotNull(), F.col("declared_parent_source")).alias("parent_source"),
        ancestors.alias("ancestors"),
        F.size(ancestors).alias("depth"),
        status.isin(_CYCLE, _TOO_DEEP).alias("in_cycle"),
        "declared_parent_id",
    )
    if run_id is not None:
        resolved = resolved.withColumn("_run_id", F.lit(run_id))
    return resolved
