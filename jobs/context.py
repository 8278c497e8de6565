"""The run context: one run id threaded through logs, lineage columns and the run ledger."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from jobs.config import Settings


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


def configure_logging(run_id: str, level: int = logging.INFO) -> logging.Logger:
    """Log lines carry the run id: `12:00:01 INFO [run_…] bronze: …`."""
    logger = logging.getLogger("lakehouse")
    logger.setLevel(level)
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

    def path(self, table: str) -> str:
        return self.settings.table_path(table)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; durations add up per name in `timings` and go to the debug log."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.timings[name] = self.timings.get(name, 0.0) + elapsed
            self.log.debug("stage %s took %.2fs", name, elapsed)
