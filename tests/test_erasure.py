"""`lakehouse forget`: a person erased from every layer and every retained file, the rest of
the warehouse exactly as if their lines had never landed, and their old events suppressed
when they are delivered again (issue 8 §4)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from jobs.delta_io import read_table
from jobs.erasure import forget, node_token, request_node
from jobs.pipeline import execute
from jobs.transforms.privacy import pseudonym_py

from .conftest import TEST_PII_KEY, assert_same_rows, data_tables, read, write_delivery

D1, D2, D3 = "2026-03-05", "2026-03-06", "2026-03-07"
EMAIL = "Erase.Me@Example.com"
ERASED_IDS = ("u-erase", "anon-e1", "anon-e2", "u-erase-old")


def ev(mid: str, ts: str, user: str | None, **kw: object) -> dict:
    line = {"message_id": mid, "type": "track", "event": "Report Viewed", "timestamp": ts, **kw}
    if user is not None:
        line["user_id"] = user
    return line


def erased_person(day: str, n: int) -> list[str | dict]:
    """Lines of the person to erase: stitched through a shared event, an identify with an
    email, an alias of an older user id; a group call, a duplicate, and a broken line."""
    t = f"{day}T1{n}:00:00Z"
    return [
        ev(f"e{n}a", t, "u-erase", anonymous_id="anon-e1", group_id="acct-1"),
        ev(f"e{n}a", t, "u-erase", anonymous_id="anon-e1", group_id="acct-1"),  # a retry
        {"message_id": f"e{n}i", "type": "identify", "timestamp": t, "user_id": "u-erase",
         "traits": {"email": f"  {EMAIL} ", "role": "admin"}},
        {"message_id": f"e{n}l", "type": "alias", "timestamp": t, "user_id": "u-erase",
         "previous_id": "anon-e2"},
        {"message_id": f"e{n}p", "type": "alias", "timestamp": t, "user_id": "u-erase",
         "previous_id": "u-erase-old"},
        {"message_id": f"e{n}g", "type": "group", "timestamp": t, "user_id": "u-erase",
         "group_id": "acct-1", "traits": {"name": "Acme One", "seats": 5}},
        ev(f"e{n}x", t, None, anonymous_id="anon-e2", event="Dashboard Shared"),
        f'{{"message_id": "e{n}b", "user_id": "u-erase", "timestamp": ',  # invalid JSON
    ]  # fmt: skip


def others(day: str, n: int) -> list[str | dict]:
    t = f"{day}T0{n}:30:00Z"
    return [
        ev(f"k{n}a", t, "u-keep", anonymous_id="anon-k", group_id="acct-1"),
        ev(f"k{n}b", t, "u-keep", group_id="acct-1", event="Dashboard Shared"),
        {"message_id": f"k{n}g", "type": "group", "timestamp": t, "user_id": "u-keep",
         "group_id": "acct-1", "traits": {"name": "Acme One", "seats": 5}},
        ev(f"k{n}c", t, "u-other", group_id="acct-2"),
        f'{{"message_id": "k{n}b", "user_id": "u-keep"',
    ]  # fmt: skip


def tickets(day: str, erased_requester: str | None) -> list[dict]:
    return [
        {"ticket_id": f"t-{day}", "account_id": "acct-1", "requester_user_id": erased_requester,
         "created_at": f"{day}T09:00:00Z", "updated_at": f"{day}T09:00:00Z", "status": "open",
         "priority": "high"},
        {"ticket_id": f"k-{day}", "account_id": "acct-1", "requester_user_id": "u-keep",
         "created_at": f"{day}T08:00:00Z", "updated_at": f"{day}T08:00:00Z", "status": "new",
         "priority": "low"},
    ]  # fmt: skip


def land(landing: Path, *, with_person: bool) -> None:
    for n, day in enumerate((D1, D2), start=1):
        lines = others(day, n) + (erased_person(day, n) if with_person else [])
        write_delivery(landing, "acme", day, lines)
        write_delivery(landing, "globex", day, [ev(f"g{n}", f"{day}T12:00:00Z", "u-erase")])
        requester = "u-erase" if with_person else None
        write_delivery(landing, "acme", day, tickets(day, requester), source="tickets")


def run_days(settings, spark, *days: str) -> None:
    dates = [dt.date.fromisoformat(d) for d in days]
    result = execute(settings, "run", dates, None, spark=spark)
    assert result.status == "succeeded", result.error


def needles(person_ids: list[str]) -> list[str]:
    """Every form an identifier of the erased person can take in a file (lower-cased)."""
    email_hash = pseudonym_py(TEST_PII_KEY.encode(), "email", "acme", EMAIL.strip().lower())
    return [*ERASED_IDS, EMAIL.lower(), email_hash, *person_ids]


def files_holding(warehouse: Path, values: list[str]) -> list[str]:
    """Every file under the warehouse (data, transaction log, checkpoints, Data Docs) that
    holds one of `values`, except the acme rows of other tenants… none are exempt: the
    globex copy of `u-erase` is another tenant's person and is looked for separately."""
    found = []
    for path in sorted(p for p in warehouse.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for name in table.column_names:
                column = table[name]
                if not pa.types.is_string(column.type):
                    continue
                text = "\n".join(v for v in column.to_pylist() if v is not None).lower()
                if "tenant_id=globex" in str(path):
                    continue  # another tenant's u-erase is not this person
                if any(v.lower() in text for v in values):
                    found.append(f"{path.relative_to(warehouse)} [{name}]")
        else:
            text = path.read_bytes().decode("utf-8", errors="replace").lower()
            hits = [v for v in values if v.lower() in text]
            if hits:
                found.append(f"{path.relative_to(warehouse)} {hits}")
    return found


@pytest.fixture(scope="module")
def erased(spark, tmp_path_factory):
    """Two warehouses: `before` gets the person's lines and then `forget`; `never` never
    got them. Both ran the same two deliveries through gold."""
    from jobs.config import load_settings

    from .conftest import write_conf

    root = tmp_path_factory.mktemp("erasure")
    conf = write_conf(root / "conf")
    settings = {}
    for name, with_person in (("before", True), ("never", False)):
        landing = root / f"landing_{name}"
        land(landing, with_person=with_person)
        settings[name] = load_settings(
            conf_dir=conf, landing=str(landing), warehouse=str(root / f"wh_{name}")
        )
        run_days(settings[name], spark, D1, D2)
    s = settings["before"]
    identity_map = read(spark, s, "silver.identity_map").where("tenant_id = 'acme'")
    persons = sorted(
        {r.person_id for r in identity_map.where(F.col("id_value") == "anon-e2").collect()}
    )
    assert len(persons) == 1
    # the whole person is one component: its identifiers and nothing of u-keep
    members = identity_map.where(F.col("person_id") == persons[0]).count()
    assert members == 7, members  # 4 values (an alias previous_id is both kinds), the email
    merges = read_table(spark, s.table_path("silver.identity_merges"))
    if merges is not None:  # earlier ids of the person, if it was ever merged
        rows = merges.where("tenant_id = 'acme'").collect()
        persons += [r.old_person_id for r in rows if r.new_person_id in persons]
    result = forget(s, "acme", "email", "erase.me@example.com ", 0.0, spark=spark)
    assert result.status == "completed", result.error
    return settings, result, sorted(set(persons))


def test_forget_removes_every_identifier_from_every_retained_file(erased) -> None:
    settings, result, persons = erased
    assert result.identifiers == 7
    assert result.rows_removed["bronze.events"] == 16  # 8 lines × 2 deliveries
    assert result.rows_removed["bronze.tickets"] == 2
    assert result.deliveries_replayed == [dt.date(2026, 3, 5), dt.date(2026, 3, 6)]
    assert result.tables_vacuumed >= 12  # every table with an identifier column
    warehouse = Path(settings["before"].warehouse)
    assert files_holding(warehouse, needles(persons)) == []
    # the scan can fail: the untouched warehouse holds the other tenant's u-erase, and the
    # same scan finds it there
    assert files_holding(Path(settings["never"].warehouse) / "silver" / "events", ["u-keep"])
    globex = [f for f in warehouse.rglob("*.parquet") if "tenant_id=globex" in str(f)]
    assert any("u-erase" in str(pq.read_table(f).to_pylist()) for f in globex)


def test_after_forget_silver_and_gold_are_as_if_the_lines_never_landed(spark, erased) -> None:
    settings, _, _ = erased
    for table in [*data_tables("silver", "gold"), "bronze.events", "bronze.tickets"]:
        drop = ("_run_id", "_ingested_at", "_source_file", "_computed_at")
        left, right = read(spark, settings["before"], table), read(spark, settings["never"], table)
        if "ticket" in table:  # the redacted line differs from `null` as json.dumps wrote it
            drop = (*drop, "_raw_hash", "raw_line")
        assert_same_rows(left, right, drop)


def test_the_erasure_log_and_the_ledger_hold_no_identifier(spark, erased) -> None:
    settings, result, persons = erased
    s = settings["before"]
    log = read(spark, s, "ops.erasure_log").where(F.col("request_id") == result.request_id)
    assert [r.status for r in log.orderBy("recorded_at").collect()] == ["started", "completed"]
    tokens = read(spark, s, "ops.erased_identifiers").where("tenant_id = 'acme'")
    key = TEST_PII_KEY.encode()
    expected = {node_token(key, "acme", request_node(key, "acme", "user_id", "u-erase"))}
    assert expected <= {r.token for r in tokens.collect()}
    for table in ("ops.erasure_log", "ops.pipeline_runs", "ops.erased_identifiers"):
        text = json.dumps([r.asDict() for r in read(spark, s, table).collect()], default=str)
        assert not [v for v in needles(persons) if v.lower() in text.lower()], table


def test_redelivered_old_lines_are_suppressed_and_new_ones_processed(spark, erased) -> None:
    settings, _, _ = erased
    s = settings["before"]
    # D1 arrives again, whole: the person's old lines must not come back
    result = execute(s, "run", [dt.date.fromisoformat(D1)], ["acme"], spark=spark)
    assert result.status == "succeeded", result.error
    (acme,) = [x for x in result.stats if x.tenant_id == "acme"]
    assert acme.erased_lines == 8 and acme.is_conserved, acme
    for table in ("silver.events", "silver.events_rejected", "silver.identity_map"):
        assert_same_rows(read(spark, s, table), read(spark, settings["never"], table),
                         ("_run_id", "_ingested_at", "_source_file"))  # fmt: skip
    tickets = read(spark, s, "silver.tickets").where("ticket_id = 't-2026-03-05'").collect()
    assert [t.requester_user_id for t in tickets] == [None]
    # a line received after the request is new: the same user id is processed again
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    new = ev("new1", f"{D3}T10:00:00Z", "u-erase", received_at=now)
    old = ev("old1", f"{D3}T11:00:00Z", "u-erase")  # no time after the request: old
    write_delivery(Path(s.landing), "acme", D3, [new, old])
    result = execute(s, "run", [dt.date.fromisoformat(D3)], ["acme"], spark=spark)
    assert result.status == "succeeded", result.error
    (acme,) = [x for x in result.stats if x.tenant_id == "acme"]
    assert (acme.accepted, acme.erased_lines) == (1, 1)
    kept = read(spark, s, "silver.events").where("tenant_id = 'acme' AND user_id = 'u-erase'")
    assert [r.message_id for r in kept.collect()] == ["new1"]


def test_tables_keep_no_statistics_on_identifier_columns() -> None:
    from pyspark.sql import types as T

    from jobs.delta_io import stats_option

    schema = T.StructType(
        [
            T.StructField("tenant_id", T.StringType()),
            T.StructField("user_id", T.StringType()),
            T.StructField("raw_line", T.StringType()),
            T.StructField("event_ts", T.TimestampType()),
            T.StructField("is_activity", T.BooleanType()),  # Delta cannot skip on booleans
            T.StructField("identifiers", T.ArrayType(T.StringType())),
        ]
    )
    assert stats_option(schema, ("tenant_id",)) == {"delta.dataSkippingStatsColumns": "`event_ts`"}
    only_ids = T.StructType([T.StructField(c, T.StringType()) for c in ("tenant_id", "src")])
    assert stats_option(only_ids, ("tenant_id",)) == {"delta.dataSkippingNumIndexedCols": "0"}
    gold = T.StructType([T.StructField("account_id", T.StringType())])
    assert stats_option(gold, ()) == {}  # no identifier: Delta's defaults


def test_rows_whose_bronze_has_expired_are_swept_and_gold_restated(spark, erased) -> None:
    """Runs last: it changes the `never` warehouse the tests above compare with. Bronze of
    the first delivery is gone (retention), so the replay cannot reach u-other's rows of
    that day; the sweep removes them and gold is rebuilt without u-other's account."""
    from delta.tables import DeltaTable

    settings, _, _ = erased
    s = settings["never"]
    DeltaTable.forPath(spark, s.table_path("bronze.events")).delete(f"delivery_date = '{D1}'")
    result = forget(s, "acme", "user_id", "u-other", 0.0, spark=spark)
    assert result.status == "completed", result.error
    assert result.deliveries_replayed == [dt.date.fromisoformat(D2)]
    assert result.rows_removed["sweep silver.events"] == 1
    assert files_holding(Path(s.warehouse), ["u-other"]) == []
    daily = read(spark, s, "gold.account_daily").where("tenant_id = 'acme'")
    assert daily.where("account_id = 'acct-2'").count() == 0
    assert daily.where("account_id = 'acct-1'").count() > 0  # u-keep's account is still there
