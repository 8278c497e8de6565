"""Tests of the synthetic landing generator (`jobs.generate`); no Spark.

The module-scoped fixture generates the `tiny` preset for 3 days once; the checks read it
back with a small reference implementation of the SPEC §3.1 / §4.1 rules.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.generate import (
    TENANT_CATALOG,
    UNREGISTERED_TENANT,
    GenerateSummary,
    generate_landing,
    render_tenants_yaml,
)
from jobs.generate.faults import REASONS
from jobs.generate.vocab import TAXONOMY

ROOT = Path(__file__).resolve().parents[1]
SEED = 11
DAYS = 3
START = date(2026, 3, 5)
LAYOUT = re.compile(
    r"^(events|accounts|subscriptions|tickets)/tenant_id=([a-z0-9][a-z0-9_-]{0,62})/"
    r"delivery_date=(\d{4}-\d{2}-\d{2})/([A-Za-z0-9_.-]+\.jsonl(?:\.gz)?)$"
)
BLOCKED = {
    "",
    "null",
    "undefined",
    "none",
    "nan",
    "0",
    "-1",
    "anonymous",
    "guest",
    "unknown",
    "[object object]",
}
ID_FIELDS = ("message_id", "user_id", "anonymous_id", "event", "group_id", "previous_id")
TYPES = {"track", "page", "identify", "group", "alias"}
K = 3


# ----------------------------------------------------------------------------- helpers


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1] if text else []


def parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def has_id(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() not in BLOCKED


def event_ts(obj: dict[str, Any]) -> datetime | None:
    ts = parse_ts(obj.get("timestamp"))
    sent, received = parse_ts(obj.get("sent_at")), parse_ts(obj.get("received_at"))
    if ts is not None and sent is not None and received is not None:
        return received - (sent - ts)
    return ts


def reject_reasons(raw: str, tenant: str, delivery: date) -> set[str]:
    """Every SPEC §4.1 reason that applies to one non-blank line (reference rules)."""
    reasons: set[str] = set()
    if len(raw.encode("utf-8")) > 1 << 20:
        reasons.add("oversized_record")
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        return reasons | {"invalid_json"}
    if not isinstance(obj, dict):
        return reasons | {"invalid_json"}
    for f in (*ID_FIELDS, "type", "timestamp", "sent_at", "received_at", "tenant_id"):
        if obj.get(f) is not None and not isinstance(obj[f], str):
            reasons.add("invalid_type")
    for f in ("properties", "traits", "context"):
        if obj.get(f) is not None and not isinstance(obj[f], dict):
            reasons.add("invalid_type")
    version = obj.get("schema_version")
    if version is not None:
        if not isinstance(version, int) or isinstance(version, bool):
            reasons.add("invalid_type")
        elif version not in (1, 2):
            reasons.add("unsupported_schema_version")
    for f in ("message_id", "type", "timestamp"):
        if obj.get(f) in (None, ""):
            reasons.add("missing_field")
    kind = obj.get("type")
    if isinstance(kind, str) and kind not in TYPES:
        reasons.add("invalid_type")
    required = {"track": ("event",), "group": ("group_id",), "alias": ("previous_id", "user_id")}
    for f in required.get(kind, ()):  # type: ignore[arg-type]
        if obj.get(f) in (None, ""):
            reasons.add("missing_field")
    if not (has_id(obj.get("user_id")) or has_id(obj.get("anonymous_id"))):
        reasons.add("missing_field")
    for f in ID_FIELDS:
        if isinstance(obj.get(f), str) and len(obj[f]) > 128:
            reasons.add("field_too_long")
    if isinstance(obj.get("timestamp"), str):
        ts = event_ts(obj)
        if ts is None:
            reasons.add("invalid_timestamp")
        elif ts < datetime(2000, 1, 1, tzinfo=UTC):
            reasons.add("timestamp_out_of_range")
        elif ts >= datetime.combine(delivery + timedelta(days=2), datetime.min.time(), UTC):
            reasons.add("future_timestamp")
    if obj.get("tenant_id") is not None and obj["tenant_id"] != tenant:
        reasons.add("tenant_mismatch")
    return reasons


def landing_files(out: Path, source: str) -> Iterator[tuple[str, date, Path]]:
    for path in sorted((out / source).rglob("*.jsonl*")):
        m = LAYOUT.match(path.relative_to(out).as_posix())
        assert m, path
        yield m.group(2), date.fromisoformat(m.group(3)), path


def depth_of(parents: dict[str, str | None], account: str) -> int:
    depth, seen = 1, {account}
    while parents.get(account):
        account = parents[account]  # type: ignore[assignment]
        assert account not in seen, "cycle"
        seen.add(account)
        depth += 1
    return depth


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("landing")
    return out, generate_landing("tiny", DAYS, SEED, out)


@pytest.fixture(scope="module")
def events(tiny: tuple[Path, GenerateSummary]) -> dict[str, Any]:
    """Every event line, split into valid objects and malformed lines (by the truth)."""
    out, _ = tiny
    faults = {
        (f["file"], f["line_no"]): f["reason"]
        for f in map(json.loads, (out / "_truth/faults.jsonl").read_text().splitlines())
    }
    valid: list[tuple[str, date, str, dict[str, Any]]] = []
    malformed: list[tuple[str, date, str, str]] = []
    blanks = 0
    for tenant, delivery, path in landing_files(out, "events"):
        rel = path.relative_to(out).as_posix()
        for n, raw in enumerate(read_lines(path), start=1):
            if raw == "":
                blanks += 1
            elif (rel, n) in faults:
                malformed.append((tenant, delivery, raw, faults[(rel, n)]))
            else:
                valid.append((tenant, delivery, path.name, json.loads(raw)))
    return {"valid": valid, "malformed": malformed, "faults": faults, "blanks": blanks}


# ----------------------------------------------------------------------------- tests


def test_same_seed_same_bytes_other_seed_differs(
    tiny: tuple[Path, GenerateSummary], tmp_path: Path
) -> None:
    out, _ = tiny
    again = generate_landing("tiny", DAYS, SEED, tmp_path / "again")
    assert tree_hashes(out) == tree_hashes(tmp_path / "again")
    assert again == tiny[1]
    generate_landing("tiny", 1, SEED + 1, tmp_path / "other")
    other = tree_hashes(tmp_path / "other")
    first_day = {k: v for k, v in tree_hashes(out).items() if START.isoformat() in k}
    assert first_day
    assert all(other.get(k) != v for k, v in first_day.items())


def test_earlier_days_do_not_depend_on_run_length(
    tiny: tuple[Path, GenerateSummary], tmp_path: Path
) -> None:
    generate_landing("tiny", 1, SEED, tmp_path / "short")
    short = {k: v for k, v in tree_hashes(tmp_path / "short").items() if "_truth" not in k}
    full = tree_hashes(tiny[0])
    assert short and all(full[k] == v for k, v in short.items())


def test_output_independent_of_hash_seed(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from jobs.generate import generate_landing; "
        "generate_landing('tiny', 1, 5, Path(sys.argv[1]))"
    )
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / hash_seed)], env=env, check=True
        )
    assert tree_hashes(tmp_path / "1") == tree_hashes(tmp_path / "4242")


def test_output_independent_of_worker_count(tmp_path: Path) -> None:
    generate_landing("tiny", 1, SEED, tmp_path / "one", workers=1)
    generate_landing("tiny", 1, SEED, tmp_path / "two", workers=2)
    assert tree_hashes(tmp_path / "one") == tree_hashes(tmp_path / "two")


def test_rerun_replaces_files_and_keeps_unrelated(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    generate_landing("tiny", 1, SEED, out)
    first = tree_hashes(out)
    stray = out / "events" / "README.txt"
    stray.write_text("not generated")
    generate_landing("tiny", 1, SEED, out)
    after = tree_hashes(out)
    assert after.pop("events/README.txt")
    assert after == first


def test_layout_matches_spec(tiny: tuple[Path, GenerateSummary]) -> None:
    out, summary = tiny
    dates = {(START + timedelta(days=d)) for d in range(DAYS)}
    tenants = {t.tenant_id for t in TENANT_CATALOG[:3]} | {UNREGISTERED_TENANT}
    assert set(summary.tenants) == tenants
    for path in out.rglob("*"):
        if path.is_file():
            rel = path.relative_to(out).as_posix()
            assert rel.startswith("_truth/") or LAYOUT.match(rel), rel
    seen: dict[str, set[tuple[str, date]]] = defaultdict(set)
    names: dict[str, set[str]] = defaultdict(set)
    for source in ("events", "accounts", "subscriptions", "tickets"):
        for tenant, delivery, path in landing_files(out, source):
            seen[source].add((tenant, delivery))
            names[source].add(path.name)
            if path.name.endswith(".gz"):
                header = path.read_bytes()[:10]
                assert header[:2] == b"\x1f\x8b" and header[4:8] == b"\0\0\0\0"  # mtime 0
                assert header[3] & 0x08 == 0  # no file name stored
        assert seen[source] == {(t, d) for t in tenants for d in dates}, source
    assert any(n.startswith("late-") for n in names["events"])
    assert any(n.endswith(".gz") for n in names["events"])
    assert any(not n.endswith(".gz") for n in names["events"])
    per_folder = defaultdict(int)
    for tenant, delivery, _ in landing_files(out, "events"):
        per_folder[(tenant, delivery)] += 1
    assert min(per_folder.values()) >= 3


def test_valid_event_lines_meet_the_contract(events: dict[str, Any]) -> None:
    assert len(events["valid"]) > 10_000
    for tenant, delivery, _, obj in events["valid"]:
        raw = json.dumps(obj)
        assert reject_reasons(raw, tenant, delivery) == set(), raw
        assert obj["type"] in TYPES
        for f in ID_FIELDS:
            assert f not in obj or isinstance(obj[f], str)
        if obj["type"] == "track":
            assert obj["event"]
        for f in ("properties", "traits", "context"):
            assert f not in obj or isinstance(obj[f], dict)
        assert obj.get("schema_version", 1) in (1, 2)
        assert obj.get("tenant_id", tenant) == tenant


def test_every_malformed_line_has_exactly_its_recorded_reason(
    events: dict[str, Any], tiny: tuple[Path, GenerateSummary]
) -> None:
    _, summary = tiny
    assert len(events["malformed"]) == len(events["faults"]) == summary.malformed_lines
    for tenant, delivery, raw, reason in events["malformed"]:
        assert reject_reasons(raw, tenant, delivery) == {reason}, (reason, raw[:300])
    reasons = {r for *_, r in events["malformed"]}
    assert reasons == set(REASONS)  # all of §4.1 but unknown_tenant (the umbrella folder)
    oversized = [(t, d) for t, d, _, r in events["malformed"] if r == "oversized_record"]
    assert len(oversized) == len(set(oversized))  # at most one per tenant-day
    total = summary.events_lines
    assert 0.002 <= len(events["malformed"]) / total <= 0.015
    assert 1 <= events["blanks"] == summary.blank_lines
    assert all(t != UNREGISTERED_TENANT for t, *_ in events["malformed"])


def test_tenant_registry_agrees_with_catalog() -> None:
    text = (ROOT / "conf" / "tenants.yaml").read_text()
    assert text == render_tenants_yaml()
    listed = yaml.safe_load(text)["tenants"]
    assert [(t["id"], t["timezone"]) for t in listed] == [
        (t.tenant_id, t.timezone) for t in TENANT_CATALOG
    ]
    assert len(listed) == 60
    assert UNREGISTERED_TENANT not in {t["id"] for t in listed}
    assert [t.timezone for t in TENANT_CATALOG[:3]] == ["America/New_York", "Asia/Kolkata", "UTC"]


def test_unregistered_tenant_is_written(
    tiny: tuple[Path, GenerateSummary], events: dict[str, Any]
) -> None:
    out, summary = tiny
    assert summary.unregistered_tenants == [UNREGISTERED_TENANT]
    assert (out / "events" / f"tenant_id={UNREGISTERED_TENANT}").is_dir()
    per_day = summary.events_by_tenant[UNREGISTERED_TENANT] / DAYS
    assert 100 <= per_day <= 1_000


def test_tiny_sizes(tiny: tuple[Path, GenerateSummary], events: dict[str, Any]) -> None:
    out, summary = tiny
    accounts = sum(len(read_lines(p)) for _, d, p in landing_files(out, "accounts") if d == START)
    assert 30 <= accounts <= 70
    users = {(t, o["user_id"]) for t, _, _, o in events["valid"] if has_id(o.get("user_id"))}
    assert 200 <= len(users) <= 700
    first_day = sum(1 for _, d, _, _ in events["valid"] if d == START)  # a Thursday
    assert 3_500 <= first_day <= 7_500
    assert summary.lines_written["events"] == summary.events_lines
    assert summary.lines_written["accounts"] > 0 and summary.lines_written["tickets"] > 0


def test_identity_hard_cases(events: dict[str, Any], tiny: tuple[Path, GenerateSummary]) -> None:
    out, _ = tiny
    users_per_anon: dict[tuple[str, str], set[str]] = defaultdict(set)
    users_per_email: dict[tuple[str, str], set[str]] = defaultdict(set)
    anon_only_pages = identify_after_anon = aliases = leads = 0
    raw_emails: dict[tuple[str, str], set[str]] = defaultdict(set)
    for tenant, _, _, o in events["valid"]:
        uid, anon = o.get("user_id"), o.get("anonymous_id")
        if has_id(uid) and has_id(anon):
            users_per_anon[(tenant, anon)].add(uid)
        if o["type"] == "identify" and "email" in o.get("traits", {}):
            key = (tenant, o["traits"]["email"].strip().lower())
            users_per_email[key].add(uid)
            raw_emails[key].add(o["traits"]["email"])
        if o["type"] == "page" and not has_id(uid) and has_id(anon):
            anon_only_pages += 1
        if o["type"] == "identify" and has_id(anon):
            identify_after_anon += 1
            leads += not has_id(uid) and "email" in o["traits"]
        if o["type"] == "alias":
            aliases += 1
            assert o["previous_id"] and o["user_id"]
    for tenant in ("acme", "globex", "initech"):
        sizes = [len(v) for (t, _), v in users_per_anon.items() if t == tenant]
        assert max(sizes) > K and K in sizes, tenant
        assert max(len(v) for (t, _), v in users_per_email.items() if t == tenant) > K
    assert any(len(v) > 1 for v in raw_emails.values())  # same mailbox, other spelling
    assert anon_only_pages and identify_after_anon and leads and aliases >= 3

    truth = [json.loads(x) for x in (out / "_truth/identities.jsonl").read_text().splitlines()]
    persons_per_id: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for row in truth:
        assert set(row) == {"tenant_id", "id_type", "id_value", "person"}
        persons_per_id[(row["tenant_id"], row["id_type"], row["id_value"])].add(row["person"])
    assert any(t == "anonymous_id" and len(p) > K for (_, t, _), p in persons_per_id.items())
    assert any(t == "anonymous_id" and len(p) == K for (_, t, _), p in persons_per_id.items())
    assert any(t == "email" and len(p) > K for (_, t, _), p in persons_per_id.items())
    for tenant, anon in users_per_anon:
        assert (tenant, "anonymous_id", anon) in persons_per_id
    for tenant, email in users_per_email:
        assert (tenant, "email", email) in persons_per_id
    members = [json.loads(x) for x in (out / "_truth/memberships.jsonl").read_text().splitlines()]
    accounts_per_person: dict[tuple[str, str], set[str]] = defaultdict(set)
    for m in members:
        accounts_per_person[(m["tenant_id"], m["person"])].add(m["account_id"])
    assert any(len(a) > 1 for a in accounts_per_person.values())
    assert {m["role"] for m in members} == {
        "owner",
        "admin",
        "member",
        "viewer",
        "billing",
        "guest",
    }


def test_identity_truth_covers_exactly_the_identifiers_used(
    events: dict[str, Any], tiny: tuple[Path, GenerateSummary]
) -> None:
    out, _ = tiny
    used: set[tuple[str, str, str]] = set()
    for tenant, _, _, o in events["valid"]:
        for field, id_type in (("user_id", "user_id"), ("anonymous_id", "anonymous_id")):
            if has_id(o.get(field)):
                used.add((tenant, id_type, o[field]))
        if o["type"] == "alias":
            kind = (
                "anonymous_id" if re.fullmatch(r"[0-9a-fA-F-]{36}", o["previous_id"]) else "user_id"
            )
            used.add((tenant, kind, o["previous_id"]))
        if o["type"] == "identify" and "email" in o["traits"]:
            used.add((tenant, "email", o["traits"]["email"].strip().lower()))
    truth = [json.loads(x) for x in (out / "_truth/identities.jsonl").read_text().splitlines()]
    recorded = {(r["tenant_id"], r["id_type"], r["id_value"]) for r in truth}
    assert used == recorded
    persons_per_user_id = defaultdict(set)
    for r in truth:
        if r["id_type"] == "user_id":
            persons_per_user_id[(r["tenant_id"], r["id_value"])].add(r["person"])
    assert all(len(p) == 1 for p in persons_per_user_id.values())


def test_admin_actions_come_from_a_minority_of_admins(
    events: dict[str, Any], tiny: tuple[Path, GenerateSummary]
) -> None:
    out, _ = tiny
    person_of = {
        (r["tenant_id"], r["id_value"]): r["person"]
        for r in map(json.loads, (out / "_truth/identities.jsonl").read_text().splitlines())
        if r["id_type"] == "user_id"
    }
    roles: dict[tuple[str, str], set[str]] = defaultdict(set)
    for m in map(json.loads, (out / "_truth/memberships.jsonl").read_text().splitlines()):
        roles[(m["tenant_id"], m["person"])].add(m["role"])
    admin_names = {n for e in TAXONOMY if e.category == "admin" for n in (e.v1_name, e.v2_name)}
    actors = set()
    for tenant, _, _, o in events["valid"]:
        if o["type"] == "track" and o["event"] in admin_names:
            person = person_of[(tenant, o["user_id"])]
            assert roles[(tenant, person)] & {"owner", "admin"}, o
            actors.add((tenant, person))
    assert actors
    assert len(actors) < 0.4 * len(roles)


def test_accounts_hierarchy_and_group_only(
    tiny: tuple[Path, GenerateSummary], events: dict[str, Any]
) -> None:
    out, _ = tiny
    snapshots: dict[tuple[str, date], dict[str, str | None]] = {}
    for tenant, delivery, path in landing_files(out, "accounts"):
        rows = [json.loads(x) for x in read_lines(path)]
        parents = {r["account_id"]: r["parent_account_id"] for r in rows}
        assert len(parents) == len(rows)
        assert {r["tier"] for r in rows} <= {"starter", "growth", "strategic"}
        snapshots[(tenant, delivery)] = parents
        deepest = max(depth_of(parents, a) for a in parents)
        assert deepest == 5 if tenant != UNREGISTERED_TENANT else deepest <= 5
    moved = [
        (t, a)
        for (t, d), parents in snapshots.items()
        if d > START
        for a, p in snapshots[(t, d - timedelta(days=1))].items()
        if a in parents and parents[a] != p
    ]
    assert moved
    crm_ids = {(t, a) for (t, _), parents in snapshots.items() for a in parents}
    group_only = {
        (t, o["group_id"])
        for t, _, _, o in events["valid"]
        if o["type"] == "group"
        and (t, o["group_id"]) not in crm_ids
        and o["traits"].get("parent_group_id")
    }
    assert {t for t, _ in group_only} >= {"acme", "globex", "initech"}


def test_event_variety(events: dict[str, Any]) -> None:
    valid = events["valid"]
    versions = defaultdict(set)
    names = set()
    for tenant, _, _, o in valid:
        versions[tenant].add(o.get("schema_version"))
        if o["type"] == "track":
            names.add(o["event"])
    assert {None, 1, 2} <= set().union(*versions.values())
    assert sum(1 for v in versions.values() if {1, 2} <= v) >= 2
    assert {"report_viewed", "Report Viewed", "sync_completed", "email_digest_sent"} <= names
    assert {"ai_assistant_opened", "Canvas Zoomed"} & names
    stamps = [o["timestamp"] for *_, o in valid]
    assert any(s.endswith("Z") for s in stamps)
    assert any(s.endswith("-05:00") or s.endswith("-04:00") for s in stamps)
    assert any(s.endswith("+05:30") for s in stamps)
    assert any(re.search(r"T\d\d:\d\d:\d\d(\.\d+)?$", s) for s in stamps)
    with_clock = [o for *_, o in valid if "sent_at" in o and "received_at" in o]
    assert len(with_clock) > 0.8 * len(valid)
    skewed = [
        o
        for o in with_clock
        if abs((parse_ts(o["received_at"]) - parse_ts(o["sent_at"])).total_seconds()) > 600
    ]
    assert skewed
    tracks = [o for *_, o in valid if o["type"] in ("track", "page") and "context" in o]
    assert any("group_id" in o for o in tracks) and any("group_id" not in o for o in tracks)
    for *_, o in valid:
        if o["type"] == "group":
            assert {"name", "tier", "industry", "employees"} <= set(o["traits"])
        if o["type"] == "identify" and "email" in o["traits"]:
            assert {"name", "department"} <= set(o["traits"])


def test_duplicates_and_late_arrivals(
    events: dict[str, Any], tiny: tuple[Path, GenerateSummary]
) -> None:
    _, summary = tiny
    seen: dict[tuple[str, str], list[tuple[date, str]]] = defaultdict(list)
    lags = []
    for tenant, delivery, name, o in events["valid"]:
        seen[(tenant, o["message_id"])].append((delivery, name))
        ts = event_ts(o)
        assert ts is not None
        lags.append((delivery - ts.date()).days)
    within = [v for v in seen.values() if len(v) > len({d for d, _ in v})]
    across = [v for v in seen.values() if len({d for d, _ in v}) > 1]
    assert within and across
    assert summary.retry_duplicate_lines > 0 and summary.redelivered_lines > 0
    assert max(lags) >= 10 and sum(1 for lag in lags if lag >= 3) > 10


def test_snapshots_and_tickets(tiny: tuple[Path, GenerateSummary]) -> None:
    out, _ = tiny
    statuses, csat, ticket_days = set(), set(), defaultdict(set)
    for _, _, path in landing_files(out, "subscriptions"):
        for row in map(json.loads, read_lines(path)):
            statuses.add(row["status"])
            assert isinstance(row["seats"], int) and row["seats"] >= 0
            assert isinstance(row["mrr_cents"], int)
    assert statuses == {"trialing", "active", "past_due", "canceled"}
    for tenant, delivery, path in landing_files(out, "tickets"):
        for row in map(json.loads, read_lines(path)):
            assert row["ticket_id"] and row["created_at"]
            assert row["status"] in {"new", "open", "pending", "solved", "closed"}
            csat.add(row["csat"])
            ticket_days[(tenant, row["ticket_id"])].add(delivery)
    assert any(len(d) > 1 for d in ticket_days.values())
    assert None in csat


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="tiny, small, medium"):
        generate_landing("huge", 1, 1, Path("/nonexistent"))
    with pytest.raises(ValueError, match="days"):
        generate_landing("tiny", 0, 1, Path("/nonexistent"))
