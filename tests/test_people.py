"""Identity, attribution and sessions through real runs (SPEC §4.4–4.7, §7).

Hand-built deliveries whose expected persons, accounts and restatements are worked out by
hand in the comments.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F

from jobs.config import Settings, load_settings
from jobs.context import RunContext
from jobs.pipeline import RunResult, execute
from jobs.silver_people import _log_merges
from jobs.tables import SILVER_IDENTITY_MERGES
from jobs.transforms.privacy import pseudonym_py

from .conftest import (
    TEST_PII_KEY,
    TEST_TENANTS,
    assert_same_rows,
    read,
    write_conf,
    write_delivery,
)
from .conftest import track_event as ev

D1, D2, D3, D4 = "2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08"
DAYS = (D1, D2, D3, D4)
# One warehouse serves the module: each story below is a tenant of its own (stitching,
# attribution and restatement never cross tenants), and one run per delivery day serves
# them all — a run costs about the same for one tenant as for seven. Runs go through
# silver: these tests check silver only (tests/test_gold.py runs through gold).
TENANTS = (
    ("merge", "UTC"), ("attrib", "UTC"), ("restate", "UTC"), ("kiosk", "America/New_York"),
    ("pii", "America/New_York"), ("mail-a", "America/New_York"), ("mail-b", "Asia/Kolkata"),
)  # fmt: skip


def land(landing: Path) -> None:
    # merge: D1 an anonymous visitor on dev-1 and a known user u1 on dev-2; D2 dev-1 signs
    # in as u1 → the D1 visitor is u1, D1 is restated
    write_delivery(landing, "merge", D1, [
        ev("a1", "2026-03-05T09:00:00Z", type="page", event=None, anonymous_id="dev-1"),
        ev("a2", "2026-03-05T09:10:00Z", anonymous_id="dev-1"),
        ev("b1", "2026-03-05T10:00:00Z", user_id="u1", anonymous_id="dev-2"),
    ])  # fmt: skip
    write_delivery(landing, "merge", D2, [
        ev("c1", "2026-03-06T08:00:00Z", type="identify", event=None, user_id="u1",
           anonymous_id="dev-1", traits={"email": " Ann@Example.COM ", "role": "admin"}),
    ])  # fmt: skip
    # attrib: the precedence of §4.5 on D1; D2 a late group call dated before e0
    write_delivery(landing, "attrib", D1, [
        ev("e0", "2026-03-05T08:00:00Z", user_id="u1"),                 # before any call
        ev("g1", "2026-03-05T09:00:00Z", type="group", event=None, user_id="u1",
           group_id="acc-A", traits={"name": "A"}),
        ev("e1", "2026-03-05T09:00:00Z", user_id="u1"),                 # same instant: ≤
        ev("e2", "2026-03-05T09:30:00Z", user_id="u1", group_id="acc-Z"),  # own group_id
        ev("g2", "2026-03-05T10:00:00Z", type="group", event=None, user_id="u1",
           group_id="acc-B"),
        ev("e3", "2026-03-05T11:00:00Z", user_id="u1"),
        ev("e4", "2026-03-05T11:00:00Z", user_id="u2"),                 # no calls at all
    ])  # fmt: skip
    write_delivery(landing, "attrib", D2, [
        ev("g0", "2026-03-05T07:00:00Z", type="group", event=None, user_id="u1",
           group_id="acc-C"),
    ])  # fmt: skip
    # restate: D3 dev-3 (no group call) signs in as u1; D4 dev-4 (a group call on D2) does
    write_delivery(landing, "restate", D1, [
        ev("b1", "2026-03-05T10:00:00Z", user_id="u1", anonymous_id="dev-2"),
    ])  # fmt: skip
    write_delivery(landing, "restate", D2, [
        ev("x1", "2026-03-06T10:00:00Z", anonymous_id="dev-3"),
        {"message_id": "g1", "type": "group", "timestamp": "2026-03-06T11:00:00Z",
         "anonymous_id": "dev-4", "group_id": "acct-9"},
    ])  # fmt: skip
    write_delivery(landing, "restate", D3, [
        ev("i3", "2026-03-07T08:00:00Z", type="identify", event=None, user_id="u1",
           anonymous_id="dev-3"),
    ])  # fmt: skip
    write_delivery(landing, "restate", D4, [
        ev("i4", "2026-03-08T08:00:00Z", type="identify", event=None, user_id="u1",
           anonymous_id="dev-4"),
    ])  # fmt: skip
    # kiosk: D1 u1..u3 use the kiosk (K = 3: still linked); D2 u4 too → the kiosk is
    # ambiguous, and the person of D1 splits back into u1, u2, u3
    write_delivery(landing, "kiosk", D1, [
        ev(f"k{i}", f"2026-03-05T1{i}:00:00Z", user_id=f"u{i}", anonymous_id="kiosk")
        for i in (1, 2, 3)
    ])  # fmt: skip
    write_delivery(landing, "kiosk", D2, [
        ev("k4", "2026-03-06T14:00:00Z", user_id="u4", anonymous_id="kiosk"),
        # a shared mailbox: one email identified by four users stays its own person
        *[ev(f"i{i}", f"2026-03-06T15:0{i}:00Z", type="identify", event=None,
             user_id=f"u{i}", traits={"email": "team@acme.example"}) for i in (1, 2, 3, 4)],
    ])  # fmt: skip
    write_delivery(landing, "pii", D1, [
        ev("i1", "2026-03-05T12:00:00Z", type="identify", event=None, user_id="u1",
           anonymous_id="d1", traits={"email": "Carol.Ng@corp.example", "name": "Carol Ng",
           "role": "admin"}, context={"ip": "198.51.100.23", "user_agent": "Mozilla/5.0"}),
        ev("t1", "2026-03-05T12:05:00Z", user_id="u1", group_id="acc-1",
           context={"ip": "198.51.100.23"}),
        ev("g1", "2026-03-05T12:06:00Z", type="group", event=None, user_id="u1",
           group_id="acc-1", traits={"name": "Corp", "tier": "growth"}),
    ])  # fmt: skip
    for tenant in ("mail-a", "mail-b"):  # one email in two tenants
        write_delivery(landing, tenant, D1, [
            ev("i1", "2026-03-05T12:00:00Z", type="identify", event=None, user_id="u1",
               traits={"email": "bob@example.com", "name": "Bob Smith"},
               context={"ip": "203.0.113.7"}),
        ])  # fmt: skip


@dataclass
class Story:
    settings: Settings
    runs: dict[str, RunResult]  # delivery day → its run
    events: dict[str, list[Row]]  # delivery day → silver.events right after its run


def run(settings, spark, day: str, tenants: list[str] | None = None) -> RunResult:
    date = dt.date.fromisoformat(day)
    result = execute(settings, "run", [date], tenants, spark=spark, through="silver")
    assert result.status == "succeeded", result.error
    return result


@pytest.fixture(scope="module")
def story(spark, tmp_path_factory) -> Story:
    root = tmp_path_factory.mktemp("people")
    land(root / "landing")
    conf = write_conf(root / "conf", TENANTS)
    settings = load_settings(
        conf_dir=conf, landing=str(root / "landing"), warehouse=str(root / "wh")
    )
    runs, events = {}, {}
    for day in DAYS:
        runs[day] = run(settings, spark, day)
        events[day] = read(spark, settings, "silver.events").collect()
    return Story(settings, runs, events)


def by_message(rows: list[Row], tenant: str) -> dict[str, Row]:
    return {r.message_id: r for r in rows if r.tenant_id == tenant}


def persons(rows: list[Row], tenant: str) -> dict[str, str]:
    return {m: r.person_id for m, r in by_message(rows, tenant).items()}


def restated(spark, settings, run_id: str) -> dict[tuple[str, str], list[str]]:
    rows = read(spark, settings, "ops.restatements").where(F.col("run_id") == run_id).collect()
    return {(r.tenant_id, r.event_date.isoformat()): r.reasons for r in rows}


def of(df, tenant: str):
    return df.where(F.col("tenant_id") == tenant)


def test_merge_restates_an_old_date(spark, story) -> None:
    settings, merge = story.settings, "merge"
    first = persons(story.events[D1], merge)
    assert first["a1"] == first["a2"] != first["b1"]
    after = persons(story.events[D2], merge)
    assert len(set(after.values())) == 1  # one person
    assert after["b1"] == first["b1"]  # the logged-in user's id is kept (user_id represents)
    changes = restated(spark, settings, story.runs[D2].run_id)
    assert "identity" in changes[(merge, D1)]
    assert "events" in changes[(merge, D2)]
    merges = of(read(spark, settings, "silver.identity_merges"), merge).where(
        F.col("run_id") == story.runs[D2].run_id
    )
    assert [
        (m.old_person_id, m.new_person_id, m.identifiers, m.kind) for m in merges.collect()
    ] == [(first["a1"], after["a1"], ["anonymous_id:dev-1"], "merge")]
    identity_map = {
        (r.id_type, r.id_value): r.person_id
        for r in of(read(spark, settings, "silver.identity_map"), merge).collect()
    }
    token = pseudonym_py(TEST_PII_KEY.encode(), "email", merge, "ann@example.com")
    assert identity_map == {
        ("anonymous_id", "dev-1"): after["a1"],
        ("anonymous_id", "dev-2"): after["a1"],
        ("user_id", "u1"): after["a1"],
        ("email", token): after["a1"],
    }
    sessions = of(read(spark, settings, "silver.sessions"), merge).collect()
    # D1: 09:00–09:10 (visitor, now u1) and 10:00 are 50 minutes apart → two sessions
    assert sorted((r.event_date.isoformat(), r.events) for r in sessions) == [(D1, 1), (D1, 2)]
    assert {r.person_id for r in sessions} == {after["a1"]}


def test_attribution_precedence_in_silver_events(spark, story) -> None:
    got = {
        m: (r.account_id, r.attribution)
        for m, r in by_message(story.events[D1], "attrib").items()
        if r.type == "track"
    }
    assert got == {
        "e0": ("acc-A", "earliest_group"),
        "e1": ("acc-A", "latest_group"),
        "e2": ("acc-Z", "own"),
        "e3": ("acc-B", "latest_group"),
        "e4": (None, "none"),
    }
    # D2's late group call, dated before e0, is u1's earliest and latest-before-e0: D1 is
    # restated for attribution
    e0 = by_message(story.events[D2], "attrib")["e0"]
    assert (e0.account_id, e0.attribution) == ("acc-C", "latest_group")
    changes = restated(spark, story.settings, story.runs[D2].run_id)
    assert "attribution" in changes[("attrib", D1)]
    members = of(read(spark, story.settings, "silver.account_memberships"), "attrib")
    assert sorted(r.account_id for r in members.collect()) == [
        "acc-A", "acc-B", "acc-C", "acc-Z"
    ]  # fmt: skip


def test_shared_device_split_is_order_independent(spark, story, make_settings) -> None:
    in_order, kiosk = story.settings, "kiosk"
    assert len(set(persons(story.events[D1], kiosk).values())) == 1
    people = persons(story.events[D2], kiosk)
    assert len({people[f"k{i}"] for i in (1, 2, 3, 4)}) == 4
    assert "identity" in restated(spark, in_order, story.runs[D2].run_id)[(kiosk, D1)]
    kinds = {r.kind for r in of(read(spark, in_order, "silver.identity_merges"), kiosk).collect()}
    assert "split" in kinds

    reverse = make_settings(Path(in_order.landing), TENANTS, name="reverse")
    run(reverse, spark, D2, [kiosk])
    run(reverse, spark, D1, [kiosk])
    for table in ("silver.events", "silver.identity_map", "silver.sessions",
                  "silver.person_account_daily", "silver.account_memberships"):  # fmt: skip
        assert_same_rows(read(spark, reverse, table), of(read(spark, in_order, table), kiosk))


def test_one_email_in_two_tenants_gives_two_tokens(spark, story) -> None:
    tenants = F.col("tenant_id").isin("mail-a", "mail-b")
    identity_map = read(spark, story.settings, "silver.identity_map").where(tenants)
    emails = identity_map.where("id_type = 'email'").collect()
    assert len({r.id_value for r in emails}) == 2
    assert len({r.person_id for r in emails}) == 2
    events = read(spark, story.settings, "silver.events").where(tenants).collect()
    assert {r.email_domain for r in events} == {"example.com"}


RAW = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|\b\d{1,3}(\.\d{1,3}){3}\b")
QUARANTINE = {"silver.events_rejected", "silver.records_rejected"}


def test_no_raw_email_name_or_ip_in_silver(spark, story) -> None:
    """Scan every string column (and string arrays) of every silver table: every tenant's
    emails, names and IPs (the pii tenant's and the others')."""
    settings = story.settings
    silver = Path(settings.warehouse) / "silver"
    tables = sorted(p.name for p in silver.iterdir() if (p / "_delta_log").exists())
    assert {"events", "identity_map", "sessions", "group_calls"} <= set(tables)
    for name in tables:
        if f"silver.{name}" in QUARANTINE:
            continue
        df = read(spark, settings, f"silver.{name}")
        texts = [
            F.col(f.name) if f.dataType.simpleString() == "string" else F.concat_ws(" ", f.name)
            for f in df.schema.fields
            if f.dataType.simpleString() in ("string", "array<string>")
        ]
        for row in df.select(*texts).collect():
            for value in row:
                assert value is None or not RAW.search(value), (name, value)
                for word in ("Carol", "Bob Smith"):
                    assert value is None or word not in value, (name, value)


def test_a_merge_restates_the_dates_whose_person_changed(spark, story) -> None:
    """Only the events of the identifier that changed person change, unless it brings group
    calls: then every event of the person may be attributed anew."""

    def identity_dates(day: str) -> set[str]:
        changes = restated(spark, story.settings, story.runs[day].run_id)
        return {d for (t, d), r in changes.items() if t == "restate" and "identity" in r}

    assert identity_dates(D3) == {D2, D3}  # not D1: b1's person is unchanged
    assert identity_dates(D4) == {D1, D2, D3, D4}
    events = by_message(story.events[D4], "restate")
    assert len({events[m].person_id for m in ("b1", "x1", "i3", "i4")}) == 1
    # the earliest call (D2) now covers u1's earlier events too (§4.5 rule 3)
    assert {events[m].account_id for m in ("b1", "x1", "i3", "i4")} == {"acct-9"}


def test_a_pass_after_an_interrupted_one_replaces_its_merge_log_rows(spark, make_settings):
    """The merge log of a pass that compares against an older base (jobs.silver_progress)
    holds the interrupted runs' moves again: their rows give way to the new pass's."""
    settings = make_settings(None, TEST_TENANTS)
    path = settings.table_path(SILVER_IDENTITY_MERGES.name)

    def both(tenant: str, old: str, new: str):
        return spark.createDataFrame(
            [(tenant, "user_id:u1", old, new), (tenant, "anonymous_id:a1", "p-a1", new)],
            "tenant_id string, node string, old_person_id string, new_person_id string",
        )

    day = dt.date.fromisoformat(D1)
    for run_id, tenant in (("run_dead", "acme"), ("run_other", "globex")):
        ctx = RunContext(spark, settings, run_id, "run", TEST_PII_KEY.encode())
        _log_merges(ctx, both(tenant, "p-u1", "p-new"), 2, day, {})
    ctx = RunContext(spark, settings, "run_again", "run", TEST_PII_KEY.encode())
    _log_merges(ctx, both("acme", "p-u1", "p-new"), 2, day, {"acme": ("run_dead",)})
    rows = spark.read.format("delta").load(path).select("tenant_id", "run_id").collect()
    # two pairs per run (u1 and a1 both moved to p-new); run_dead's are gone
    assert sorted((r.tenant_id, r.run_id) for r in rows) == [
        ("acme", "run_again"), ("acme", "run_again"), ("globex", "run_other"),
        ("globex", "run_other")
    ]  # fmt: skip
