"""Gold through real runs: values by hand, late data restating the windows.

(A re-run changing nothing is tests/test_e2e_tiny.py::test_rerunning_a_delivery_changes_nothing.)

Tenant initech (UTC). Group calls make P the parent of A and B. Worked out by hand:
- D1 (03-05): u1 acts in A at 09:00, u2 in B at 10:00.
- D2 (03-06): u1 acts in B at 09:00.
- D3 (03-07): a late event of 03-05 — u3 in A at 12:00 — plus u2 in B on 03-07.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from jobs.delta_io import partitions_written
from jobs.pipeline import execute

from .conftest import TEST_TENANTS, read, write_delivery
from .conftest import track_event as ev

D1, D2, D3 = "2026-03-05", "2026-03-06", "2026-03-07"


def run(settings, spark, *days: str):
    dates = [dt.date.fromisoformat(d) for d in days]
    result = execute(settings, "run", dates, None, spark=spark, through="gold")
    assert result.status == "succeeded", result.error
    return result


def group(mid: str, ts: str, account: str, user: str) -> dict:
    return ev(mid, ts, type="group", event=None, group_id=account, user_id=user,
              traits={"parent_group_id": "P"})  # fmt: skip


def daily(spark, settings) -> dict[tuple[str, str, str], tuple]:
    rows = read(spark, settings, "gold.account_daily").where(F.col("tenant_id") == "initech")
    return {
        (r.activity_date.isoformat(), r.scope, r.account_id): (r.dau, r.wau_7d, r.mau_28d, r.events)
        for r in rows.collect()
    }


def test_gold_rollups_restate_windows_after_late_data(spark, make_settings, tmp_path) -> None:
    landing = tmp_path / "landing"
    write_delivery(landing, "initech", D1, [
        group("g1", "2026-03-05T08:00:00Z", "A", "u1"),
        group("g2", "2026-03-05T08:00:00Z", "B", "u2"),
        ev("e1", "2026-03-05T09:00:00Z", user_id="u1", group_id="A"),
        ev("e2", "2026-03-05T10:00:00Z", user_id="u2", group_id="B"),
    ])  # fmt: skip
    write_delivery(landing, "initech", D2, [
        ev("e3", "2026-03-06T09:00:00Z", user_id="u1", group_id="B"),
    ])  # fmt: skip
    write_delivery(landing, "initech", D3, [
        ev("e4", "2026-03-05T12:00:00Z", user_id="u3", group_id="A"),
        ev("e5", "2026-03-07T09:30:00Z", user_id="u2", group_id="B"),
    ])  # fmt: skip
    settings = make_settings(landing, TEST_TENANTS)
    run(settings, spark, D1, D2)
    # (date, scope, account): dau, wau_7d, mau_28d, events
    assert daily(spark, settings) == {
        (D1, "direct", "A"): (1, 1, 1, 1),
        (D1, "direct", "B"): (1, 1, 1, 1),
        (D1, "rollup", "A"): (1, 1, 1, 1),
        (D1, "rollup", "B"): (1, 1, 1, 1),
        (D1, "rollup", "P"): (2, 2, 2, 2),
        (D2, "direct", "A"): (0, 1, 1, 0),
        (D2, "direct", "B"): (1, 2, 2, 1),
        (D2, "rollup", "A"): (0, 1, 1, 0),
        (D2, "rollup", "B"): (1, 2, 2, 1),
        (D2, "rollup", "P"): (1, 2, 2, 1),  # u1 in A and in B counts once
    }
    path = settings.table_path("gold.account_daily")
    third = run(settings, spark, D3)
    after = daily(spark, settings)
    assert after[(D1, "direct", "A")] == (2, 2, 2, 2)  # u3's late event restated 03-05
    assert after[(D1, "rollup", "P")] == (3, 3, 3, 3)
    assert after[(D2, "direct", "A")] == (0, 2, 2, 0)  # … and the window of 03-06
    assert after[(D2, "rollup", "P")] == (1, 3, 3, 1)
    assert after[(D3, "direct", "B")] == (1, 2, 2, 1)  # the new horizon date
    assert after[(D3, "rollup", "P")] == (1, 3, 3, 1)
    restated = {
        r.activity_date.isoformat()
        for r in read(spark, settings, "gold.account_daily")
        .where((F.col("tenant_id") == "initech") & (F.col("_run_id") == third.run_id))
        .collect()
    }
    assert restated == {D1, D2, D3}
    # the same, from the Delta log: the run's commits touched exactly those partitions
    logged = partitions_written(spark, path, third.run_id).collect()
    assert [r.partition for r in logged] == [
        f"activity_date={d}/tenant_id=initech" for d in (D1, D2, D3)
    ]
    health = partitions_written(
        spark, settings.table_path("gold.account_health_daily"), third.run_id
    ).collect()
    assert {r.partition for r in health} == {
        f"activity_date={d}/tenant_id=initech" for d in (D1, D2, D3)
    }

    tenant = {
        r.activity_date.isoformat(): (r.dau, r.events, r.unattributed_events)
        for r in read(spark, settings, "gold.tenant_daily")
        .where(F.col("tenant_id") == "initech")
        .collect()
    }
    assert tenant == {D1: (3, 3, 0), D2: (1, 1, 0), D3: (1, 1, 0)}
    hourly = sorted(
        (r.activity_date.isoformat(), r.account_id, r.hour_start_utc.hour, r.active_users)
        for r in read(spark, settings, "gold.account_hourly")
        .where(F.col("tenant_id") == "initech")
        .collect()
    )
    assert hourly == [
        (D1, "A", 9, 1), (D1, "A", 12, 1), (D1, "B", 10, 1), (D2, "B", 9, 1), (D3, "B", 9, 1)
    ]  # fmt: skip
