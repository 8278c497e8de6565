"""Raw tracking lines → validated, typed, taxonomy-mapped events (SPEC §3.1, §3.5, §4.1–4.3).

Everything here is a pure DataFrame → DataFrame (or Column) function. Parsing goes through
Spark's VARIANT (`try_parse_json`) so each field's JSON type is known exactly: a
`message_id` sent as the number 42 is an `invalid_type`, not the string "42"; duplicate
keys, truncated objects, arrays and bare strings are `invalid_json`.

A line gets exactly one reject reason, the first that applies in `REJECT_REASONS` order
(SPEC: a line with several faults may carry any one of its reasons).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.config import Settings
from jobs.transforms.privacy import email_domain, normalize_email, pseudonym

REJECT_REASONS = (
    "unknown_tenant",
    "oversized_record",
    "invalid_json",
    "invalid_type",
    "unsupported_schema_version",
    "missing_field",
    "field_too_long",
    "tenant_mismatch",
    "invalid_timestamp",
    "timestamp_out_of_range",
    "future_timestamp",
)
EVENT_TYPES = ("track", "page", "identify", "group", "alias")
ID_FIELDS = ("message_id", "user_id", "anonymous_id", "event", "group_id", "previous_id")
OBJECT_FIELDS = ("properties", "traits", "context")
ISO_TIMESTAMP = (
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
    r"([Zz]|[+-]\d{2}(:?\d{2})?)?$"
)
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INT", "BIGINT")


@dataclass(frozen=True)
class EventRules:
    """What the event transforms need from configuration, as plain values."""

    timezones: Mapping[str, str]  # registered tenant → IANA zone
    taxonomy: Mapping[str, tuple[str, str, str | None]]  # any name → (canonical, category, fk)
    blocked_ids: tuple[str, ...]
    max_line_bytes: int
    max_field_chars: int
    max_json_depth: int
    min_event_date: str
    future_days: int
    schema_versions: tuple[int, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> EventRules:
        taxonomy: dict[str, tuple[str, str, str | None]] = {}
        for e in settings.taxonomy.events:
            taxonomy[e.name] = taxonomy[e.v1_name] = (e.name, e.category, e.feature_key)
        v = settings.pipeline.validation
        return cls(
            timezones={t.id: t.timezone for t in settings.tenants.tenants},
            taxonomy=taxonomy,
            blocked_ids=settings.pipeline.identity.blocked_identifier_values,
            max_line_bytes=v.max_line_bytes,
            max_field_chars=v.max_field_chars,
            max_json_depth=v.max_json_depth,
            min_event_date=v.min_event_date,
            future_days=v.future_days,
            schema_versions=v.supported_schema_versions,
        )


# --------------------------------------------------------------------------- column helpers


def _map_literal(mapping: Mapping[str, object]) -> Column:
    items: list[Column] = []
    for key in sorted(mapping):
        items += [F.lit(key), F.lit(mapping[key])]
    return F.create_map(*items) if items else F.create_map().cast("map<string,string>")


def tenant_timezone(timezones: Mapping[str, str], tenant: Column | None = None) -> Column:
    """The tenant's IANA time zone from the registry (UTC for a tenant not in it)."""
    tenant = F.col("tenant_id") if tenant is None else tenant
    return F.coalesce(F.element_at(_map_literal(timezones), tenant), F.lit("UTC"))


def local_date(ts: Column, timezones: Mapping[str, str]) -> Column:
    """The date of instant `ts` on the row's tenant's clock."""
    return F.to_date(F.from_utc_timestamp(ts, tenant_timezone(timezones)))


def json_type(doc: Column, field: str) -> Column:
    """JSON type of `doc.field`: NULL when absent, 'VOID' for JSON null, 'OBJECT' or 'ARRAY'
    for containers, else the scalar's type, e.g. 'STRING' or 'BIGINT'.

    Shallow: containers are recognised by a cast of their top level, so `schema_of_variant`
    (which walks every nested value, recursively) only ever sees a scalar.
    """
    path = f"$.{field}"
    value = F.variant_get(doc, path, "variant")
    return (
        F.when(F.try_variant_get(doc, path, "map<string,variant>").isNotNull(), F.lit("OBJECT"))
        .when(F.try_variant_get(doc, path, "array<variant>").isNotNull(), F.lit("ARRAY"))
        .otherwise(F.schema_of_variant(value))
    )


