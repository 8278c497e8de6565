"""The run context: one run id threaded through logs, lineage columns and the run ledger."""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession

from jobs.config import Settings

if TYPE_CHECKING:
    from jobs.gates import Gatekeeper

# what `RunContext.stage` counts of each stage's Spark work, in `lakehouse.spark.JobCounter`'s order
SPARK_WORK = ("jobs", "stages", "tasks", "shuffle_read_bytes", "shuffle_write_bytes")


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"run_{now:%Y%m%dT%H%M%S}_{secrets.token_hex(3)}"


class _RunIdFilter(logging.Filter):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


def configure_logging(run_id: str, level: int | str | None = None) -> logging.Logger:
    """Log lines carry the run id: `12:00:01 INFO [run_…] bronze: …`.

    The level defaults to `LAKEHOUSE_LOG_LEVEL` (INFO when unset); DEBUG adds per-stage timings.
    """
    logger = logging.getLogger("lakehouse")
    level = level or os.environ.get("LAKEHOUSE_LOG_LEVEL", "INFO").upper()
    try:
        logger.setLevel(level)
    except ValueError as exc:
        raise ValueError(f"LAKEHOUSE_LOG_LEVEL: {exc}") from None
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(run_id)s] %(message)s", "%H:%M:%S")
    )
    handler.addFilter(_RunIdFilter(run_id))
    logger.addHandler(handler)
    logger.propagate = False
    return logger


@dataclass
class RunContext:
    """What every job of one run shares."""

    spark: SparkSession
    settings: Settings
    run_id: str
    command: str
    pii_key: bytes
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("lakehouse"))

    timings: dict[str, float] = field(default_factory=dict)
    # per stage name: Spark jobs, stages, tasks, shuffle bytes read and written (SPARK_WORK)
    spark_work: dict[str, dict[str, int]] = field(default_factory=dict)
    restated_partitions: int = 0
    _gates: Gatekeeper | None = field(default=None, repr=False)
    _counter: object | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # every Delta commit of the run carries its id (DESCRIBE HISTORY, `lakehouse partitions`)
        self.spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", self.run_id)
        self._listen()

    @property
    def gates(self) -> Gatekeeper:
        """The run's quality gates: every silver and gold write goes through them."""
        if self._gates is None:
            from jobs.gates import Gatekeeper  # quality pulls in Great Expectations lazily

            self._gates = Gatekeeper(self)
        return self._gates

    def path(self, table: str) -> str:
        return self.settings.table_path(table)

    def _listen(self) -> None:
        """Install the project's job counter (`lakehouse.spark.JobCounter`, built by
        `make setup`) on the session, once, before any job is to be counted."""
        if self._counter is None:
            try:
                jvm = self.spark.sparkContext._jvm
                self._counter = jvm.lakehouse.spark.JobCounter.install(
                    self.spark.sparkContext._jsc.sc()
                )
            except Exception:  # the class is not on the driver's class path
                self._counter = False

    @property
    def spark_jobs(self) -> dict[str, int]:
        """Spark jobs per stage name (from `spark_work`)."""
        return {name: work["jobs"] for name, work in self.spark_work.items()}

    def _add_work(self, name: str, group: str) -> dict[str, int]:
        """Add the Spark work of job group `group` to stage `name`; → that group's work."""
        work = self._work_of(group)
        total = self.spark_work.setdefault(name, dict.fromkeys(SPARK_WORK, 0))
        for key, value in work.items():
            total[key] += value
        return work

    def _work_of(self, group: str) -> dict[str, int]:
        """The Spark work of a job group: exact from the project's listener; without it,
        jobs only, from the status tracker (which forgets jobs past
        `spark.ui.retainedJobs`)."""
        if self._counter:
            counts = self._counter.take(group, 10_000)
            return {key: int(counts[i]) for i, key in enumerate(SPARK_WORK)}
        jobs = len(self.spark.sparkContext.statusTracker().getJobIdsForGroup(group))
        return {"jobs": jobs}

    OUTSIDE_STAGES = "outside stages"

    def start_run_group(self) -> None:
        """Run the jobs outside every stage (ledger writes, look-ups) under the run's own job
        group, so that `take_run_group` can count them."""
        self.spark.sparkContext.setJobGroup(f"{self.run_id}:run", self.command)

    def take_run_group(self) -> None:
        """Add the Spark work of the run's own job group (see `start_run_group`) as the
        pseudo-stage "outside stages"; counted again from zero after each call."""
        self._add_work(self.OUTSIDE_STAGES, f"{self.run_id}:run")

    def total_work(self) -> dict[str, int]:
        """The run's Spark work so far, every stage and the jobs outside them added up."""
        total = dict.fromkeys(SPARK_WORK, 0)
        for work in self.spark_work.values():
            for key, value in work.items():
                total[key] += value
        return total

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and count its Spark work (jobs, stages, tasks, shuffle bytes); both
        add up per name (`timings`, `spark_work`) and go to the debug log.
        The stage's jobs run under a job group named after the run and stage, so the Spark
        UI groups them the same way; a nested stage's jobs are its own, not the outer's."""
        sc = self.spark.sparkContext
        outer = sc.getLocalProperty("spark.jobGroup.id")
        group = f"{self.run_id}:{name}:{len(self.timings)}:{time.monotonic_ns()}"
        sc.setJobGroup(group, name)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            if outer is not None:
                sc.setJobGroup(outer, outer)
            else:
                sc.setLocalProperty("spark.jobGroup.id", None)
            work = self._add_work(name, group)
            self.timings[name] = self.timings.get(name, 0.0) + elapsed
            detail = ", ".join(f"{k} {v}" for k, v in work.items())
            self.log.debug(
                "stage %s took %.2fs in %d Spark jobs (%s)", name, elapsed, work["jobs"], detail
            )
