"""Order independence (SPEC §7) on hand-built deliveries: five deliveries of two tenants
run daily in order, and the same deliveries replayed tenant by tenant as backfills (one
tenant's in reverse order, the other's shuffled), give the same silver and gold, row for
row; late data, a merge and a CRM move restate exactly the partitions they affect.

The deliveries interact the way real ones do: a copy of an event re-delivered later (the
first delivery wins, whatever the processing order), an anonymous visitor identified two
days later (a merge restating old dates), an alias, an event ten days late, a group call
that moves a person to another account, a CRM snapshot that moves an account under a
parent, a seat change, a session across a tenant's local midnight and a day with no
delivery for one tenant.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from pathlib import Path

import pytest

from jobs.delta_io import date_range
from jobs.pipeline import execute

from .conftest import TEST_TENANTS, assert_same_rows, data_tables, read, write_delivery
from .conftest import track_event as ev

pytestmark = pytest.mark.slow
DAYS = [dt.date(2026, 3, 5) + dt.timedelta(days=i) for i in range(5)]
D1, D2, D3, D4, D5 = (d.isoformat() for d in DAYS)
TENANTS = ["acme", "globex"]
DATA_TABLES = data_tables("silver", "gold")
WATCHED = ("silver.events", "silver.account_hierarchy", "gold.account_daily")


def acct(account_id: str, parent: str | None = None) -> dict:
    return {"account_id": account_id, "name": f"{account_id} Inc", "parent_account_id": parent,
            "tier": "growth", "industry": "software", "employee_count": 50, "region": "NA",
            "renewal_date": "2026-12-01", "created_at": "2025-01-02T03:04:05Z"}  # fmt: skip


def sub(account_id: str, seats: int) -> dict:
    return {"subscription_id": f"s-{account_id}", "account_id": account_id, "plan": "pro",
            "status": "active", "seats": seats, "mrr_cents": 5000, "currency": "USD",
            "current_period_start": "2026-03-01T00:00:00Z",
            "current_period_end": "2026-03-31T00:00:00Z", "canceled_at": None}  # fmt: skip


def land(landing: Path) -> None:
    # acme (America/New_York)
    write_delivery(landing, "acme", D1, [
        ev("a1", "2026-03-05T14:00:00Z", anonymous_id="anon-1"),
        ev("a2", "2026-03-05T15:00:00Z", user_id="u1", group_id="acc-1"),
        ev("a3", "2026-03-05T15:01:00Z", type="identify", event=None, user_id="u1",
           traits={"email": "ann@acme.example", "role": "admin"}),
        ev("g1", "2026-03-05T15:02:00Z", type="group", event=None, user_id="u1",
           group_id="acc-1", traits={"name": "One"}),
    ])  # fmt: skip
    write_delivery(landing, "acme", D1, [acct("acc-1"), acct("acc-2")], source="accounts")
    write_delivery(landing, "acme", D1, [sub("acc-1", 10)], source="subscriptions")
    write_delivery(landing, "acme", D2, [
        ev("a2", "2026-03-05T15:00:00Z", user_id="u1", group_id="acc-1"),  # a copy: D1 wins
        ev("a4", "2026-03-06T13:00:00Z", user_id="u2", group_id="acc-2"),
        ev("a5", "2026-03-06T13:05:00Z", anonymous_id="anon-1"),
    ])  # fmt: skip
    write_delivery(landing, "acme", D3, [  # anon-1 is u2: 03-05 and 03-06 restated
        ev("a6", "2026-03-07T12:00:00Z", type="identify", event=None, user_id="u2",
           anonymous_id="anon-1", traits={"email": "bob@acme.example"}),
    ])  # fmt: skip
    write_delivery(landing, "acme", D3, [acct("acc-1"), acct("acc-2", parent="acc-1")],
                   source="accounts")  # fmt: skip
    write_delivery(landing, "acme", D4, [
        ev("a7", "2026-02-26T12:00:00Z", user_id="u1"),  # ten days late
        ev("a8", "2026-03-08T16:00:00Z", user_id="u1"),
    ])  # fmt: skip
    write_delivery(landing, "acme", D4, [sub("acc-1", 12)], source="subscriptions")
    write_delivery(landing, "acme", D5, [
        ev("a9", "2026-03-09T09:00:00Z", type="alias", event=None, user_id="u1",
           previous_id="anon-2"),
        ev("a10", "2026-03-09T10:00:00Z", anonymous_id="anon-2"),
        ev("g2", "2026-03-09T11:00:00Z", type="group", event=None, user_id="u2",
           group_id="acc-1"),
        ev("a11", "2026-03-09T12:00:00Z", user_id="u2"),
    ])  # fmt: skip
    # globex (Asia/Kolkata, UTC+05:30): a session across local midnight; no delivery on D3
    write_delivery(landing, "globex", D1, [
        ev("x1", "2026-03-05T18:20:00Z", user_id="u9", group_id="gx-1"),  # 23:50 local
        ev("x2", "2026-03-05T18:45:00Z", user_id="u9"),  # 00:15 local, the next day
    ])  # fmt: skip
    write_delivery(landing, "globex", D2, [
        ev("x3", "2026-03-06T10:00:00Z", user_id="u9"),
        ev("x1", "2026-03-05T18:20:00Z", user_id="u9", group_id="gx-1"),  # re-delivered
    ])  # fmt: skip
    write_delivery(landing, "globex", D4, [
        ev("x4", "2026-03-08T05:00:00Z", type="page", event=None, user_id="u8"),
    ])  # fmt: skip
    write_delivery(landing, "globex", D5, [ev("x5", "2026-03-09T07:00:00Z", user_id="u9",
                                              group_id="gx-2")])  # fmt: skip


def replay(spark, make_settings, landing: Path, name: str, steps) -> object:
    """Run `steps` — (command, dates, tenants, through) — into a warehouse of its own."""
    settings = make_settings(landing, TEST_TENANTS, name=name)
    for command, dates, tenants, through in steps:
        result = execute(settings, command, dates, tenants, spark=spark, through=through)
        assert result.status == "succeeded", (name, result.error)
    return settings


@pytest.fixture(scope="module")
def daily(spark, tmp_path_factory):
    """The reference: one daily run per delivery, in order, each through gold."""
    from jobs.config import load_settings

    from .conftest import write_conf

    root = tmp_path_factory.mktemp("ordering")
    land(root / "landing")
    conf = write_conf(root / "conf", TEST_TENANTS)
    settings = load_settings(
        conf_dir=conf, landing=str(root / "landing"), warehouse=str(root / "daily")
    )
    touched = {}  # day → table → partition folders its run rewrote (from the Delta log)
    for day in DAYS:
        versions = {t: _last_version(settings, t) for t in WATCHED}
        result = execute(settings, "run", [day], spark=spark)
        assert result.status == "succeeded", result.error
        touched[day] = {t: _touched(settings, t, versions[t]) for t in WATCHED}
    return root / "landing", settings, touched


# A replay costs five silver builds per run (a delivery's silver is ~40 s of Spark jobs even
# when tiny), so one replay covers the list at once: in order = the daily
# reference; the other warehouse is built tenant by tenant, each tenant as one backfill,
# acme (the tenant whose deliveries interact) in reverse order — harder than in order — and
# globex shuffled. (tests/test_backfill.py proves an in-order backfill equals daily runs
# on the tiny preset.)
SHUFFLED = random.Random(7).sample(DAYS, len(DAYS))
REPLAY = [("backfill", SHUFFLED, ["globex"], "gold"), ("backfill", DAYS[::-1], ["acme"], "gold")]


def test_reversed_shuffled_tenant_by_tenant_backfills_give_the_same_silver_and_gold(
    spark, daily, make_settings
) -> None:
    landing, reference, _ = daily
    assert SHUFFLED not in (DAYS, DAYS[::-1])
    settings = replay(spark, make_settings, landing, "replay", REPLAY)
    for table in DATA_TABLES:
        if not Path(reference.table_path(table), "_delta_log").is_dir():
            continue
        assert_same_rows(read(spark, settings, table), read(spark, reference, table))


def test_the_hand_built_story_came_out_as_the_spec_says(spark, daily) -> None:
    """Not only equal: right. Persons, attribution, late dates and sessions by hand."""
    _, settings, _ = daily
    events = {r.message_id: r for r in read(spark, settings, "silver.events").collect()}
    assert len(events) == 13 + 5  # 13 acme + 5 globex messages, each once
    assert events["a2"].delivery_date == DAYS[0]  # the first delivery's copy survives
    assert events["a1"].person_id == events["a4"].person_id  # anon-1 merged into u2
    assert events["a10"].person_id == events["a8"].person_id  # anon-2 aliased to u1
    assert events["a7"].event_date == dt.date(2026, 2, 26)
    assert events["x2"].event_date == dt.date(2026, 3, 6)  # local date in Kolkata
    sessions = read(spark, settings, "silver.sessions").where("tenant_id = 'globex'")
    x_session = [
        r for r in sessions.collect() if r.events == 2 and r.person_id == events["x1"].person_id
    ]
    assert x_session, "x1 and x2 (25 minutes apart, across local midnight) form one session"
    hierarchy = read(spark, settings, "silver.account_hierarchy").where(
        f"tenant_id = 'acme' AND account_id = 'acc-2' AND as_of_date = DATE'{D3}'"
    )
    assert [r.parent_account_id for r in hierarchy.collect()] == ["acc-1"]


def test_late_data_restates_exactly_the_affected_partitions(spark, daily, make_settings, tmp_path):
    """A late file added to D2's folder (one more acme event, dated D1) and D2 re-run for
    acme: the Delta log shows silver.events rewriting exactly acme's two event dates of that
    delivery, gold.tenant_daily rewriting only acme's partitions, and acme's D1 gains the
    event while every other partition keeps its rows. (That a re-run equals a fresh replay
    is tests/test_pipeline.py::test_late_file_and_shrunken_redelivery_restate.)"""
    import shutil

    landing, reference, _ = daily
    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    settings = make_settings(copy, TEST_TENANTS, name="late")
    shutil.copytree(reference.warehouse, settings.warehouse)
    write_delivery(copy, "acme", D2, [ev("late1", "2026-03-05T20:00:00Z", user_id="u1")],
                   name="late-1.jsonl")  # fmt: skip
    versions = {t: _last_version(settings, t) for t in ("silver.events", "gold.tenant_daily")}
    before = read(spark, settings, "gold.tenant_daily").localCheckpoint()
    result = execute(settings, "run", [DAYS[1]], ["acme"], spark=spark)
    assert result.status == "succeeded", result.error
    assert _touched(settings, "silver.events", versions["silver.events"]) == {
        "tenant_id=acme/event_date=2026-03-05",  # a2's copy and late1
        "tenant_id=acme/event_date=2026-03-06",  # a4, a5
    }
    touched_gold = _touched(settings, "gold.tenant_daily", versions["gold.tenant_daily"])
    assert touched_gold and all(p.startswith("tenant_id=acme/") for p in touched_gold)
    after = read(spark, settings, "gold.tenant_daily")
    key = "tenant_id = 'acme' AND activity_date = DATE'2026-03-05'"
    assert after.where(key).first().events == before.where(key).first().events + 1
    assert_same_rows(after.where(f"NOT ({key})"), before.where(f"NOT ({key})"))


def test_a_crm_move_and_a_late_event_restate_exactly_their_partitions(spark, daily) -> None:
    """Which partitions each daily run rewrote, from the Delta log (the order tests above
    prove that each result equals a replay in any order):

    - D3: acme's CRM snapshot moves acc-2 under acc-1 and an identify merges anon-1 into
      u2. Hierarchy gains acme's D3 only (as-of dates before it keep acc-2 parentless);
      silver.events rewrites the merged person's two dates and D3; gold.account_daily only
      acme's 03-05 … D3. globex delivered nothing and nothing of it changes.
    - D4: an acme event ten days late (02-26). silver.events rewrites 02-26 and the day's
      dates; gold.account_daily restates acme's 02-26 … D4 (every trailing 28-day window
      holding 02-26, up to acme's horizon) and globex's 03-07 … D4 (its horizon moving on
      from 03-06), nothing else.
    """
    _, settings, touched = daily

    def parts(day: dt.date, table: str) -> set[str]:
        return {re.sub(r"tenant_id=|\w+_date=", "", p) for p in touched[day][table]}

    def span(tenant: str, first: str, last: str) -> set[str]:
        days = date_range(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
        return {f"{tenant}/{d}" for d in days}

    d3, d4 = DAYS[2], DAYS[3]
    assert parts(d3, "silver.account_hierarchy") == {f"acme/{D3}"}
    assert parts(d3, "silver.events") == span("acme", D1, D3)
    assert parts(d3, "gold.account_daily") == span("acme", D1, D3)
    before_move = read(spark, settings, "silver.account_hierarchy").where(
        f"tenant_id = 'acme' AND account_id = 'acc-2' AND as_of_date = DATE'{D2}'"
    )
    assert [r.parent_account_id for r in before_move.collect()] == [None]

    assert parts(d4, "silver.events") == {"acme/2026-02-26", f"acme/{D4}", f"globex/{D4}"}
    assert parts(d4, "gold.account_daily") == span("acme", "2026-02-26", D4) | span(
        "globex", "2026-03-07", D4
    )


def _last_version(settings, table: str) -> int:
    """The table's newest commit version (-1: not created yet)."""
    log = Path(settings.table_path(table), "_delta_log")
    return max((int(p.stem) for p in log.glob("*.json")), default=-1)


def _touched(settings, table: str, after_version: int) -> set[str]:
    """Partition folders of the files added or removed by commits after `after_version`."""
    touched = set()
    for log in Path(settings.table_path(table), "_delta_log").glob("*.json"):
        if int(log.stem) <= after_version:
            continue
        for line in log.read_text().splitlines():
            action = json.loads(line)
            for kind in ("add", "remove"):
                if kind in action:
                    touched.add(Path(action[kind]["path"]).parent.as_posix())
    return touched