def nesting_depth(text: Column) -> Column:
    """Deepest nesting of objects and arrays in a JSON text (string literals skipped), in
    one pass over its brackets: a fold of +1 / −1 keeping the running maximum."""
    no_strings = F.regexp_replace(text, r'"(?:[^"\\]++|\\.)*+"', "")
    brackets = F.regexp_replace(no_strings, r"[^\[\]{}]", "")
    steps = F.transform(F.split(brackets, ""), lambda c: F.when(c.isin("{", "["), 1).otherwise(-1))
    depth = F.aggregate(
        steps,
        F.struct(F.lit(0).alias("d"), F.lit(0).alias("m")),
        lambda acc, step: F.struct(
            (acc["d"] + step).alias("d"), F.greatest(acc["m"], acc["d"] + step).alias("m")
        ),
    )
    return depth["m"]


def too_deep(text: Column, max_depth: int) -> Column:
    """Nested deeper than `max_depth`. Fast path: a line with at most `max_depth` opening
    brackets cannot be; only the others (rare) are folded by `nesting_depth`."""
    opens = F.length(text) - F.length(F.regexp_replace(text, r"[\[{]", ""))
    return F.when(opens > max_depth, nesting_depth(text) > max_depth).otherwise(F.lit(False))


def scalar_type(doc: Column, field: str) -> Column:
    """JSON type of `doc.field`, for a field meant to hold a scalar: NULL when absent, 'VOID'
    for JSON null, else `schema_of_variant`'s name, e.g. 'STRING', 'BIGINT', or
    'OBJECT<…>' / 'ARRAY<…>' for a container.

    One probe instead of `json_type`'s three: a container here is a fault and rare, and the
    walk it costs is bounded by the line-size and nesting checks done before parsing.
    """
    return F.schema_of_variant(F.variant_get(doc, f"$.{field}", "variant"))


def string_if(type_col: Column, doc: Column, field: str) -> Column:
    """`doc.field` as a string when `type_col` (its JSON type) says it is one, else NULL."""
    return F.when(type_col == "STRING", F.variant_get(doc, f"$.{field}", "string"))


def json_string(doc: Column, field: str) -> Column:
    """`doc.field` when it is a JSON string, else NULL."""
    return string_if(scalar_type(doc, field), doc, field)


def is_json_object(doc: Column, field: str) -> Column:
    """True when `doc.field` is absent, JSON null or an object; False for any other type."""
    return F.coalesce(json_type(doc, field).isin("VOID", "OBJECT"), F.lit(True))


def is_present(type_col: Column) -> Column:
    return type_col.isNotNull() & (type_col != "VOID")


def parse_timestamp(text: Column) -> Column:
    """ISO-8601 instant → TIMESTAMP (UTC); no offset means UTC; NULL when not parseable.

    Requires a full date and time (seconds optional); `hh:mm` gets `:00` added because
    Spark's cast wants seconds.
    """
    with_seconds = F.regexp_replace(
        text, r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})([Zz+-].*)?$", "$1:00$2"
    )
    return F.when(text.rlike(ISO_TIMESTAMP), F.try_to_timestamp(with_seconds))


def blocked_to_null(value: Column, blocked: Sequence[str]) -> Column:
    """Identifier values SDKs emit by mistake ('undefined', 'null', …) are absent (§4.4)."""
    return F.when(~F.lower(F.trim(value)).isin(list(blocked)), value)


# --------------------------------------------------------------------------- validation


