"""Two tenant-scoped runs on the same tables at the same moment (two processes, two Spark
drivers) both publish, and neither loses the other's writes; commit races are retried."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import delta_io
from jobs.config import load_settings
from jobs.pipeline import execute

from .conftest import read, write_delivery, write_driver_conf

D1 = "2026-03-05"


def _events(tenant: str, n: int) -> list[dict]:
    return [
        {"message_id": f"{tenant}-{i}", "type": "track", "event": "Report Viewed",
         "timestamp": f"2026-03-05T1{i % 10}:00:00Z", "user_id": f"u{i % 3}",
         "group_id": f"{tenant}-acct"}
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.slow
def test_two_tenant_scoped_runs_at_once_both_publish_everything(spark, tmp_path) -> None:
    """acme runs in a process of its own (its own Spark driver); globex runs here, in the
    suite's session, once acme's run has written its ledger row — two drivers committing to
    the same tables for most of a run. (A second subprocess would pay a cold JVM: minutes.)"""
    landing, warehouse = tmp_path / "landing", tmp_path / "wh"
    counts = {"acme": 7, "globex": 5}
    for tenant, n in counts.items():
        write_delivery(landing, tenant, D1, _events(tenant, n))
    conf = write_driver_conf(tmp_path / "conf")
    settings = load_settings(conf_dir=conf, landing=str(landing), warehouse=str(warehouse))
    log = tmp_path / "acme.log"
    with log.open("w") as out:
        acme = subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "run", "--date", D1, "--tenant", "acme",
             "--conf", str(conf), "--landing", str(landing), "--warehouse", str(warehouse)],
            stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        ledger = Path(settings.table_path("ops.pipeline_runs"), "_delta_log")
        deadline = time.monotonic() + 600
        while not any(ledger.glob("*.json")) and acme.poll() is None:
            assert time.monotonic() < deadline, "acme's run wrote no ledger row in 10 minutes"
            time.sleep(0.5)
        overlapped = acme.poll() is None  # acme is mid-run as globex starts
        globex = execute(settings, "run", [dt.date.fromisoformat(D1)], ["globex"], spark=spark)
        returncode = acme.wait(timeout=1200)
    assert returncode == 0, log.read_text()[-4000:]
    assert globex.status == "succeeded", globex.error
    assert overlapped, "acme's run ended before globex's began: they did not overlap"
    events = read(spark, settings, "silver.events").groupBy("tenant_id").count().collect()
    assert {r.tenant_id: r["count"] for r in events} == counts
    for table in ("bronze.events", "silver.identity_map", "silver.sessions",
                  "gold.account_daily", "gold.tenant_daily", "ops.gold_progress"):  # fmt: skip
        tenants = {
            r.tenant_id
            for r in read(spark, settings, table).select("tenant_id").distinct().collect()
        }
        assert tenants == set(counts), table
    tenant_daily = read(spark, settings, "gold.tenant_daily").where(F.col("activity_date") == D1)
    assert {r.tenant_id: r.events for r in tenant_daily.collect()} == counts
    ledger = read(spark, settings, "ops.pipeline_runs").where("status = 'succeeded'")
    assert sorted(tuple(r.tenants) for r in ledger.collect()) == [("acme",), ("globex",)]


class _Conflict(Exception):
    pass


def test_a_commit_that_loses_a_race_is_retried_a_bounded_number_of_times(monkeypatch):
    monkeypatch.setattr(delta_io.time, "sleep", lambda _: None)
    calls = []

    def flaky(fail_times: int, message: str):
        def write() -> None:
            calls.append(1)
            if len(calls) <= fail_times:
                raise _Conflict(message)

        return write

    delta_io.with_commit_retry(flaky(2, "io.delta.exceptions.ConcurrentAppendException: x"), "t")
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(_Conflict):
        delta_io.with_commit_retry(flaky(99, "[DELTA_CONCURRENT_APPEND] files were added"), "t")
    assert len(calls) == delta_io.COMMIT_ATTEMPTS
    calls.clear()
    with pytest.raises(_Conflict):  # anything else is not retried
        delta_io.with_commit_retry(flaky(99, "disk full"), "t")
    assert len(calls) == 1
