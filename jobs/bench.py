"""Benchmarks that compare ways of doing the same work, side by side in one invocation.

    python -m jobs.bench throughput --preset medium [--out bench/work/throughput]
    python -m jobs.bench backfill --preset tiny --days 7 [--out bench/work/backfill]

`throughput`: one generated delivery through `lakehouse run` (its own process, as a
scheduler starts it) and, in the same invocation, two raw-copy baselines: Spark reading the
same landing lines and writing them as Parquet, no logic, once as text (the target's
baseline) and once through Spark's JSON reader (schema inferred). Then the analyst queries of
issue 7 on the run's warehouse, each with the files and partitions its scan read. Gives
wall time per stage group (from the run's ledger row), events per second, the peak
resident memory of each driver JVM, and the pipeline ÷ raw-copy ratio.

`backfill`: N daily runs (`lakehouse run --date D`, one process each — what a scheduler
does) against one `lakehouse backfill` over the same N deliveries into a second
warehouse; wall times, the ratio, and whether every silver and gold table came out the
same.

Each writes stdout, `bench/results/<timestamp>-<benchmark>.json` and, with `--markdown`,
appends a dated section to `docs/benchmarks.md` (what `make bench` does).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from jobs.config import PROJECT_DIR

RESULTS = PROJECT_DIR / "bench" / "results"
DOC = PROJECT_DIR / "docs" / "benchmarks.md"


class PeakJvmMemory:
    """Largest resident set of any `java` process below `pid`, sampled every `every` s.

    The CLI's driver JVM is a grandchild (python → spark-submit → java), so neither the
    child's rusage nor RUSAGE_CHILDREN reliably reaches it; /proc does."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every, self.peak_bytes = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_bytes

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            for pid in _descendants(self.pid):
                if _comm(pid) == "java":
                    self.peak_bytes = max(self.peak_bytes, _rss_bytes(pid))


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue  # the process ended meanwhile
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _timed(*args: str, log: Path | None = None) -> tuple[float, int]:
    """Run `python -m <args>` in its own process; with `log`, its stderr (the run log, at
    DEBUG so stage timings are in it) goes there. → (wall seconds, peak driver JVM bytes)."""
    env = {**os.environ, "LAKEHOUSE_LOG_LEVEL": "DEBUG"} if log else None
    started = time.perf_counter()
    with open(log, "w") if log else contextlib.nullcontext() as stderr:
        child = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL,
                                 stderr=stderr, env=env)  # fmt: skip
        memory = PeakJvmMemory(child.pid)
        code = child.wait()
        peak = memory.stop()
    if code != 0:
        raise subprocess.CalledProcessError(code, ["python", "-m", *args])
    return time.perf_counter() - started, peak


def _lakehouse(*args: str) -> float:
    """Run the CLI in its own process (its own Spark driver); → wall seconds."""
    return _timed("jobs.cli", *args)[0]