def parse_raw_events(rules: EventRules) -> Callable[[DataFrame], DataFrame]:
    """Add `doc` (VARIANT), typed fields, `event_ts` and `reject_reason` to bronze rows.

    Input columns: tenant_id, delivery_date, raw_line (+ lineage, kept as is).
    """

    def transform(bronze: DataFrame) -> DataFrame:
        text = F.regexp_replace(F.col("raw_line"), "^\ufeff", "")
        oversized = F.octet_length(F.col("raw_line")) > rules.max_line_bytes
        # Deep nesting is refused before parsing: walking a deep value recursively (here or
        # in any later reader) can overflow a task thread's stack and kill the executor.
        deep = ~oversized & too_deep(text, rules.max_json_depth)
        df = bronze.withColumn("doc", F.when(~oversized & ~deep, F.try_parse_json(text)))
        scalars = (*ID_FIELDS, "type", "timestamp", "schema_version", "tenant_id")
        df = df.select(
            "*",
            *(scalar_type(F.col("doc"), f).alias(f"_t_{f}") for f in scalars),
            *(is_json_object(F.col("doc"), f).alias(f"_o_{f}") for f in OBJECT_FIELDS),
        )
        t = {f: F.col(f"_t_{f}") for f in scalars}

        strings = (*ID_FIELDS, "type", "timestamp", "tenant_id")
        df = df.select(
            "*",
            *(string_if(t[f], F.col("doc"), f).alias(f"_s_{f}") for f in strings),
            F.when(t["schema_version"].isin(*_INTEGER_TYPES),
                   F.variant_get(F.col("doc"), "$.schema_version", "bigint"))
            .alias("_schema_version"),
            json_string(F.col("doc"), "sent_at").alias("_s_sent_at"),
            json_string(F.col("doc"), "received_at").alias("_s_received_at"),
        )  # fmt: skip
        v = {f: F.col(f"_s_{f}") for f in strings}
        user_id = blocked_to_null(v["user_id"], rules.blocked_ids)
        anonymous_id = blocked_to_null(v["anonymous_id"], rules.blocked_ids)
        previous_id = blocked_to_null(v["previous_id"], rules.blocked_ids)

        def nonempty(c: Column) -> Column:
            return c.isNotNull() & (F.trim(c) != "")

        wrong_type = F.lit(False)
        for f in (*ID_FIELDS, "type", "timestamp", "tenant_id"):
            wrong_type = wrong_type | (is_present(t[f]) & (t[f] != "STRING"))
        for f in OBJECT_FIELDS:
            wrong_type = wrong_type | ~F.col(f"_o_{f}")
        wrong_type = wrong_type | (
            is_present(t["schema_version"]) & ~t["schema_version"].isin(*_INTEGER_TYPES)
        )
        wrong_type = wrong_type | (nonempty(v["type"]) & ~v["type"].isin(*EVENT_TYPES))

        typ = v["type"]
        missing = (
            ~nonempty(v["message_id"])
            | ~nonempty(typ)
            | ~nonempty(v["timestamp"])
            | (~nonempty(user_id) & ~nonempty(anonymous_id))
            | ((typ == "track") & ~nonempty(v["event"]))
            | ((typ == "group") & ~nonempty(v["group_id"]))
            | ((typ == "alias") & (~nonempty(previous_id) | ~nonempty(user_id)))
        )
        too_long = F.lit(False)
        for f in ID_FIELDS:
            too_long = too_long | (F.char_length(v[f]) > rules.max_field_chars)

        ts = parse_timestamp(v["timestamp"])
        sent, received = (
            parse_timestamp(F.col("_s_sent_at")),
            parse_timestamp(F.col("_s_received_at")),
        )
        # event_ts = received_at − (sent_at − timestamp), in microseconds to stay exact.
        ts_micros = F.when(
            sent.isNotNull() & received.isNotNull(),
            F.unix_micros(received) - (F.unix_micros(sent) - F.unix_micros(ts)),
        ).otherwise(F.unix_micros(ts))
        min_micros = F.unix_micros(F.to_timestamp(F.lit(rules.min_event_date)))
        future_micros = F.unix_micros(
            F.to_timestamp(F.date_add(F.col("delivery_date"), rules.future_days))
        )
        registered = F.col("tenant_id").isin(*sorted(rules.timezones))
        version = F.coalesce(F.col("_schema_version"), F.lit(1))

        reason = (
            F.when(~registered, "unknown_tenant")
            .when(oversized, "oversized_record")
            .when(F.col("doc").isNull() | ~text.rlike(r"^\s*\{"), "invalid_json")
            .when(wrong_type, "invalid_type")
            .when(~version.isin(*rules.schema_versions), "unsupported_schema_version")
            .when(missing, "missing_field")
            .when(too_long, "field_too_long")
            .when(nonempty(v["tenant_id"]) & (v["tenant_id"] != F.col("tenant_id")),
                  "tenant_mismatch")
            .when(ts.isNull(), "invalid_timestamp")
            .when(ts_micros < min_micros, "timestamp_out_of_range")
            .when(ts_micros >= future_micros, "future_timestamp")
        )  # fmt: skip
        return df.select(
            *bronze.columns,
            "doc",
            reason.alias("reject_reason"),
            v["message_id"].alias("message_id"),
            typ.alias("type"),
            F.when(reason.isNull(), F.timestamp_micros(ts_micros)).alias("event_ts"),
            version.alias("schema_version"),
            user_id.alias("user_id"),
            anonymous_id.alias("anonymous_id"),
            v["event"].alias("event_raw_name"),
            v["group_id"].alias("group_id"),
            previous_id.alias("previous_id"),
        )

    return transform


def rejected_rows(parsed: DataFrame) -> DataFrame:
    """One row per rejected line: reason next to the raw line and its lineage (SPEC §5)."""
    return parsed.where(F.col("reject_reason").isNotNull()).select(
        "tenant_id",
        "delivery_date",
        F.col("reject_reason").alias("reason"),
        "message_id",
        "raw_line",
        "_source_file",
        "_raw_hash",
        "_run_id",
    )


# --------------------------------------------------------------------------- typed events


