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
    spark_jobs: dict[str, int] = field(default_factory=dict)
    restated_partitions: int = 0
    _gates: Gatekeeper | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # every Delta commit of the run carries its id (DESCRIBE HISTORY, `lakehouse partitions`)
        self.spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", self.run_id)

    @property
    def gates(self) -> Gatekeeper:
        """The run's quality gates: every silver and gold write goes through them."""
        if self._gates is None:
            from jobs.gates import Gatekeeper  # quality pulls in Great Expectations lazily

            self._gates = Gatekeeper(self)
        return self._gates

    def path(self, table: str) -> str:
        return self.settings.table_path(table)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and count its Spark jobs; both add up per name (`timings`,
        `spark_jobs`) and go to the debug log. The stage's jobs run under a job group named
        after the run and stage, so the Spark UI groups them the same way."""
        sc = self.spark.sparkContext
        outer = sc.getLocalProperty("spark.jobGroup.id")
        group = f"{self.run_id}:{name}:{len(self.timings)}:{time.monotonic_ns()}"
        sc.setJobGroup(group, name)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            jobs = len(sc.statusTracker().getJobIdsForGroup(group))
            if outer is not None:
                sc.setJobGroup(outer, outer)
            else:
                sc.setLocalProperty("spark.jobGroup.id", None)
            self.timings[name] = self.timings.get(name, 0.0) + elapsed
            self.spark_jobs[name] = self.spark_jobs.get(name, 0) + jobs
            self.log.debug("stage %s took %.2fs in %d Spark jobs", name, elapsed, jobs)
