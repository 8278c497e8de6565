"""Hostile input (issue 8 §2): mutated lines never crash a run, and every line ends in
silver.events, silver.events_rejected (with a reason) or silver.events_duplicates; a landed
file that cannot be read is a file-level reject and the rest of the delivery goes on.

Two layers of attack:
- a seeded mutation fuzzer (`fuzz_lines`) turns valid tracking calls into 10,000 hostile
  lines — invalid UTF-8, deep nesting, NaN/Infinity, huge numbers, duplicate keys, wrong
  types in every field, control characters, BOMs, CRLF, 1 MiB lines, truncation, byte
  flips — written as plain and gzip files beside a truncated gzip and a file that is not
  gzip at all, and run through bronze and silver; each line is followed by its hash;
- a Hypothesis property over the parse itself: any JSON-ish text gets exactly one of the
  documented reject reasons, or is a valid event with an event time.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from jobs.bronze import gzip_problem
from jobs.pipeline import execute
from jobs.transforms.events import REJECT_REASONS, EventRules, parse_raw_events

from .conftest import TEST_TENANTS, read

DAY = "2026-03-05"
FUZZED_LINES = 10_000
FIELDS = ("message_id", "type", "event", "timestamp", "user_id", "anonymous_id", "group_id",
          "previous_id", "properties", "traits", "context", "schema_version", "tenant_id",
          "sent_at", "received_at")  # fmt: skip
WRONG_VALUES = (0, -1, 1.5, 10**30, True, False, None, [], ["x"], {}, {"a": 1}, "", " ", "ü")


def valid_calls(n: int, rng: random.Random) -> list[dict]:
    """`n` valid tracking calls of every type for tenant acme on DAY."""
    calls = []
    for i in range(n):
        base = {"message_id": f"fz-{i}", "timestamp": f"{DAY}T{rng.randrange(24):02d}:"
                f"{rng.randrange(60):02d}:00Z", "user_id": f"u{rng.randrange(40)}",
                "anonymous_id": f"a{rng.randrange(60)}", "context": {"ip": "10.0.0.1"}}  # fmt: skip
        kind = rng.choice(("track", "track", "page", "identify", "group", "alias"))
        base["type"] = kind
        if kind == "track":
            base |= {"event": "Report Viewed", "properties": {"n": rng.randrange(100)}}
        elif kind == "page":
            base |= {"properties": {"path": "/home"}}
        elif kind == "identify":
            base |= {"traits": {"email": f"p{rng.randrange(40)}@example.com", "name": "P Q"}}
        elif kind == "group":
            base |= {"group_id": f"acct-{rng.randrange(5)}", "traits": {"name": "A"}}
        else:
            base |= {"previous_id": f"a{rng.randrange(60)}"}
        calls.append(base)
    return calls


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _mutate(call: dict, rng: random.Random) -> bytes:
    """One hostile line (no line terminator) from a valid call."""
    kind = rng.randrange(16)
    doc = dict(call)
    if kind == 0:  # wrong type in any field
        doc[rng.choice(FIELDS)] = rng.choice(WRONG_VALUES)
    elif kind == 1:  # deeply nested JSON
        text = json.dumps(doc)
        return (
            text[:-1] + ', "properties": ' + _nested(rng.choice((50, 999, 3000))) + "}"
        ).encode()
    elif kind == 2:  # NaN / Infinity / huge numbers, as JSON literals Python would not write
        value = rng.choice(("NaN", "Infinity", "-Infinity", "1e400", "-1e400",
                            "123456789012345678901234567890", "1" * 400))  # fmt: skip
        field = rng.choice(("schema_version", "properties", "timestamp", "user_id"))
        return json.dumps({**doc, field: "@@"}).replace('"@@"', value).encode()
    elif kind == 3:  # duplicate keys
        field = rng.choice(FIELDS[:6])
        return (json.dumps(doc)[:-1] + f', "{field}": "other"' + "}").encode()
    elif kind == 4:  # invalid UTF-8 inside the line
        raw = json.dumps(doc).encode()
        at = rng.randrange(len(raw))
        bad = rng.choice((b"\x80", b"\xc3", b"\xff\xfe", b"\xed\xa0\x80", b"\xf8\x88\x80\x80"))
        return raw[:at] + bad + raw[at:]
    elif kind == 5:  # control characters, raw, inside a string value
        ctrl = "".join(chr(rng.randrange(32)) for _ in range(3)).replace("\n", "\x01")
        ctrl = ctrl.replace("\r", "\x02")
        raw = json.dumps(doc, ensure_ascii=False)
        return raw.replace('"fz-', '"fz-' + ctrl, 1).encode()
    elif kind == 6:  # BOMs: leading, and inside
        raw = json.dumps(doc)
        return ("\ufeff" + raw if rng.random() < 0.5 else raw.replace(",", ",\ufeff", 1)).encode()
    elif kind == 7:  # truncated
        raw = json.dumps(doc).encode()
        return raw[: rng.randrange(len(raw))]
    elif kind == 8:  # a random byte flipped
        raw = bytearray(json.dumps(doc).encode())
        raw[rng.randrange(len(raw))] = rng.choice((0x00, 0x22, 0x5C, 0x7B, 0x7D, 0x2C, 0x80))
        return bytes(raw).replace(b"\n", b" ").replace(b"\r", b" ")
    elif kind == 9:  # not an object
        return rng.choice((b"null", b"[]", b"{}", b'"a string"', b"42", b"true", b"[{}]",
                           b"{{}}", b"\x00", b"\\u0000"))  # fmt: skip
    elif kind == 10:  # the JSON says another tenant, or a look-alike of it
        doc["tenant_id"] = rng.choice(("globex", "acm\u0435", "ACME", "acme ", "x' OR '1'='1"))
    elif kind == 11:  # absurd timestamps
        doc["timestamp"] = rng.choice(("2026-02-30T10:00:00Z", "9999-12-31T23:59:59Z",
                                       "0001-01-01T00:00:00Z", "-0001-01-01T00:00:00Z",
                                       "2026-03-05T25:61:61Z", "1741000000", "yesterday",
                                       "2026-03-05T10:00:00+99:99"))  # fmt: skip
    elif kind == 12:  # blocked or over-long identifiers
        doc[rng.choice(("user_id", "anonymous_id", "message_id"))] = rng.choice(
            ("null", "undefined", " ", "0", "x" * 500)
        )
    elif kind == 13:  # unknown type, unknown event name, missing fields
        doc.pop(rng.choice(("message_id", "type", "timestamp", "event", "user_id")), None)
        if rng.random() < 0.3:
            doc["type"] = rng.choice(("Track", "screen", "", "track\x00"))
    # 14, 15: left valid (the valid path must still work beside the hostile lines)
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()


def fuzz_lines(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    calls = valid_calls(n, rng)
    return [_mutate(c, rng) for c in calls]


# What Hadoop's line reader does: split on \n, \r\n and \r; Spark keeps the bytes as they
# are, so a line's SHA-256 here equals bronze's `_raw_hash`.
LINE_BREAK = re.compile(rb"\r\n|\r|\n")
BLANK = re.compile(rb"[ \t\n\x0b\f\r]*")


def landed_lines(data: bytes) -> list[bytes]:
    lines = LINE_BREAK.split(data)
    if lines and lines[-1] == b"":
        lines.pop()
    return [line for line in lines if not BLANK.fullmatch(line)]


@pytest.mark.slow
def test_a_fuzzed_delivery_is_accounted_for_line_by_line(spark, make_settings, tmp_path):
    lines = fuzz_lines(FUZZED_LINES, seed=20261205)
    pad = {"pad": "x" * (1 << 20)}  # over max_line_bytes: oversized_record
    huge = [json.dumps({"message_id": f"big-{i}", "type": "track", "event": "Report Viewed",
                        "timestamp": f"{DAY}T10:00:00Z", "user_id": "u1",
                        "properties": pad}).encode() for i in range(3)]  # fmt: skip
    folder = tmp_path / "landing" / "events" / "tenant_id=acme" / f"delivery_date={DAY}"
    folder.mkdir(parents=True)
    half = len(lines) // 2
    # plain, with LF and CRLF terminators mixed; gzip; 1 MiB lines
    plain = b"".join(
        line + (b"\r\n" if i % 3 == 0 else b"\n") for i, line in enumerate(lines[:half])
    )
    files = {
        "fuzz-0.jsonl": plain,
        "fuzz-1.jsonl.gz": gzip.compress(b"\n".join(lines[half:]) + b"\n"),
        "huge.jsonl": b"\n".join(huge),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    good = gzip.compress(b'{"message_id": "lost", "type": "page", "user_id": "u1"}\n' * 50)
    (folder / "broken-truncated.jsonl.gz").write_bytes(good[: len(good) // 2])
    (folder / "broken-not-gzip.jsonl.gz").write_bytes(b'{"message_id": "m"}\n')
    other = tmp_path / "landing" / "events" / "tenant_id=globex" / f"delivery_date={DAY}"
    other.mkdir(parents=True)
    (other / "part-0.jsonl").write_text(json.dumps(valid_calls(1, random.Random(1))[0]) + "\n")

    settings = make_settings(tmp_path / "landing", TEST_TENANTS)
    result = execute(settings, "run", [dt.date.fromisoformat(DAY)], None, spark=spark,
                     through="silver")  # fmt: skip
    assert result.status == "succeeded", result.error

    # the two unreadable files are file-level rejects; nothing of them reached bronze
    rejected_files = read(spark, settings, "ops.rejected_files").collect()
    assert sorted(Path(r.file).name for r in rejected_files) == [
        "broken-not-gzip.jsonl.gz", "broken-truncated.jsonl.gz"]  # fmt: skip
    assert all(r.reason and r.run_id == result.run_id for r in rejected_files)

    # every line Spark can read is in bronze, byte for byte (by hash) ...
    expected = Counter(
        hashlib.sha256(line).hexdigest()
        for name, data in files.items()
        for line in landed_lines(gzip.decompress(data) if name.endswith(".gz") else data)
    )
    assert sum(expected.values()) >= FUZZED_LINES
    bronze = read(spark, settings, "bronze.events").where("tenant_id = 'acme'")
    got = Counter({r._raw_hash: r.n for r in bronze.groupBy("_raw_hash").agg(
        F.count(F.lit(1)).alias("n")).collect()})  # fmt: skip
    assert got == expected

    # ... and each bronze line is an event, a duplicate or a reject with a known reason
    outcome = (
        read(spark, settings, "silver.events").select("tenant_id", "_raw_hash")
        .unionByName(read(spark, settings, "silver.events_duplicates")
                     .select("tenant_id", "_raw_hash"))
        .unionByName(read(spark, settings, "silver.events_rejected")
                     .where(F.col("reason").isNotNull()).select("tenant_id", "_raw_hash"))
    ).where("tenant_id = 'acme'")  # fmt: skip
    ended = Counter({r._raw_hash: r.n for r in outcome.groupBy("_raw_hash").agg(
        F.count(F.lit(1)).alias("n")).collect()})  # fmt: skip
    assert ended == expected
    reasons = {r.reason for r in read(spark, settings, "silver.events_rejected").select(
        "reason").distinct().collect()}  # fmt: skip
    assert reasons <= set(REJECT_REASONS)
    assert {"invalid_json", "invalid_type", "oversized_record", "tenant_mismatch"} <= reasons
    (acme,) = [s for s in result.stats if s.tenant_id == "acme"]
    assert acme.is_conserved and acme.accepted > 0
    assert [s.accepted for s in result.stats if s.tenant_id == "globex"] == [1]


def test_gzip_problems_are_named() -> None:
    good = gzip.compress(b"a\nb\n")
    assert gzip_problem(good) is None
    assert gzip_problem(good + gzip.compress(b"c\n")) is None  # concatenated members
    assert "EOFError" in gzip_problem(good[:-6])
    assert gzip_problem(b"plain text") is not None
    corrupt = bytearray(good)
    corrupt[-8] ^= 0xFF  # the CRC
    assert gzip_problem(bytes(corrupt)) is not None


# --- the parse as a property -----------------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                         st.text(max_size=12))  # fmt: skip
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
CALL_VALUES = {
    "message_id": st.one_of(st.text(max_size=8), JSON_VALUES),
    "type": st.one_of(
        st.sampled_from(("track", "page", "identify", "group", "alias")), JSON_VALUES
    ),
    "event": st.one_of(st.just("Report Viewed"), JSON_VALUES),
    "timestamp": st.one_of(st.just(f"{DAY}T10:00:00Z"), st.text(max_size=25), JSON_VALUES),
    "user_id": st.one_of(st.text(max_size=8), JSON_VALUES),
    "anonymous_id": st.one_of(st.text(max_size=8), JSON_VALUES),
    "group_id": JSON_VALUES,
    "previous_id": JSON_VALUES,
    "properties": JSON_VALUES,
    "traits": st.one_of(st.fixed_dictionaries({"email": st.text(max_size=10)}), JSON_VALUES),
    "context": JSON_VALUES,
    "schema_version": JSON_VALUES,
    "tenant_id": st.one_of(st.just("acme"), JSON_VALUES),
}
CALLS = st.fixed_dictionaries({}, optional=CALL_VALUES).map(json.dumps)
LINES = st.one_of(CALLS, CALLS.map(lambda s: s[: len(s) // 2]), st.text(max_size=40),
                  JSON_VALUES.map(json.dumps))  # fmt: skip


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(LINES, min_size=1, max_size=40))
def test_any_text_gets_one_documented_reason_or_is_a_valid_event(spark, lines, make_settings):
    rules = EventRules.from_settings(make_settings(tenants=TEST_TENANTS))
    bronze = spark.createDataFrame(
        [("acme", dt.date.fromisoformat(DAY), line) for line in lines],
        "tenant_id string, delivery_date date, raw_line string",
    )
    rows = (
        bronze.transform(parse_raw_events(rules))
        .select("reject_reason", "event_ts", "message_id", "type")
        .collect()
    )
    assert len(rows) == len(lines)
    for line, row in zip(lines, rows, strict=True):
        if row.reject_reason is None:
            assert row.event_ts is not None and row.message_id and row.type, line
        else:
            assert row.reject_reason in REJECT_REASONS, line


def test_nesting_depth_skips_string_literals_and_takes_the_deepest_branch(spark) -> None:
    from jobs.transforms.events import nesting_depth, too_deep

    texts = {
        '{"a": 1}': 1,
        '{"a": [1, {"b": []}], "c": {}}': 4,
        '{"a": "{[{[{[ not nesting ]}]}]}", "b": "say \\"{{\\" twice"}': 1,
        "[[[]], [[[[]]]]]": 5,
        '{"a":' * 70 + "1" + "}" * 70: 70,
        "{" * 80: 80,  # unbalanced: the deepest reached still counts
        "no json at all": 0,
    }
    df = spark.createDataFrame([(t,) for t in texts], "text string")
    got = df.select("text", nesting_depth(F.col("text")).alias("d"),
                    too_deep(F.col("text"), 64).alias("deep")).collect()  # fmt: skip
    assert {r.text: r.d for r in got} == texts
    assert {r.text for r in got if r.deep} == {t for t, d in texts.items() if d > 64}
