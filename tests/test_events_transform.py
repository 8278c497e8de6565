"""Validation, typing and exactly-once transforms of silver events (SPEC §3.1, §3.5, §4.1–4.3)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.config import load_settings
from jobs.transforms.events import (
    REJECT_REASONS,
    EventRules,
    parse_raw_events,
    rank_copies,
    typed_events,
)
from jobs.transforms.privacy import pseudonym_py

from .conftest import write_conf

KEY = b"unit-test-key-0123456789"
DELIVERY = dt.date(2026, 3, 10)
BRONZE_SCHEMA = T.StructType(
    [
        T.StructField("tenant_id", T.StringType()),
        T.StructField("delivery_date", T.DateType()),
        T.StructField("raw_line", T.StringType()),
        T.StructField("_raw_hash", T.StringType()),
        T.StructField("_source_file", T.StringType()),
        T.StructField("_run_id", T.StringType()),
    ]
)


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> EventRules:
    conf = write_conf(
        tmp_path_factory.mktemp("conf"),
        [("acme", "America/New_York"), ("globex", "Asia/Kolkata"), ("initech", "UTC")],
    )
    return EventRules.from_settings(load_settings(conf_dir=conf, warehouse="/unused"))


def event(**fields: object) -> dict:
    base = {
        "message_id": "m-1",
        "type": "track",
        "event": "report_viewed",
        "timestamp": "2026-03-09T15:00:00Z",
        "user_id": "u-1",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def bronze(spark: SparkSession, lines: list[str | dict], tenant: str = "acme"):
    rows = []
    for i, line in enumerate(lines):
        raw = line if isinstance(line, str) else json.dumps(line)
        rows.append((tenant, DELIVERY, raw, f"h{i:04d}", "file:/x.jsonl", "run_test"))
    return spark.createDataFrame(rows, BRONZE_SCHEMA)


def reasons(spark: SparkSession, rules: EventRules, lines: list, tenant: str = "acme") -> list:
    parsed = bronze(spark, lines, tenant).transform(parse_raw_events(rules))
    return [r.reject_reason for r in parsed.orderBy("_raw_hash").collect()]


REJECT_CASES = [
    ("not json at all", "invalid_json"),
    ('{"message_id": "m", "type": "track"', "invalid_json"),
    ("[1, 2, 3]", "invalid_json"),
    ('"just a string"', "invalid_json"),
    ('{"message_id":"a","message_id":"b","type":"page","timestamp":"2026-03-09T00:00:00Z",'
     '"user_id":"u"}', "invalid_json"),
    (event(message_id=...), "missing_field"),
    (event(message_id="  "), "missing_field"),
    (event(timestamp=None), "missing_field"),
    (event(type=...), "missing_field"),
    (event(event=...), "missing_field"),
    (event(user_id="undefined"), "missing_field"),
    (event(user_id=" NULL ", anonymous_id="[object Object]"), "missing_field"),
    (event(type="group", event=..., group_id=...), "missing_field"),
    (event(type="alias", event=..., previous_id=...), "missing_field"),
    (event(type="alias", event=..., previous_id="old", user_id=..., anonymous_id="a"),
     "missing_field"),
    (event(message_id=42), "invalid_type"),
    (event(user_id=12345), "invalid_type"),
    (event(properties="not an object"), "invalid_type"),
    (event(traits=[1]), "invalid_type"),
    (event(timestamp=1741532400), "invalid_type"),
    (event(schema_version="2"), "invalid_type"),
    (event(type="screen"), "invalid_type"),
    (event(schema_version=3), "unsupported_schema_version"),
    (event(schema_version=0), "unsupported_schema_version"),
    (event(message_id="m" * 129), "field_too_long"),
    (event(anonymous_id="a" * 200), "field_too_long"),
    (event(tenant_id="globex"), "tenant_mismatch"),
    (event(timestamp="yesterday"), "invalid_timestamp"),
    (event(timestamp="2026-13-45T00:00:00Z"), "invalid_timestamp"),
    (event(timestamp="2026-03-09"), "invalid_timestamp"),
    (event(timestamp="1999-12-31T23:59:59Z"), "timestamp_out_of_range"),
    (event(timestamp="2026-03-12T00:00:00Z"), "future_timestamp"),
    # skew correction moves the instant: received − (sent − timestamp) = 2026-03-12T00:00Z
    (event(timestamp="2026-03-11T00:00:00Z", sent_at="2026-03-11T00:00:00Z",
           received_at="2026-03-12T00:00:00Z"), "future_timestamp"),
]  # fmt: skip


@pytest.fixture(scope="module")
def case_reasons(spark, rules) -> list:
    """Reasons for every REJECT_CASES and ACCEPTED line, computed in one Spark job."""
    return reasons(spark, rules, [line for line, _ in REJECT_CASES] + ACCEPTED)


@pytest.mark.parametrize("i", range(len(REJECT_CASES)), ids=[r for _, r in REJECT_CASES])
def test_each_reject_reason(case_reasons, i) -> None:
    line, expected = REJECT_CASES[i]
    assert case_reasons[i] == expected, line


def test_every_reason_is_covered() -> None:
    covered = {r for _, r in REJECT_CASES} | {"unknown_tenant", "oversized_record"}
    assert covered == set(REJECT_REASONS)


def test_unknown_tenant_and_oversized(spark, rules) -> None:
    assert reasons(spark, rules, [event()], tenant="umbrella") == ["unknown_tenant"]
    huge = json.dumps(event(properties={"blob": "x" * (1024 * 1024)}))
    assert reasons(spark, rules, [huge]) == ["oversized_record"]


ACCEPTED = [
    event(),
    event(timestamp="2026-03-11T23:59:59.999999Z"),  # just before delivery + 2 days
    event(timestamp="2026-03-09T15:00:00+05:30"),
    event(timestamp="2026-03-09T15:00Z"),
    event(timestamp="2026-03-09 15:00:00"),
    event(user_id=..., anonymous_id="anon-1"),
    event(user_id="undefined", anonymous_id="anon-1"),
    event(type="page", event=...),
    event(type="identify", event=..., traits={"email": "A@b.co"}),
    event(type="group", event=..., group_id="acc-1", traits={"seats": 10}),
    event(type="alias", event=..., previous_id="old-id"),
    event(schema_version=2, properties={"feature_key": "x"}, context={"ip": "1.2.3.4"}),
    event(sent_at="garbage", received_at=17),  # clock fields that do not parse are ignored
    event(tenant_id="acme", extra_field={"nested": [1, {"deep": True}]}),
    "\ufeff" + json.dumps(event()),
    event(message_id="m" * 128),
]


@pytest.mark.parametrize("i", range(len(ACCEPTED)))
def test_valid_lines_are_accepted(case_reasons, i) -> None:
    assert case_reasons[len(REJECT_CASES) + i] is None, ACCEPTED[i]


def typed(spark, rules, lines, tenant="acme"):
    parsed = bronze(spark, lines, tenant).transform(parse_raw_events(rules))
    return parsed.where("reject_reason IS NULL").transform(typed_events(rules, KEY))


def test_taxonomy_v1_and_v2_map_to_one_canonical_event(spark, rules) -> None:
    lines = [
        event(message_id="v1", event="Report Viewed", schema_version=1,
              properties={"feature": "ignored"}),
        event(message_id="v2", event="report_viewed", schema_version=2),
        event(message_id="v1-as-v2", event="Report Viewed", schema_version=2),
        event(message_id="new", event="ai_assistant_opened", properties={"feature_key": "ai"}),
        event(message_id="new-v1", event="Canvas Zoomed", properties={"feature": "canvas"}),
        event(message_id="sys", event="Sync Completed"),
        event(message_id="pg", type="page", event=..., properties={"path": "/home"}),
        event(message_id="id", type="identify", event=...),
    ]  # fmt: skip
    got = typed(spark, rules, lines).select(
        "message_id", "event_name", "category", "feature_key", "is_activity", "page_path"
    )
    schema = (
        "message_id string, event_name string, category string, feature_key string, "
        "is_activity boolean, page_path string"
    )
    expected = spark.createDataFrame(
        [
            ("v1", "report_viewed", "core", "reports", True, None),
            ("v2", "report_viewed", "core", "reports", True, None),
            ("v1-as-v2", "report_viewed", "core", "reports", True, None),
            ("new", "ai_assistant_opened", "uncategorized", "ai", True, None),
            ("new-v1", "Canvas Zoomed", "uncategorized", "canvas", True, None),
            ("sys", "sync_completed", "system", "integrations", False, None),
            ("pg", "page_viewed", "page", None, True, "/home"),
            ("id", None, None, None, False, None),
        ],
        schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_event_time_skew_correction_and_local_dates(spark, rules) -> None:
    lines = [
        # device clock 2 h fast: received − (sent − timestamp) = 02:00Z → NY 21:00 the day before
        event(message_id="skew", timestamp="2026-03-09T03:30:00Z",
              sent_at="2026-03-09T05:30:00Z", received_at="2026-03-09T04:00:00Z"),
        event(message_id="offset", timestamp="2026-03-09T01:00:00+05:30"),  # 2026-03-08T19:30Z
        event(message_id="naive", timestamp="2026-03-08T04:59:59"),  # UTC → NY 23:59:59 EST
        event(message_id="nydst", timestamp="2026-03-09T04:00:00Z"),  # after DST: EDT, 00:00
    ]  # fmt: skip
    got = {r.message_id: r for r in typed(spark, rules, lines).collect()}
    assert got["skew"].event_ts == dt.datetime(2026, 3, 9, 2, 0)
    assert got["skew"].event_date == dt.date(2026, 3, 8)
    assert got["offset"].event_ts == dt.datetime(2026, 3, 8, 19, 30)
    assert got["naive"].event_date == dt.date(2026, 3, 7)
    assert got["nydst"].event_date == dt.date(2026, 3, 9)  # 2026-03-08 is the DST switch
    kolkata = typed(spark, rules, [event(timestamp="2026-03-09T18:30:00Z")], tenant="globex")
    assert kolkata.first().event_date == dt.date(2026, 3, 10)  # +05:30 → local midnight


def test_pii_is_pseudonymised_with_the_tenant_scoped_key(spark, rules) -> None:
    line = event(
        type="identify", event=..., traits={"email": "  Bob@Example.COM ", "name": "Bob"},
        context={"ip": "203.0.113.9"},
    )  # fmt: skip
    acme = typed(spark, rules, [line], tenant="acme").first()
    globex = typed(spark, rules, [line], tenant="globex").first()
    assert acme.email_hash == pseudonym_py(KEY, "email", "acme", "bob@example.com")
    assert acme.email_domain == "example.com"
    assert acme.ip_hash == pseudonym_py(KEY, "ip", "acme", "203.0.113.9")
    assert acme.name_hash == pseudonym_py(KEY, "name", "acme", "Bob")
    assert acme.email_hash != globex.email_hash
    assert not any("203.0.113.9" in str(v) or "Example" in str(v) for v in acme)


def test_blocked_identifiers_become_null(spark, rules) -> None:
    row = typed(spark, rules, [event(user_id="u-9", anonymous_id=" Undefined ")]).first()
    assert (row.user_id, row.anonymous_id) == ("u-9", None)


def test_survivor_is_independent_of_order(spark) -> None:
    schema = (
        "tenant_id string, message_id string, delivery_date date, _raw_hash string, "
        "_source_file string"
    )
    rows = [
        ("acme", "m1", dt.date(2026, 3, 5), "bbb", "f1"),
        ("acme", "m1", dt.date(2026, 3, 3), "ccc", "f2"),
        ("acme", "m1", dt.date(2026, 3, 3), "aaa", "f3"),
        ("globex", "m1", dt.date(2026, 3, 9), "zzz", "f4"),
    ]
    expected = spark.createDataFrame(
        [(*r, s) for r, s in zip(rows, [False, False, True, True], strict=True)],
        schema + ", is_survivor boolean",
    )
    for ordering in (rows, list(reversed(rows)), rows[2:] + rows[:2]):
        got = spark.createDataFrame(ordering, schema).transform(rank_copies)
        assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_hmac_in_spark_matches_python(spark) -> None:
    from jobs.transforms.privacy import hmac_sha256_hex

    long_key = b"k" * 100  # longer than the block: hashed first, as RFC 2104 says
    for key in (KEY, long_key):
        got = spark.range(1).select(hmac_sha256_hex(key, F.lit("hello ✓"))).first()[0]
        import hashlib
        import hmac

        assert got == hmac.new(key, "hello ✓".encode(), hashlib.sha256).hexdigest()