def _obj_int(doc: Column, path: str) -> Column:
    return F.when(
        scalar_type(doc, path).isin(*_INTEGER_TYPES), F.variant_get(doc, f"$.{path}", "bigint")
    )


def typed_events(rules: EventRules, pii_key: bytes) -> Callable[[DataFrame], DataFrame]:
    """Valid parsed rows → silver event columns (taxonomy, local date, pseudonymised PII).

    Persist the output of `parse_raw_events` before filtering it and calling this: without
    that cut, the optimizer pushes the reject filter below the projection and inlines the
    JSON parse into every field expression (one parse per field instead of one per line).

    Email, name and IP never leave this function in clear: they become tenant-scoped keyed
    pseudonyms (`email_hash`, `name_hash`, `ip_hash`), with the email domain kept apart.
    """

    def transform(parsed: DataFrame) -> DataFrame:
        doc = F.col("doc")
        tenant = F.col("tenant_id")
        tz = F.element_at(_map_literal(rules.timezones), tenant)
        canonical = F.element_at(
            _map_literal({k: v[0] for k, v in rules.taxonomy.items()}), F.col("event_raw_name")
        )
        category = F.element_at(
            _map_literal({k: v[1] for k, v in rules.taxonomy.items()}), F.col("event_raw_name")
        )
        mapped_fk = F.element_at(
            _map_literal({k: v[2] for k, v in rules.taxonomy.items() if v[2]}),
            F.col("event_raw_name"),
        )
        is_track = F.col("type") == "track"
        is_page = F.col("type") == "page"
        prop_fk = F.coalesce(
            json_string(doc, "properties.feature_key"), json_string(doc, "properties.feature")
        )
        event_category = F.when(is_page, "page").when(
            is_track, F.coalesce(category, F.lit("uncategorized"))
        )
        email = normalize_email(json_string(doc, "traits.email"))
        props = F.variant_get(doc, "$.properties", "variant")
        return parsed.select(
            tenant,
            F.to_date(F.from_utc_timestamp(F.col("event_ts"), tz)).alias("event_date"),
            "message_id",
            "type",
            F.when(is_track, F.coalesce(canonical, F.col("event_raw_name")))
            .when(is_page, F.lit("page_viewed"))
            .alias("event_name"),
            F.col("event_raw_name"),
            event_category.alias("category"),
            F.when(is_track, F.coalesce(mapped_fk, prop_fk)).alias("feature_key"),
            ((is_track | is_page) & (event_category != "system")).alias("is_activity"),
            "event_ts",
            "schema_version",
            "user_id",
            "anonymous_id",
            "group_id",
            "previous_id",
            F.when(is_present(json_type(doc, "properties")), F.to_json(props)).alias(
                "properties_json"
            ),
            json_string(doc, "properties.path").alias("page_path"),
            json_string(doc, "properties.flag_key").alias("flag_key"),
            json_string(doc, "properties.variant").alias("variant"),
            pseudonym(pii_key, "email", tenant, email).alias("email_hash"),
            email_domain(email).alias("email_domain"),
            pseudonym(pii_key, "name", tenant, json_string(doc, "traits.name")).alias("name_hash"),
            json_string(doc, "traits.role").alias("role"),
            json_string(doc, "traits.department").alias("department"),
            F.when(F.col("type") == "group", json_string(doc, "traits.name")).alias("group_name"),
            json_string(doc, "traits.plan").alias("group_plan"),
            json_string(doc, "traits.tier").alias("group_tier"),
            json_string(doc, "traits.industry").alias("group_industry"),
            _obj_int(doc, "traits.employees").alias("group_employees"),
            _obj_int(doc, "traits.seats").alias("group_seats"),
            json_string(doc, "traits.parent_group_id").alias("parent_group_id"),
            pseudonym(pii_key, "ip", tenant, json_string(doc, "context.ip")).alias("ip_hash"),
            json_string(doc, "context.user_agent").alias("user_agent"),
            json_string(doc, "context.locale").alias("locale"),
            json_string(doc, "context.app_version").alias("app_version"),
            json_string(doc, "context.device_id").alias("device_id"),
            "delivery_date",
            "_source_file",
            "_raw_hash",
            "_run_id",
        )

    return transform


# --------------------------------------------------------------------------- exactly once


def rank_copies(events: DataFrame) -> DataFrame:
    """Mark which copy of each (tenant_id, message_id) survives: `is_survivor`.

    The survivor is the copy from the earliest delivery, ties broken by the raw line's hash
    and then its source file: a function of the set of copies, never of processing order.
    """
    w = Window.partitionBy("tenant_id", "message_id").orderBy(
        "delivery_date", "_raw_hash", "_source_file"
    )
    return events.withColumn("is_survivor", F.row_number().over(w) == 1)
