"""The benchmark harness's own parts (`jobs/bench.py`): the benchmarks themselves run in
`make bench`, not here, but what they report with is tested so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jobs.bench import (
    PeakJvmMemory,
    _descendants,
    _landing_preset,
    _scan_metrics,
    files_per_partition,
    markdown,
    read_event_log,
    stage_group,
    stitching,
)

from .conftest import write_driver_conf


@pytest.mark.parametrize(
    ("stage", "group"),
    [("bronze", "bronze"), ("silver.parse", "silver other"), ("silver.accounts", "silver other"),
     ("silver.identity", "identity"), ("silver.identity_edges", "identity"),
     ("silver.sessions", "sessions"), ("gold.account_daily", "gold"),
     ("gate silver.events", "gates"), ("gate data docs", "gates")],
)  # fmt: skip
def test_stages_fall_into_the_groups_issue_7_reports(stage, group) -> None:
    assert stage_group(stage) == group


def test_descendants_reach_a_grandchild_and_memory_sampling_stops() -> None:
    # python → sh → sleep: the driver JVM sits at the same depth below the CLI's process
    script = "import subprocess; subprocess.run(['sh', '-c', 'sleep 3'])"
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        sampler = PeakJvmMemory(child.pid, every=0.05)
        for _ in range(100):
            found = _descendants(child.pid)
            if len(found) >= 2:
                break
            subprocess.run(["sleep", "0.05"])
        assert len(found) >= 2, found
        assert sampler.stop() == 0  # no java below it
    finally:
        child.kill()
        child.wait()


def test_scan_metrics_show_partition_pruning(spark, tmp_path) -> None:
    path = str(tmp_path / "t")
    rows = [("acme", d, i) for d in ("2026-03-05", "2026-03-06", "2026-03-07") for i in range(3)]
    df = spark.createDataFrame(rows, "tenant_id string, activity_date string, n int")
    df.coalesce(1).write.format("delta").partitionBy("tenant_id", "activity_date").save(path)
    table = spark.read.format("delta").load(path)
    one_day = table.where("tenant_id = 'acme' AND activity_date = '2026-03-06'")
    assert len(one_day.collect()) == 3
    assert _scan_metrics(one_day) == {"files_read": 1, "partitions_read": 1}
    everything = table.where("n >= 0")
    everything.collect()
    assert _scan_metrics(everything)["files_read"] == 3
    assert files_per_partition(spark, path) | {"mean_file_kib": 0} == {
        "partitions": 3, "files_per_partition_mean": 1.0, "files_per_partition_max": 1,
        "mean_file_kib": 0,
    }  # fmt: skip


def test_markdown_states_the_ratio_against_its_target() -> None:
    result = {
        "benchmark": "throughput", "preset": "tiny", "command": "python -m jobs.bench x",
        "started": "2026-12-04T15:00:00+00:00",
        "machine": {"cpus": 2, "memory": "24 GB", "python": "3.11", "platform": "Linux"},
        "event_lines": 5000, "landing_bytes": 123456, "run_seconds": 100.0,
        "raw_copy_seconds": 20.0, "ratio_to_raw_copy": 5.0, "events_per_second": 50,
        "json_copy_seconds": 40.0, "ratio_to_json_copy": 2.5,
        "peak_jvm_rss_mib": {"run": 900, "raw_copy": 500, "json_copy": 600},
        "stage_group_seconds": {"bronze": 3.0, "gates": 10.0},
        "queries": [{"query": "q1", "seconds": 0.5, "rows": 7, "files_read": 2,
                     "partitions_read": 2, "files_in_table": 40}],
    }  # fmt: skip
    text = markdown(result)
    assert "**5.0×** (target ≤ 4×); through Spark's JSON reader 40.0 s — 2.5×" in text
    assert "| gates | 10.0 |" in text
    assert "| q1 | 0.5 | 7 | 2 (40) | 2 |" in text


def test_event_log_sums_bytes_and_the_files_scans_read(tmp_path) -> None:
    def scan(files_id: int, location: str) -> dict:
        metrics = [{"name": "number of files read", "accumulatorId": files_id},
                   {"name": "number of output rows", "accumulatorId": files_id + 1}]  # fmt: skip
        return {"nodeName": "Scan parquet", "children": [], "metadata": {"Location": location},
                "metrics": metrics}  # fmt: skip

    edges = scan(7, "PreparedDeltaFileIndex(1 paths)[file:/w/h/silver/identity_edges]")
    log_scan = scan(20, "InMemoryFileIndex(1 paths)[file:/w/h/gold/account_daily/_delta_log/0]")
    plan = {"nodeName": "Union", "children": [edges, log_scan], "metrics": []}
    accum = "org.apache.spark.sql.execution.ui.SparkListenerDriverAccumUpdates"
    events = [
        {"Event": "SparkListenerJobStart", "Job ID": 0},
        # an adaptive re-plan's update can be logged before the plan that names its metric
        {"Event": accum, "executionId": 0, "accumUpdates": [[20, 1]]},
        {"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart",
         "executionId": 0, "sparkPlanInfo": plan},
        {"Event": accum, "executionId": 0, "accumUpdates": [[7, 2], [8, 1000]]},
        {"Event": "SparkListenerTaskEnd", "Task Metrics": {"Input Metrics": {"Bytes Read": 512}}},
        {"Event": "SparkListenerTaskEnd", "Task Metrics": {"Input Metrics": {"Bytes Read": 256}}},
        {"Event": "SparkListenerJobStart", "Job ID": 1},
    ]  # fmt: skip
    expected = {"bytes_read": 768, "files_read": 3, "spark_jobs": 2, "files_read_by_table": {
        "silver.identity_edges": 2, "gold.account_daily (log)": 1}}  # fmt: skip
    log = tmp_path / "app-1"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert read_event_log(log) == expected
    # Spark 4's default: a rolled log, a folder of numbered parts beside an appstatus file
    rolled = tmp_path / "eventlog_v2_app-1"
    rolled.mkdir()
    (rolled / "appstatus_app-1").write_text("")
    (rolled / "events_9_app-1").write_text("".join(json.dumps(e) + "\n" for e in events[:2]))
    (rolled / "events_10_app-1").write_text("".join(json.dumps(e) + "\n" for e in events[2:]))
    assert read_event_log(rolled) == expected


def test_stitching_figures_come_from_the_run_log() -> None:
    log = (
        "12:00:01 DEBUG run_x stage silver.identity_edges took 1.50s in 9 Spark jobs\n"
        "12:00:07 DEBUG run_x stage silver.identity took 6.25s in 40 Spark jobs\n"
        "12:00:09 INFO run_x silver.people: 120 identifiers re-stitched, 4 changed person, "
        "3 rounds, largest re-stitched component 12; events rewritten on 5 partitions (1 "
        "beyond the delivery's)\n"
    )
    assert stitching(log) == {"stitching_seconds": 6.25, "restitched_ids": 120, "rounds": 3,
                              "largest": 12}  # fmt: skip


@pytest.mark.slow
def test_the_cost_harness_runs_end_to_end_on_one_tiny_day(tmp_path) -> None:
    """The CI smoke of issue 7: `jobs.bench cost` as `make bench` runs it, one tiny day
    (a run in its own process with Spark's event log, then compaction and files per
    partition), so the harness cannot rot between benchmark sessions. Its own process:
    the harness stops the session it builds. With the suite's small-data settings: they
    change the cost, not what the harness measures or how."""
    results = tmp_path / "results"
    conf = write_driver_conf(tmp_path / "conf", master="local[2]")
    done = subprocess.run(
        [sys.executable, "-m", "jobs.bench", "cost", "--preset", "tiny", "--days", "1",
         "--out", str(tmp_path / "work"), "--results", str(results), "--conf", str(conf)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = results.glob("*-cost.json")
    result = json.loads(path.read_text())
    (run,) = result["runs"]
    assert run["seconds"] > 0 and run["peak_jvm_rss_mib"] > 0
    assert run["spark_jobs"] > 0 and run["files_read"] > 0 and run["bytes_read"] > 0
    assert run["restitched_ids"] > 0 and run["rounds"] >= 1 and run["stitching_seconds"] > 0
    after = result["small_files_after"]["gold.account_daily"]
    assert after["partitions"] > 0 and after["files_per_partition_max"] <= 2
    assert "gold.account_daily" in markdown(result)


def test_a_rerun_names_the_preset_its_history_was_generated_with(tmp_path) -> None:
    truth = tmp_path / "_truth"
    truth.mkdir()
    with pytest.raises(ValueError, match=r"_truth/summary\.json"):
        _landing_preset(tmp_path)
    (truth / "summary.json").write_text(json.dumps({"preset": "small", "days": 30}))
    assert _landing_preset(tmp_path) == "small"
