"""`backfill` is one pass (gold built once) and equals daily runs; `--from-layer` rebuilds
from the warehouse without reading landing and changes nothing when logic has not changed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from jobs.config import load_settings
from jobs.pipeline import execute
from jobs.validation import InputError

from .conftest import TINY_DAYS, assert_same_rows, data_tables, read

pytestmark = pytest.mark.slow

DATA_TABLES = data_tables("bronze", "silver", "gold")  # ops.* are ledgers


def commits(settings, table: str) -> int:
    """How many commits a table's Delta log holds."""
    return len(list(Path(settings.table_path(table), "_delta_log").glob("*.json")))


@pytest.fixture(scope="module")
def one_pass(spark, tiny, tmp_path_factory):
    """The tiny landing replayed by one `backfill` into a warehouse of its own."""
    _, _, landing = tiny
    settings = load_settings(
        landing=str(landing), warehouse=str(tmp_path_factory.mktemp("one_pass") / "wh")
    )
    result = execute(settings, "backfill", TINY_DAYS, None, spark=spark)
    assert result.status == "succeeded", result.error
    return settings


def test_a_backfill_builds_gold_once_and_equals_daily_runs(spark, tiny, one_pass) -> None:
    daily, _, _ = tiny
    for table in DATA_TABLES:
        assert_same_rows(read(spark, one_pass, table), read(spark, daily, table))
    # one commit per gold table, where the daily runs made one per delivery
    assert commits(one_pass, "gold.account_daily") == 1
    assert commits(daily, "gold.account_daily") >= len(TINY_DAYS)
    assert commits(one_pass, "silver.events") == len(TINY_DAYS)


def test_rebuild_from_gold_and_from_silver_reads_no_landing(spark, one_pass, tmp_path) -> None:
    before = {t: read(spark, one_pass, t).localCheckpoint() for t in DATA_TABLES}
    gold_commits = commits(one_pass, "gold.account_daily")
    # a landing zone that does not exist: a rebuild must not need it
    rebuild = load_settings(landing=str(tmp_path / "nowhere"), warehouse=one_pass.warehouse)
    result = execute(rebuild, "backfill", TINY_DAYS, None, spark=spark, from_layer="gold")
    assert result.status == "succeeded", result.error
    assert commits(one_pass, "gold.account_daily") == gold_commits + 1  # really recomputed
    assert result.stats == ()
    # silver of one tenant from bronze, then its gold
    result = execute(rebuild, "backfill", TINY_DAYS, ["initech"], spark=spark, from_layer="silver")
    assert result.status == "succeeded", result.error
    assert {s.tenant_id for s in result.stats} == {"initech"}
    assert all(s.is_conserved and s.blank_lines == 0 for s in result.stats)
    for table in DATA_TABLES:
        assert_same_rows(read(spark, one_pass, table), before[table])
    history = DeltaTable.forPath(spark, one_pass.table_path("silver.events")).history(1)
    assert history.first().operationParameters["predicate"].count("initech") >= 1


@pytest.mark.parametrize(
    ("from_layer", "through", "flag"),
    [("platinum", "gold", "--from-layer"), ("bronze", "gold ", "--through"),
     ("gold", "silver", "--from-layer gold comes after --through silver")],
)  # fmt: skip
def test_bad_layers_are_refused_before_anything_runs(make_settings, from_layer, through, flag):
    settings = make_settings()
    with pytest.raises(InputError, match=flag):
        execute(settings, "run", [dt.date(2026, 3, 5)], from_layer=from_layer, through=through)
    assert not Path(settings.warehouse).exists()
