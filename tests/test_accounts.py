"""Silver accounts, subscriptions, tickets, SCD2 history and hierarchy on hand-built deliveries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import Row

from jobs import bronze, silver_accounts, silver_progress
from jobs.config import load_settings
from jobs.context import RunContext
from jobs.delta_io import replace_partitions
from jobs.tables import SILVER_GROUP_CALLS

from .conftest import TEST_TENANTS, assert_same_rows, read, write_conf, write_delivery

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
TABLES = (
    "silver.accounts_snapshots",
    "silver.subscriptions",
    "silver.ticket_versions",
    "silver.tickets",
    "silver.records_rejected",
    "silver.accounts",
    "silver.account_hierarchy",
)


def acct(account_id: str, parent: str | None = None, **kw: object) -> dict:
    return {"account_id": account_id, "name": f"{account_id} Inc", "parent_account_id": parent,
            "tier": "growth", "industry": "software", "employee_count": 50, "region": "NA",
            "renewal_date": "2026-12-01", "created_at": "2025-01-02T03:04:05Z", **kw}  # fmt: skip


def sub(sid: str, seats: object = 10, **kw: object) -> dict:
    return {"subscription_id": sid, "account_id": "a1", "plan": "pro", "status": "active",
            "seats": seats, "mrr_cents": 5000, "currency": "USD",
            "current_period_start": "2026-03-01T00:00:00Z",
            "current_period_end": "2026-03-31T00:00:00Z", "canceled_at": None, **kw}  # fmt: skip


def ticket(tid: str, updated: str, status: str = "open", **kw: object) -> dict:
    return {"ticket_id": tid, "account_id": "a1", "requester_user_id": "u1",
            "created_at": "2026-03-01T10:00:00Z", "updated_at": updated, "status": status,
            "priority": "normal", "csat": None, **kw}  # fmt: skip


def group_call(mid: str, group_id: str, day: dt.date, hour: int = 12, **traits: object) -> Row:
    return Row(
        tenant_id="initech",
        event_date=day,
        event_ts=dt.datetime(day.year, day.month, day.day, hour),
        message_id=mid,
        group_id=group_id,
        user_id="u1",
        anonymous_id=None,
        group_name=traits.get("name"),
        group_plan=traits.get("plan"),
        group_tier=traits.get("tier"),
        group_industry=traits.get("industry"),
        group_employees=traits.get("employees"),
        group_seats=traits.get("seats"),
        parent_group_id=traits.get("parent"),
        delivery_date=day,
        _run_id="run_events",
    )


GROUP_CALLS_SCHEMA = (
    "tenant_id string, event_date date, event_ts timestamp, message_id string, group_id string, "
    "user_id string, anonymous_id string, group_name string, group_plan string, "
    "group_tier string, group_industry string, group_employees int, group_seats int, "
    "parent_group_id string, delivery_date date, _run_id string"
)


class World:
    """One warehouse + landing with the context and a helper to run a delivery."""

    def __init__(self, spark, root: Path) -> None:
        self.spark = spark
        self.landing = root / "landing"
        conf = write_conf(root / "conf", TEST_TENANTS)
        self.settings = load_settings(
            conf_dir=conf, landing=str(self.landing), warehouse=str(root / "wh")
        )
        self.ctx = RunContext(spark, self.settings, "run_test", "run", b"k")

    def deliver(self, tenant: str, day: dt.date, source: str, rows: list) -> None:
        write_delivery(self.landing, tenant, day.isoformat(), rows, source=source)

    def run(self, day: dt.date, tenants, **kw):
        bronze.ingest(self.ctx, day, None)
        base = silver_progress.start(self.ctx, day, list(tenants))
        result = silver_accounts.build(
            self.ctx,
            day,
            list(tenants),
            kw.get("group_changes", {}),
            kw.get("horizon", {}),
            base,
        )
        silver_progress.finish(self.ctx, base)
        return result

    def table(self, name: str):
        return read(self.spark, self.settings, name)

    def rows(self, name: str, where: str, *columns: str) -> list[tuple]:
        df = self.table(name).where(where).select(*columns)
        return by_value(tuple(r) for r in df.collect())


def by_value(rows) -> list[tuple]:
    """Sorted rows; NULLs sort last within a column."""
    return sorted(rows, key=lambda r: tuple((v is None, v if v is not None else 0) for v in r))


# --------------------------------------------------------------------------- the deliveries

ALL = ("acme", "globex", "initech")


def land_acme(w: World) -> None:
    """acme: typed rows and one reject per reason on D1, ticket updates and seats on D2."""
    w.deliver("acme", D1, "accounts", [
        acct("a1", renewal_date="2026-09-01", employee_count=120),
        "{broken",
        {"name": "no id"},
        acct("a9", employee_count="12"),
        acct("a8", tier="platinum"),
        acct("a7", created_at="yesterday"),
        acct("a6", employee_count=-3),
        acct("a5", parent_account_id=""),
    ])  # fmt: skip
    w.deliver("acme", D1, "subscriptions", [
        sub("s1"),
        sub("s2", seats=-1),
        sub("s3", status="paused"),
        sub("s4", account_id=None),
        sub("s5", seats=0, mrr_cents=12345678901, status="trialing"),
    ])  # fmt: skip
    w.deliver("acme", D1, "tickets", [
        ticket("t1", "2026-03-01T11:00:00Z"),
        ticket("t2", "2026-03-01T12:00:00Z", status="new"),
        ticket("t3", "2026-03-01T12:00:00Z", csat=6),
        ticket("t4", "2026-03-01T12:00:00Z", created_at=None),
        ticket("t5", "2026-03-01T12:00:00Z", csat=5, priority="urgent", status="solved"),
    ])  # fmt: skip
    w.deliver("umbrella", D1, "accounts", [acct("u1")])  # unregistered
    w.deliver("acme", D2, "tickets", [
        ticket("t1", "2026-03-02T09:00:00Z", status="solved", csat=4),
        ticket("t2", "2026-03-01T12:00:00Z", status="open"),  # same updated_at: D2 wins
        ticket("t5", "2026-03-01T08:00:00Z", status="open"),  # older update: D1 stays
    ])  # fmt: skip
    w.deliver("acme", D2, "subscriptions", [sub("s1", seats=12), sub("s5", seats=0)])


def land_initech(w: World) -> None:
    """initech: CRM snapshots on D1–D3 (a chain, a move, a cycle) and group calls."""
    calls = [
        group_call("g1", "G", D1, name="Gee", plan="pro", seats=5, parent="A"),
        group_call("g2", "G", D2, name="Gee Two"),  # traits not sent keep their value
        group_call("g3", "A", D1, name="Not the CRM name", plan="basic"),  # CRM wins
        group_call("g4", "H", D2, parent="A"),  # H only in CRM from D3
        group_call("g5", "H", D2, hour=8, parent="X"),  # earlier the same day: loses
    ]
    replace_partitions(
        w.spark.createDataFrame(calls, GROUP_CALLS_SCHEMA),
        w.settings.table_path(SILVER_GROUP_CALLS.name),
        "tenant_id = 'initech'",
        SILVER_GROUP_CALLS.partition_by,
    )
    base = [
        acct("A", tier="starter"), acct("B", "A"), acct("C", "B"),
        acct("X"), acct("Y"), acct("M", "X"),
        acct("P", "Q"), acct("Q", "P"), acct("R", "P"),
        acct("S", "Z"),
    ]  # fmt: skip
    w.deliver("initech", D1, "accounts", base)
    day2 = [acct("A", tier="growth") if r["account_id"] == "A" else r for r in base]
    w.deliver("initech", D2, "accounts", day2)
    day3 = [acct("M", "Y") if r["account_id"] == "M" else r for r in day2] + [acct("H", "X")]
    w.deliver("initech", D3, "accounts", day3)


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    """Both tenants' deliveries, built day by day (D1, D2, D3) in one warehouse."""
    w = World(spark, tmp_path_factory.mktemp("accounts"))
    land_acme(w)
    land_initech(w)
    results = [w.run(d, ALL, group_changes={"initech": D1}) for d in (D1, D2, D3)]
    return w, results


