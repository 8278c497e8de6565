"""Cluster mode, proved on one machine: a Spark standalone master and two workers on
loopback (from the installed pyspark), one delivery submitted with `spark-submit
jobs/submit.py run …`, and every silver and gold table compared with local mode.

    python -m jobs.cluster_check --landing L --date 2026-03-05 --out /tmp/cc
        [--reference WAREHOUSE]   # a local-mode warehouse of the same day (else built here)

`make cluster-check` runs it on generated tiny data. Exit status 0: the cluster run used
the workers' executors and its tables equal local mode's row for row.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import load_settings
from jobs.jars import JARS_DIR, resolved_jars

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_HOME = Path(__import__("pyspark").__file__).parent
COMPARED_LAYERS = ("silver", "gold")
NOT_COMPARED = ("_run_id", "_ingested_at", "silver.identity_merges")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {seconds:.0f}s") from None
            time.sleep(0.5)


@contextlib.contextmanager
def standalone_cluster(workdir: Path, workers: int = 2) -> Iterator[tuple[str, str]]:
    """Master and `workers` workers (1 core, 1 GiB each) on 127.0.0.1 → (master URL, master
    status URL). Everything is stopped on exit."""
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_WORKER_DIR": str(workdir / "work")}  # fmt: skip
    port, ui = free_port(), free_port()
    master_url, status_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}/json/"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    procs: list[subprocess.Popen] = []
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "w") as out:  # the child keeps its own descriptor
            procs.append(subprocess.Popen([spark_class, *args], env=env, stdout=out,
                                          stderr=subprocess.STDOUT))  # fmt: skip

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
              "--port", str(port), "--webui-port", str(ui))  # fmt: skip
        _wait_for(status_url)
        for i in range(workers):
            start(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                  "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()),
                  master_url)  # fmt: skip
        deadline = time.monotonic() + 60
        while len(_wait_for(status_url).get("workers", [])) < workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workers} workers did not register (see {logs})")
            time.sleep(0.5)
        yield master_url, status_url
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def submit(master_url: str, args: list[str], log: Path, spark_conf: Sequence[str] = ()) -> None:
    """`spark-submit jobs/submit.py <args>` against the standalone master; `spark_conf`:
    extra `KEY=VALUE` settings, which win over the profile's."""
    settings = load_settings()
    jars = resolved_jars(settings.pipeline.delta, JARS_DIR)
    if not jars:
        raise SystemExit("Delta jars are not resolved: run `make setup` first")
    command = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--master", master_url,
        "--deploy-mode", "client",
        "--name", "lakehouse cluster-check",
        "--jars", ",".join(str(j) for j in jars),
        "--driver-memory", "2g",
        "--executor-memory", "1g",
        "--total-executor-cores", "2",
        "--conf", f"spark.pyspark.python={sys.executable}",
        "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.sql.shuffle.partitions=4",
        *[arg for kv in spark_conf for arg in ("--conf", kv)],
        str(Path(__file__).with_name("submit.py")),
        *args,
    ]  # fmt: skip
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1"}
    with open(log, "w") as out:
        code = subprocess.call(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise SystemExit(f"spark-submit exited {code}; last lines of {log}:\n" + "\n".join(tail))


def compare(cluster_wh: str, reference_wh: str, spark: SparkSession | None = None) -> list[str]:
    """Names of the silver and gold tables whose rows differ (lineage columns aside), read
    with `spark` (a session of the caller's: the test suite's) or a local session built here."""
    if spark is None:
        from jobs.spark import build_session

        settings = load_settings(warehouse=reference_wh)
        local = {"spark.master": "local[2]", "spark.sql.shuffle.partitions": "4"}
        spark = build_session(settings, "lakehouse cluster-check compare", local)
    differ = []
    for layer in COMPARED_LAYERS:
        for table_dir in sorted(Path(reference_wh, layer).iterdir()):
            name = f"{layer}.{table_dir.name}"
            if name in NOT_COMPARED or not (table_dir / "_delta_log").is_dir():
                continue
            ref = spark.read.format("delta").load(str(table_dir))
            other = spark.read.format("delta").load(f"{cluster_wh}/{layer}/{table_dir.name}")
            cols = [c for c in ref.columns if c not in NOT_COMPARED]
            ref, other = ref.select(cols), other.select(cols)
            if ref.exceptAll(other).count() or other.exceptAll(ref).count():
                differ.append(name)
    return differ


def run_args(date: str, landing: str, warehouse: str) -> list[str]:
    """The `lakehouse run` arguments of one delivery, for the cluster and the local run."""
    return ["run", "--date", date, "--landing", landing, "--warehouse", warehouse]


def run_on_cluster(
    landing: str, date: str, out: Path, spark_conf: Sequence[str] = ()
) -> tuple[list[dict], float]:
    """Start the loopback cluster, submit the delivery `date` into `out`/cluster_wh, stop
    the cluster → (the master's completed applications, seconds). Raises SystemExit when
    the run failed or did not use the workers' executors."""
    shutil.rmtree(out / "cluster_wh", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with standalone_cluster(out) as (master_url, status_url):
        submit(master_url, run_args(date, landing, str(out / "cluster_wh")),
               out / "submit.log", spark_conf)  # fmt: skip
        apps = _wait_for(status_url).get("completedapps", [])
    if not apps or not any(a.get("cores", 0) >= 1 for a in apps):
        raise SystemExit(f"the application did not run on the standalone workers: {apps}")
    return apps, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--out", required=True, help="Folder for the warehouses and logs.")
    parser.add_argument("--reference", help="Local-mode warehouse of the same delivery.")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="A Spark setting for the cluster run (repeatable).")  # fmt: skip
    opts = parser.parse_args(argv)
    for kv in opts.spark_conf:
        if "=" not in kv or not kv.split("=", 1)[0].startswith("spark."):
            parser.error(f"--spark-conf {kv!r}: expected spark.KEY=VALUE")
    out = Path(opts.out)
    apps, cluster_seconds = run_on_cluster(opts.landing, opts.date, out, opts.spark_conf)
    reference = opts.reference
    if reference is None:
        reference = str(out / "local_wh")
        shutil.rmtree(reference, ignore_errors=True)
        subprocess.check_call([sys.executable, "-m", "jobs.cli",
                               *run_args(opts.date, opts.landing, reference)])  # fmt: skip
    differ = compare(str(out / "cluster_wh"), reference)
    print(f"cluster run: {cluster_seconds:.0f}s on {len(apps)} application(s), "
          f"executor cores {[a.get('cores') for a in apps]}")  # fmt: skip
    if differ:
        print(f"cluster and local mode differ in: {', '.join(differ)}")
        return 1
    print("cluster and local mode give identical silver and gold tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