def machine() -> dict[str, object]:
    mem = ""
    with open("/proc/meminfo") as f:
        mem = f.readline().split(":")[1].strip()
    return {"cpus": os.cpu_count(), "memory": mem, "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip


def _delivery_dates(days: int) -> list[dt.date]:
    """The delivery dates of `days` generated days."""
    from jobs.delta_io import date_range
    from jobs.generate import DEFAULT_START

    return date_range(DEFAULT_START, DEFAULT_START + dt.timedelta(days=days - 1))


def backfill(preset: str, days: int, out: Path) -> dict[str, object]:
    from jobs.cluster_check import compare
    from jobs.generate import generate_landing

    shutil.rmtree(out, ignore_errors=True)
    landing = out / "landing"
    generate_landing(preset, days, 7, landing)
    dates = _delivery_dates(days)
    daily_wh, backfill_wh = out / "daily_wh", out / "backfill_wh"
    where = ["--landing", str(landing), "--warehouse"]
    daily = [_lakehouse("run", "--date", d.isoformat(), *where, str(daily_wh)) for d in dates]
    one_pass = _lakehouse("backfill", "--start", dates[0].isoformat(), "--end",
                          dates[-1].isoformat(), "--landing", str(landing),
                          "--warehouse", str(backfill_wh))  # fmt: skip
    differ = compare(str(backfill_wh), str(daily_wh))
    return {
        "benchmark": "backfill",
        "preset": preset,
        "days": days,
        "daily_run_seconds": [round(s, 1) for s in daily],
        "daily_total_seconds": round(sum(daily), 1),
        "backfill_seconds": round(one_pass, 1),
        "ratio": round(one_pass / sum(daily), 3),
        "tables_differing": differ,
    }


# stage name (ctx.stage) → the group issue 7 reports; anything else is "silver other"
IDENTITY_STAGES = {"silver.identity_edges", "silver.group_calls", "silver.identity",
                   "silver.restatement"}  # fmt: skip
STAGE_GROUPS = ("bronze", "silver other", "identity", "sessions", "gold", "gates")


def stage_group(stage: str) -> str:
    if stage.startswith("gate"):
        return "gates"
    if stage == "bronze":
        return "bronze"
    if stage in IDENTITY_STAGES:
        return "identity"
    if stage == "silver.sessions":
        return "sessions"
    if stage.startswith("gold."):
        return "gold"
    return "silver other"


RAW_READS = ("text", "json")


def raw_copy(landing: Path, out: Path, read: str = "text") -> None:
    """A baseline: every landing file of every source read and written as Parquet, in a
    session built exactly as the pipeline's, no logic. `read`: "text", each line as a
    string (no parsing), or "json", Spark's JSON reader with the schema it infers (one pass
    to infer, one to parse)."""
    from jobs.config import load_settings
    from jobs.spark import build_session

    if read not in RAW_READS:
        raise ValueError(f"raw copy: read must be one of {RAW_READS}, got {read!r}")
    settings = load_settings(landing=str(landing), warehouse=str(out))
    spark = build_session(settings, app_name=f"bench raw copy ({read})")
    for source in sorted(p.name for p in landing.iterdir() if not p.name.startswith("_")):
        rows = getattr(spark.read, read)(str(landing / source))
        rows.write.mode("overwrite").parquet(str(out / f"raw_copy_{read}" / source))
    spark.stop()


def throughput(preset: str, out: Path) -> dict[str, object]:
    from jobs.analyst import open_warehouse
    from jobs.generate import DEFAULT_START, generate_landing

    shutil.rmtree(out, ignore_errors=True)
    landing, warehouse = out / "landing", out / "warehouse"
    summary = generate_landing(preset, 1, 7, landing)
    day = DEFAULT_START.isoformat()
    raw_seconds, raw_peak = _timed("jobs.bench", "raw-copy", "--landing", str(landing),
                                   "--out", str(out / "raw"))  # fmt: skip
    json_seconds, json_peak = _timed("jobs.bench", "raw-copy", "--read", "json", "--landing",
                                     str(landing), "--out", str(out / "raw"))  # fmt: skip
    run_seconds, run_peak = _timed("jobs.cli", "run", "--date", day, "--landing",
                                   str(landing), "--warehouse", str(warehouse))  # fmt: skip
    spark, settings = open_warehouse(str(warehouse))
    stages = _ledger_stage_seconds(spark, settings)
    groups = {g: 0.0 for g in STAGE_GROUPS}
    for stage, seconds in stages.items():
        groups[stage_group(stage)] += seconds
    result = {
        "benchmark": "throughput",
        "preset": preset,
        "delivery_date": day,
        "event_lines": summary.events_lines,
        "landing_bytes": summary.bytes_written,
        "run_seconds": round(run_seconds, 1),
        "raw_copy_seconds": round(raw_seconds, 1),
        "ratio_to_raw_copy": round(run_seconds / raw_seconds, 2),
        "json_copy_seconds": round(json_seconds, 1),
        "ratio_to_json_copy": round(run_seconds / json_seconds, 2),
        "events_per_second": round(summary.events_lines / run_seconds),
        "peak_jvm_rss_mib": {
            "run": run_peak >> 20,
            "raw_copy": raw_peak >> 20,
            "json_copy": json_peak >> 20,
        },
        "stage_group_seconds": {g: round(v, 1) for g, v in groups.items()},
        "stage_seconds": {k: round(v, 2) for k, v in sorted(stages.items())},
        "queries": analyst_queries(spark),
    }
    spark.stop()
    return result


def _ledger_stage_seconds(spark, settings) -> dict[str, float]:
    from pyspark.sql import functions as F

    from jobs.delta_io import read_table

    runs = read_table(spark, settings.table_path("ops.pipeline_runs"))
    row = None
    if runs is not None:
        latest = runs.where(F.col("status") == "succeeded").orderBy(F.desc("recorded_at"))
        row = latest.select("stage_seconds").first()
    if row is None:
        raise RuntimeError("the benchmark run left no succeeded row in ops.pipeline_runs")
    return dict(row.stage_seconds or {})


def analyst_queries(spark) -> list[dict[str, object]]:
    """Issue 7's three analyst queries on the largest tenant, each timed on its second
    run, with the files and partitions its scans read."""
    from pyspark.sql import functions as F

    daily = spark.table("gold.account_daily")
    top = daily.groupBy("tenant_id").count().orderBy(F.desc("count")).first()
    if top is None:
        return []
    tenant = top.tenant_id
    last = daily.where(F.col("tenant_id") == tenant).agg(F.max("activity_date")).first()[0]
    first = last - dt.timedelta(days=89)
    of_tenant = F.col("tenant_id") == tenant
    on_last = of_tenant & (F.col("activity_date") == last)
    busiest = (
        spark.table("gold.account_hourly")
        .where(on_last)
        .groupBy("account_id").count().orderBy(F.desc("count"), "account_id").first()
    )  # fmt: skip

    def account_daily():
        return spark.table("gold.account_daily").where(
            of_tenant & F.col("activity_date").between(first, last)
        )

    def top_health():
        return (
            spark.table("gold.account_health_daily")
            .where(on_last & (F.col("scope") == "direct"))
            .orderBy(F.desc("health_score"), "account_id")
            .limit(20)
        )

    queries = {
        f"{tenant}: account_daily over 90 days to {last}": ("gold.account_daily", account_daily),
        f"{tenant}: top 20 accounts by health on {last}": ("gold.account_health_daily",
                                                            top_health),
    }  # fmt: skip
    if busiest is not None:

        def hourly():
            return spark.table("gold.account_hourly").where(
                on_last & (F.col("account_id") == busiest.account_id)
            )

        name = f"{tenant}: one account-day hourly ({busiest.account_id}, {last})"
        queries[name] = ("gold.account_hourly", hourly)
    measured = []
    for name, (table, build) in queries.items():
        build().collect()  # warms the Delta log cache, as an analyst's session would be
        query = build()  # planned afresh: the timing includes planning and file pruning
        started = time.perf_counter()
        rows = len(query.collect())
        seconds = time.perf_counter() - started
        in_table = spark.sql(f"DESCRIBE DETAIL {table}").first().numFiles
        measured.append({"query": name, "seconds": round(seconds, 3), "rows": rows,
                         **_scan_metrics(query), "files_in_table": in_table})  # fmt: skip
    return measured


def _scan_metrics(query) -> dict[str, int]:
    """Files and partitions read by the scans of `query`'s last execution, from the
    physical plan's SQL metrics (partition pruning shown, not assumed)."""
    totals = {"files_read": 0, "partitions_read": 0}
    for scan in _leaves(query._jdf.queryExecution().executedPlan()):
        metrics = scan.metrics()
        for key, name in (("numFiles", "files_read"), ("numPartitions", "partitions_read")):
            if metrics.contains(key):
                totals[name] += int(metrics.apply(key).value())
    return totals


def _leaves(plan) -> list:
    """The leaf nodes of a physical plan, through adaptive execution's wrappers."""
    name = plan.nodeName()
    if name.startswith("AdaptiveSparkPlan"):
        return _leaves(plan.executedPlan())
    if "QueryStage" in name:
        return _leaves(plan.plan())
    children = plan.children()
    if children.size() == 0:
        return [plan]
    return [leaf for i in range(children.size()) for leaf in _leaves(children.apply(i))]


GOLD_TABLES = ("gold.account_daily", "gold.account_hourly", "gold.tenant_daily",
               "gold.feature_adoption_daily", "gold.account_health_daily")  # fmt: skip


def cost(
    preset: str, days: int, out: Path, middle_backfill: bool = False, conf: Path | None = None
) -> dict[str, object]:
    """Issue 7's "cost follows new data": `days` daily runs, one process each, each with
    Spark's event log on so the bytes and files it read can be summed afterwards; then the
    gold tables' files per partition before and after the maintenance compaction.

    With `middle_backfill`, deliveries 3 … N−2 go through one `lakehouse backfill` instead
    of daily runs (it produces the same tables, see the `backfill` benchmark): the first two
    and the last two deliveries are still daily runs on the full history, at a fraction of
    the wall time — the 30-day small run does not fit a working session otherwise.
    `conf`: the conf folder the runs start from (default the project's conf/)."""
    from jobs.generate import generate_landing

    shutil.rmtree(out, ignore_errors=True)
    landing, warehouse, events = out / "landing", out / "warehouse", out / "eventlog"
    generate_landing(preset, days, 7, landing)
    conf = _conf_with_event_log(out / "conf", events, conf or PROJECT_DIR / "conf")
    dates = _delivery_dates(days)
    middle = dates[2:-2] if middle_backfill and days > 4 else []
    runs, history = [], None
    (out / "logs").mkdir()
    where = ["--landing", str(landing), "--warehouse", str(warehouse), "--conf", str(conf)]
    for day in dates:
        if day in middle:
            if day == middle[0]:
                log = out / "logs" / f"backfill-{middle[0]}-{middle[-1]}.log"
                seconds, _ = _timed("jobs.cli", "backfill", "--start", middle[0].isoformat(),
                                    "--end", middle[-1].isoformat(), *where, log=log)  # fmt: skip
                history = {"start": middle[0].isoformat(), "end": middle[-1].isoformat(),
                           "seconds": round(seconds, 1)}  # fmt: skip
                history |= read_event_log(_newest(events))
            continue
        log = out / "logs" / f"{day.isoformat()}.log"
        seconds, peak = _timed("jobs.cli", "run", "--date", day.isoformat(), *where, log=log)
        runs.append({"date": day.isoformat(), "seconds": round(seconds, 1),
                     "peak_jvm_rss_mib": peak >> 20, **read_event_log(_newest(events)),
                     **stitching(log.read_text(encoding="utf-8"))})  # fmt: skip
    from jobs.config import load_settings
    from jobs.maintenance import run_step
    from jobs.spark import build_session

    settings = load_settings(conf_dir=conf, landing=str(landing), warehouse=str(warehouse))
    spark = build_session(settings, app_name="bench small files")
    before = {t: files_per_partition(spark, settings.table_path(t)) for t in GOLD_TABLES}
    compaction = run_step(settings, "optimize", today=dates[-1] + dt.timedelta(days=1))
    after = {t: files_per_partition(spark, settings.table_path(t)) for t in GOLD_TABLES}
    spark.stop()
    second = runs[1]["seconds"] if len(runs) > 1 else runs[0]["seconds"]
    return {
        "benchmark": "cost",
        "preset": preset,
        "days": days,
        "runs": runs,
        "middle_backfill": history,
        "last_over_second": round(runs[-1]["seconds"] / second, 2),
        "small_files_before": before,
        "compaction": compaction,
        "small_files_after": after,
    }


RUN_STAMP = re.compile(r"\[run_(\d{8}T\d{6})_")


def rewind(spark, warehouse: Path, before: dt.datetime) -> dict[str, int | None]:
    """Every Delta table under `warehouse` as it was just before `before` (UTC): RESTORE to
    its last earlier version; a table created later is removed. → table → version kept."""
    from delta.tables import DeltaTable

    kept: dict[str, int | None] = {}
    for log in sorted(warehouse.glob("*/*/_delta_log")):
        table, name = log.parent, f"{log.parent.parent.name}.{log.parent.name}"
        history = DeltaTable.forPath(spark, str(table)).history().select("version", "timestamp")
        versions = {r.version: r.timestamp for r in history.collect()}
        earlier = [v for v, at in versions.items() if at < before]
        if not earlier:
            shutil.rmtree(table)
            kept[name] = None
            continue
        kept[name] = max(earlier)
        if kept[name] != max(versions):
            DeltaTable.forPath(spark, str(table)).restoreToVersion(kept[name])
    return kept


def cost_rerun(out: Path, days: list[dt.date]) -> dict[str, object]:
    """Re-measure days of a kept `cost` work folder on the code as it is now: before each,
    every table is rewound to the moment that day's first measured run started (the
    history it ran on), then the day runs again as in `cost`. Compares code on the same
    history without rebuilding 30 days of it."""
    from jobs.config import load_settings
    from jobs.spark import build_session

    landing, warehouse, events, conf = (out / n for n in ("landing", "warehouse", "eventlog",
                                                          "conf"))  # fmt: skip
    where = ["--landing", str(landing), "--warehouse", str(warehouse), "--conf", str(conf)]
    runs = []
    for day in days:
        first = (out / "logs" / f"{day.isoformat()}.log").read_text(encoding="utf-8")
        stamp = RUN_STAMP.search(first)
        if stamp is None:
            raise ValueError(f"no run id in {out / 'logs' / f'{day.isoformat()}.log'}")
        started = dt.datetime.strptime(stamp.group(1), "%Y%m%dT%H%M%S")
        settings = load_settings(conf_dir=conf, landing=str(landing), warehouse=str(warehouse))
        spark = build_session(settings, app_name="bench rewind")
        rewind(spark, warehouse, started)
        spark.stop()
        log = out / "logs" / f"rerun-{day.isoformat()}.log"
        seconds, peak = _timed("jobs.cli", "run", "--date", day.isoformat(), *where, log=log)
        runs.append({"date": day.isoformat(), "seconds": round(seconds, 1),
                     "peak_jvm_rss_mib": peak >> 20, **read_event_log(_newest(events)),
                     **stitching(log.read_text(encoding="utf-8"))})  # fmt: skip
    return {
        "benchmark": "cost-rerun",
        "preset": _landing_preset(landing),
        "work": str(out),
        "runs": runs,
        "last_over_first": round(runs[-1]["seconds"] / runs[0]["seconds"], 2),
    }


def _landing_preset(landing: Path) -> str:
    """The preset a generated landing folder was written with (its `_truth/summary.json`)."""
    summary = landing / "_truth" / "summary.json"
    try:
        return str(json.loads(summary.read_text(encoding="utf-8"))["preset"])
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cost-rerun: no preset in {summary} ({exc})") from exc


def _newest(folder: Path) -> Path:
    """The event log of the application that finished last."""
    return max(folder.iterdir(), key=lambda p: p.stat().st_mtime)


def _conf_with_event_log(target: Path, events: Path, source: Path) -> Path:
    """A copy of the conf folder `source` whose default profile writes Spark's event log to
    `events`."""
    import yaml

    shutil.copytree(source, target)
    events.mkdir(parents=True, exist_ok=True)
    path = target / "lakehouse.yaml"
    doc = yaml.safe_load(path.read_text())
    profile = doc["profiles"][doc["profile"]]
    profile.setdefault("spark_conf", {}).update({
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        "spark.eventLog.compress": "false",
    })  # fmt: skip
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


STITCHED = re.compile(
    r"stage silver\.identity took (?P<seconds>[\d.]+)s"
    r"|silver\.people: (?P<ids>\d+) identifiers re-stitched, \d+ changed person, "
    r"(?P<rounds>\d+) rounds, largest re-stitched component (?P<largest>\d+)"
)


def stitching(log: str) -> dict[str, float]:
    """Issue 3's figures from a run's log: stitching seconds (the silver.identity stage,
    a DEBUG line), identifiers re-stitched, component rounds, largest component."""
    found = {"stitching_seconds": 0.0, "restitched_ids": 0, "rounds": 0, "largest": 0}
    for m in STITCHED.finditer(log):
        if m["seconds"]:
            found["stitching_seconds"] += float(m["seconds"])
        else:
            found["restitched_ids"] += int(m["ids"])
            found["rounds"] = max(found["rounds"], int(m["rounds"]))
            found["largest"] = max(found["largest"], int(m["largest"]))
    return found


def _event_lines(path: Path) -> Iterator[str]:
    """The lines of an application's event log: one file, or (Spark 4 rolls its event logs
    by default) a folder `eventlog_v2_<app>` of `events_<n>_<app>` parts, in order."""
    if not path.is_dir():
        parts = [path]
    else:
        parts = sorted((p for p in path.iterdir() if p.name.startswith("events_")),
                       key=lambda p: int(p.name.split("_")[1]))  # fmt: skip
    for part in parts:
        with part.open(encoding="utf-8") as log:
            yield from log


def read_event_log(path: Path) -> dict[str, object]:
    """Bytes read by tasks (input metrics) and files read by scans ("number of files
    read", a driver-side SQL metric whose accumulator ids the plan events name), in all and
    per table (`files_read_by_table`, from each scan's location; "(log)" = Delta log files)."""
    scan_of: dict[int, str] = {}  # files-read accumulator id → table the scan reads
    updates: list[tuple[int, int]] = []  # may come before the plan that names the id
    bytes_read = jobs = 0
    for line in _event_lines(path):
        event = json.loads(line)
        kind = event.get("Event", "")
        if kind == "SparkListenerTaskEnd":
            metrics = event.get("Task Metrics") or {}
            bytes_read += (metrics.get("Input Metrics") or {}).get("Bytes Read", 0)
        elif kind == "SparkListenerJobStart":
            jobs += 1
        elif kind.endswith(("SparkListenerSQLExecutionStart",
                            "SparkListenerSQLAdaptiveExecutionUpdate")):  # fmt: skip
            scan_of |= _file_scans(event.get("sparkPlanInfo") or {})
        elif kind.endswith("SparkListenerDriverAccumUpdates"):
            updates += [(int(i), int(v)) for i, v in event.get("accumUpdates", [])]
    files_by_table: dict[str, int] = {}
    for i, v in updates:
        if (table := scan_of.get(i)) is not None:
            files_by_table[table] = files_by_table.get(table, 0) + v
    ranked = dict(sorted(files_by_table.items(), key=lambda kv: (-kv[1], kv[0])))
    return {"bytes_read": bytes_read, "files_read": sum(ranked.values()), "spark_jobs": jobs,
            "files_read_by_table": ranked}  # fmt: skip


SCANNED = re.compile(r"file:(?:[^,\]\s]*?/)?(landing/[a-z_]+|(?:bronze|silver|gold|ops)/[a-z_]+)"
                     r"(/_delta_log)?")  # fmt: skip


def _file_scans(plan: dict) -> dict[int, str]:
    """Accumulator id of each scan's "number of files read" → `layer.table` it reads."""
    found = {}
    for metric in plan.get("metrics", []):
        if metric.get("name") == "number of files read":
            m = SCANNED.search((plan.get("metadata") or {}).get("Location", ""))
            table = m[1].replace("/", ".") + (" (log)" if m[2] else "") if m else "other"
            found[metric["accumulatorId"]] = table
    for child in plan.get("children", []):
        found |= _file_scans(child)
    return found


def files_per_partition(spark, path: str) -> dict[str, float]:
    """Data files per partition and their mean size, from the table's current snapshot."""
    from pyspark.sql import functions as F

    meta = F.col("_metadata")
    files = (
        spark.read.format("delta")
        .load(path)
        .select(meta.file_path.alias("file"), meta.file_size.alias("size"), "tenant_id",
                "activity_date")
        .distinct()
    )  # fmt: skip
    per = files.groupBy("tenant_id", "activity_date").agg(
        F.count("file").alias("n"), F.sum("size").alias("size")
    )
    row = per.agg(F.count("*").alias("partitions"), F.avg("n").alias("mean"),
                  F.max("n").alias("max"), F.sum("n").alias("files"),
                  F.sum("size").alias("size")).first()  # fmt: skip
    return {
        "partitions": row.partitions,
        "files_per_partition_mean": round(row.mean or 0, 2),
        "files_per_partition_max": row.max or 0,
        "mean_file_kib": round((row.size or 0) / (row.files or 1) / 1024, 1),
    }


def _row(*cells: object) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def _small_files_row(table: str, before: dict, after: dict) -> str:
    return _row(table, after["partitions"],
                f"{before['files_per_partition_mean']} ({before['files_per_partition_max']})",
                f"{after['files_per_partition_mean']} ({after['files_per_partition_max']})",
                after["mean_file_kib"])  # fmt: skip


def _files_by_table_rows(runs: list[dict], top: int = 10) -> list[str]:
    """Files read per table, by run: the tables that read the most in the last run."""
    tables = list(runs[-1].get("files_read_by_table", {}))[:top]
    if not tables:
        return []
    return [
        "| files read by table | " + " | ".join(r["date"] for r in runs) + " |",
        "|---|" + "---|" * len(runs),
        *(_row(t, *(r["files_read_by_table"].get(t, 0) for r in runs)) for t in tables),
    ]


def _run_cells(run: dict) -> tuple:
    """The cells every timed run's row starts with (`cost`, `cost-rerun`)."""
    return (run["date"], run["seconds"], run["spark_jobs"], f"{run['bytes_read']:,}",
            run["files_read"], run["peak_jvm_rss_mib"])  # fmt: skip


def markdown(result: dict[str, object]) -> str:
    """A dated section of docs/benchmarks.md for one result."""
    m = result["machine"]
    lines = [
        f"## {result['started'][:10]} — `make bench`: {result['benchmark']} "
        f"({result['preset']} preset, generated)",
        "",
        f"Machine: {m['cpus']} cores, {m['memory']} memory, Python {m['python']}, "
        f"{m['platform']}. Command: `{result['command']}`.",
        "",
    ]
    if result["benchmark"] == "throughput":
        lines += [
            f"One delivery, {result['event_lines']:,} event lines "
            f"({result['landing_bytes']:,} landing bytes): pipeline {result['run_seconds']} s, "
            f"raw copy {result['raw_copy_seconds']} s — **{result['ratio_to_raw_copy']}×** "
            f"(target ≤ 4×); through Spark's JSON reader {result['json_copy_seconds']} s — "
            f"{result['ratio_to_json_copy']}×; {result['events_per_second']:,} events/s; "
            f"peak driver JVM resident memory {result['peak_jvm_rss_mib']['run']} MiB (raw "
            f"copy {result['peak_jvm_rss_mib']['raw_copy']} MiB, JSON reader "
            f"{result['peak_jvm_rss_mib']['json_copy']} MiB).",
            "",
            "| stage group | seconds |",
            "|---|---|",
            *(_row(g, s) for g, s in result["stage_group_seconds"].items()),
            "",
            "| analyst query | seconds | rows | files read (of the table's) | partitions read |",
            "|---|---|---|---|---|",
            *(
                _row(
                    q["query"],
                    q["seconds"],
                    q["rows"],
                    f"{q['files_read']} ({q['files_in_table']})",
                    q["partitions_read"],
                )
                for q in result["queries"]
            ),
        ]
    elif result["benchmark"] == "cost-rerun":
        lines += [
            f"Days of `{result['work']}` re-run on rewound history: last ÷ first "
            f"**{result['last_over_first']}**.",
            "",
            "| delivery | seconds | Spark jobs | bytes read | files read | peak JVM MiB |",
            "|---|---|---|---|---|---|",
            *(_row(*_run_cells(r)) for r in result["runs"]),
            "",
            *_files_by_table_rows(result["runs"]),
        ]
    elif result["benchmark"] == "cost":
        runs = result["runs"]
        middle = result.get("middle_backfill")
        lines += [
            f"{result['days']} deliveries, daily runs one process each"
            + (
                f" (deliveries {middle['start']} … {middle['end']} as one backfill, "
                f"{middle['seconds']} s)"
                if middle
                else ""
            )
            + f": last ÷ second run **{result['last_over_second']}** (target ≤ 1.3). "
            f"Compaction: {result['compaction']}.",
            "",
            "| delivery | seconds | Spark jobs | bytes read | files read | peak JVM MiB "
            "| stitching s | ids re-stitched | rounds | largest component |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *(
                _row(
                    *_run_cells(r),
                    r["stitching_seconds"],
                    r["restitched_ids"],
                    r["rounds"],
                    r["largest"],
                )
                for r in runs
            ),
            "",
            *_files_by_table_rows(runs),
            "",
            "| gold table | partitions | files/partition before (max) | after (max) | "
            "mean file KiB after |",
            "|---|---|---|---|---|",
            *(
                _small_files_row(t, result["small_files_before"][t], result["small_files_after"][t])
                for t in result["small_files_after"]
            ),
        ]
    else:
        lines += [
            f"{result['days']} daily runs {result['daily_total_seconds']} s "
            f"({', '.join(map(str, result['daily_run_seconds']))}); one backfill "
            f"{result['backfill_seconds']} s — ratio **{result['ratio']}** (target ≤ 0.5); "
            f"tables differing: {result['tables_differing'] or 'none'}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "benchmark", choices=["throughput", "cost", "cost-rerun", "backfill", "raw-copy"]
    )
    parser.add_argument("--dates", nargs="+", type=dt.date.fromisoformat,
                        help="cost-rerun: the days of --out to re-measure")  # fmt: skip
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--days", type=int, help="cost, backfill: deliveries (30, 7)")
    parser.add_argument("--middle-backfill", action="store_true",
                        help="cost: deliveries 3..N-2 as one backfill")  # fmt: skip
    parser.add_argument("--out", type=Path, help="work folder (default bench/work/<name>)")
    parser.add_argument("--conf", type=Path,
                        help="cost: the conf folder to run with (default conf/)")  # fmt: skip
    parser.add_argument("--landing", type=Path, help="raw-copy: the landing to copy")
    parser.add_argument("--read", choices=RAW_READS, default="text",
                        help="raw-copy: lines as text, or through Spark's JSON reader")  # fmt: skip
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help=f"folder for the result JSON (default {RESULTS})")  # fmt: skip
    parser.add_argument("--markdown", action="store_true",
                        help="also append the result to docs/benchmarks.md")  # fmt: skip
    opts = parser.parse_args(argv)
    out = opts.out or PROJECT_DIR / "bench" / "work" / opts.benchmark
    if opts.benchmark == "raw-copy":
        if opts.landing is None or not opts.landing.is_dir():
            parser.error(f"raw-copy needs --landing <folder>; got {opts.landing}")
        raw_copy(opts.landing, out, opts.read)
        return 0
    command = " ".join(["python -m jobs.bench", *(argv or sys.argv[1:])])
    result = {"command": command, "machine": machine(),
              "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
    if opts.benchmark == "throughput":
        result |= throughput(opts.preset, out)
    elif opts.benchmark == "cost":
        if opts.conf is not None and not (opts.conf / "lakehouse.yaml").is_file():
            parser.error(f"--conf {opts.conf}: no lakehouse.yaml there")
        result |= cost(opts.preset, opts.days or 30, out, opts.middle_backfill, opts.conf)
    elif opts.benchmark == "cost-rerun":
        if not opts.dates or opts.out is None or not (opts.out / "logs").is_dir():
            parser.error("cost-rerun needs --out <a cost work folder> and --dates D [D ...]")
        result |= cost_rerun(opts.out, opts.dates)
    else:
        result |= backfill(opts.preset, opts.days or 7, out)
    opts.results.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (opts.results / f"{stamp}-{opts.benchmark}.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )
    print(json.dumps(result, indent=2))
    if opts.markdown:
        with DOC.open("a", encoding="utf-8") as doc:
            doc.write("\n" + markdown(result))
    return 0 if not result.get("tables_differing") else 1


if __name__ == "__main__":
    sys.exit(main())