# --------------------------------------------------------------------------- typed rows, tickets


def test_typed_snapshot_rows(world) -> None:
    w, _ = world
    (a1,) = w.table("silver.accounts_snapshots").where("account_id = 'a1'").collect()
    assert a1.asDict() == {
        "tenant_id": "acme", "delivery_date": D1, "account_id": "a1", "name": "a1 Inc",
        "parent_account_id": None, "tier": "growth", "industry": "software",
        "employee_count": 120, "region": "NA", "renewal_date": dt.date(2026, 9, 1),
        "created_at": dt.datetime(2025, 1, 2, 3, 4, 5), "_raw_hash": a1._raw_hash,
        "_source_file": a1._source_file, "_run_id": "run_test",
    }  # fmt: skip
    got = w.rows(
        "silver.accounts_snapshots", "tenant_id = 'acme'", "account_id", "parent_account_id"
    )
    assert got == [
        ("a1", None),
        ("a5", None),  # empty parent id = no parent
    ]
    subs = w.rows(
        "silver.subscriptions", "true", "delivery_date", "subscription_id", "status", "seats",
        "mrr_cents",
    )  # fmt: skip
    assert subs == [
        (D1, "s1", "active", 10, 5000),
        (D1, "s5", "trialing", 0, 12345678901),
        (D2, "s1", "active", 12, 5000),
        (D2, "s5", "active", 0, 5000),
    ]
    schema = dict(w.table("silver.subscriptions").dtypes)
    assert (schema["seats"], schema["mrr_cents"]) == ("int", "bigint")
    # the unregistered tenant stays in bronze only
    assert w.table("bronze.accounts").where("tenant_id = 'umbrella'").count() == 1
    for name in TABLES:
        assert w.table(name).where("tenant_id = 'umbrella'").count() == 0


