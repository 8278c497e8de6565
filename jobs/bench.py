"""Benchmarks that compare ways of doing the same work, side by side in one invocation.

    python -m jobs.bench backfill --preset tiny --days 7 [--out bench/work/backfill]

`backfill`: N daily runs (`lakehouse run --date D`, one process each — what a scheduler
does) against one `lakehouse backfill` over the same N deliveries into a second
warehouse; wall times, the ratio, and whether every silver and gold table came out the
same. Results go to stdout and `bench/results/<timestamp>-backfill.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from jobs.config import PROJECT_DIR

RESULTS = PROJECT_DIR / "bench" / "results"


def _lakehouse(*args: str) -> float:
    """Run the CLI in its own process (its own Spark driver); → wall seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jobs.cli", *args], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def machine() -> dict[str, object]:
    mem = ""
    with open("/proc/meminfo") as f:
        mem = f.readline().split(":")[1].strip()
    return {"cpus": os.cpu_count(), "memory": mem, "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip


def backfill(preset: str, days: int, out: Path) -> dict[str, object]:
    from jobs.cluster_check import compare
    from jobs.generate import DEFAULT_START, generate_landing

    shutil.rmtree(out, ignore_errors=True)
    landing = out / "landing"
    generate_landing(preset, days, 7, landing)
    dates = [DEFAULT_START + dt.timedelta(days=i) for i in range(days)]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=["backfill"])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "bench" / "work" / "backfill")
    opts = parser.parse_args(argv)
    command = " ".join(["python -m jobs.bench", *(argv or sys.argv[1:])])
    result = {"command": command, "machine": machine(),
              "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              **backfill(opts.preset, opts.days, opts.out)}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}-backfill.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if not result["tables_differing"] else 1


if __name__ == "__main__":
    sys.exit(main())