def test_rejects_carry_reason_and_raw_line(world) -> None:
    w, (r1, _, _) = world
    got = w.rows("silver.records_rejected", "true", "source", "record_id", "reason")
    assert got == by_value([
        ("accounts", None, "invalid_json"),
        ("accounts", None, "missing_field"),
        ("accounts", "a9", "invalid_type"),
        ("accounts", "a8", "invalid_type"),
        ("accounts", "a7", "invalid_timestamp"),
        ("accounts", "a6", "invalid_type"),
        ("subscriptions", "s2", "invalid_type"),
        ("subscriptions", "s3", "invalid_type"),
        ("subscriptions", "s4", "missing_field"),
        ("tickets", "t3", "invalid_type"),
        ("tickets", "t4", "missing_field"),
    ])  # fmt: skip
    broken = w.table("silver.records_rejected").where("reason = 'invalid_json'").first()
    assert broken.raw_line == "{broken" and broken.delivery_date == D1
    assert broken._source_file.endswith("part-0.jsonl") and broken._run_id == "run_test"
    assert r1.rejected[("accounts", "acme")] == {
        "invalid_json": 1, "missing_field": 1, "invalid_type": 3, "invalid_timestamp": 1,
    }  # fmt: skip
    assert r1.accepted[("accounts", "acme")] == 2
    assert r1.accepted[("subscriptions", "acme")] == 2
    assert r1.accepted[("tickets", "acme")] == 3


def test_ticket_current_state(world) -> None:
    w, _ = world
    got = w.rows(
        "silver.tickets", "true", "ticket_id", "status", "csat", "last_delivery_date", "versions"
    )
    assert got == [
        ("t1", "solved", 4, D2, 2),
        ("t2", "open", None, D2, 2),  # tie on updated_at: the later delivery wins
        ("t5", "solved", 5, D1, 2),
    ]
    (t1,) = w.table("silver.tickets").where("ticket_id = 't1'").collect()
    assert t1.created_date == dt.date(2026, 3, 1)  # 10:00Z is 05:00 in New York
    assert t1.updated_date == dt.date(2026, 3, 2)


def test_subscription_restatement(world) -> None:
    _, (r1, r2, _) = world
    assert {d for d, why in r1.restated["acme"].items() if "subscriptions" in why} == {D1}
    assert {d for d, why in r2.restated["acme"].items() if "subscriptions" in why} == {D2}


# --------------------------------------------------------------------------- accounts, hierarchy


def test_scd2_history(world) -> None:
    w, _ = world
    cols = ("account_id", "valid_from", "valid_to", "is_current", "source", "name", "tier",
            "plan", "seats_hint", "parent_account_id")  # fmt: skip
    got = w.rows("silver.accounts", "account_id IN ('A', 'G', 'H')", *cols)
    assert got == [
        ("A", D1, D2, False, "crm", "A Inc", "starter", None, None, None),
        ("A", D2, None, True, "crm", "A Inc", "growth", None, None, None),
        ("G", D1, D2, False, "group", "Gee", None, "pro", 5, "A"),
        ("G", D2, None, True, "group", "Gee Two", None, "pro", 5, "A"),
        ("H", D2, D3, False, "group", None, None, None, None, "A"),
        ("H", D3, None, True, "crm", "H Inc", "growth", None, None, "X"),
    ]
    # unchanged CRM accounts collapse to one version
    assert w.rows("silver.accounts", "account_id = 'B'", "valid_from", "valid_to") == [(D1, None)]


def test_hierarchy_parents_as_of_date(world) -> None:
    w, _ = world
    cols = ("as_of_date", "account_id", "parent_account_id", "parent_source", "ancestors", "depth")
    got = w.rows("silver.account_hierarchy", "account_id IN ('M', 'H', 'G', 'C')", *cols)
    assert [g for g in got if g[1] == "M"] == [
        (D1, "M", "X", "crm", ["X"], 1),
        (D2, "M", "X", "crm", ["X"], 1),
        (D3, "M", "Y", "crm", ["Y"], 1),
    ]
    assert [g for g in got if g[1] == "H"] == [
        (D2, "H", "A", "group", ["A"], 1),  # latest group call of the day
        (D3, "H", "X", "crm", ["X"], 1),  # the snapshot takes over
    ]
    assert [g for g in got if g[1] == "G"] == [
        (D1, "G", "A", "group", ["A"], 1),
        (D2, "G", "A", "group", ["A"], 1),  # a later call without parent keeps it
        (D3, "G", "A", "group", ["A"], 1),
    ]
    assert [g[2:] for g in got if g[1] == "C"] == [("B", "crm", ["B", "A"], 2)] * 3


def test_hierarchy_cycles_and_unknown_parents(world) -> None:
    w, _ = world
    cols = ("account_id", "parent_account_id", "ancestors", "depth", "in_cycle",
            "declared_parent_id")  # fmt: skip
    got = w.rows(
        "silver.account_hierarchy", f"tenant_id = 'initech' AND as_of_date = DATE'{D3}'", *cols
    )
    by_id = {g[0]: g[1:] for g in got}
    assert by_id["P"] == (None, [], 0, True, "Q")
    assert by_id["Q"] == (None, [], 0, True, "P")
    assert by_id["R"] == ("P", ["P"], 1, False, "P")
    assert by_id["S"] == ("Z", ["Z"], 1, False, "Z")
    assert by_id["Z"] == (None, [], 0, False, None)  # unknown parent: a root of its own
    assert by_id["A"] == (None, [], 0, False, None)
    assert sorted(by_id) == sorted("ABCGHMPQRSXYZ")
    dates = w.rows("silver.account_hierarchy", "true", "as_of_date")
    assert sorted(set(dates)) == [(D1,), (D2,), (D3,)]


def test_restated_dates(world) -> None:
    _, (r1, r2, r3) = world
    assert r1.restated["initech"] == {D1: {"hierarchy", "accounts"}}
    assert r2.restated["initech"] == {D2: {"hierarchy", "accounts"}}  # A's tier, D2 only
    # the group change re-derives D1–D3; only D3 (M moved, H entered the CRM) differs
    assert r3.restated["initech"] == {D3: {"hierarchy", "accounts"}}
    # acme: the new hierarchy dates (its accounts did not change after D1), and the local
    # created date of the tickets D1 and D2 added or changed (health's support load)
    created = dt.date(2026, 3, 1)
    assert "tickets" in r1.restated["acme"][created]
    assert r2.restated["acme"] == {D2: {"hierarchy", "subscriptions"}, created: {"tickets"}}
    assert r3.restated["acme"] == {D3: {"hierarchy"}}


def test_rerun_is_idempotent_and_restates_nothing(world) -> None:
    w, _ = world
    before = {t: w.table(t).localCheckpoint() for t in TABLES}
    again = w.run(D2, ALL)
    for t in TABLES:
        assert_same_rows(w.table(t), before[t])
    assert again.restated == {}
    # a group change that changes nothing rewrites dates but restates none of them
    again = w.run(D3, ALL, group_changes={"initech": D1})
    assert again.restated == {}
    assert_same_rows(w.table("silver.account_hierarchy"), before["silver.account_hierarchy"])
