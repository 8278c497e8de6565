"""Configuration loading, input validation and CLI errors (no Spark needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from jobs.cli import app
from jobs.config import PROJECT_DIR, ConfigError, load_settings
from jobs.jars import JARS_DIR, spark_shipped_artifacts
from jobs.metrics_doc import render as render_metrics
from jobs.validation import InputError, parse_date, require_tenant_id

from .conftest import write_conf

runner = CliRunner()
TAXONOMY_V1 = {
    "report_viewed": "Report Viewed", "report_created": "Report Created",
    "dashboard_viewed": "Dashboard Viewed", "query_run": "Query Run",
    "dashboard_created": "Dashboard Created", "alert_created": "Alert Created",
    "export_created": "Export Created", "api_key_created": "API Key Created",
    "report_shared": "Report Shared", "comment_added": "Comment Added",
    "user_invited": "User Invited", "user_provisioned": "User Provisioned",
    "user_deprovisioned": "User Deprovisioned", "role_changed": "Role Changed",
    "permission_reviewed": "Permission Reviewed", "policy_updated": "Policy Updated",
    "sso_configured": "SSO Configured",
    "onboarding_step_completed": "Onboarding Step Completed",
    "experiment_exposed": "Experiment Exposed", "sync_completed": "Sync Completed",
    "email_digest_sent": "Email Digest Sent",
}  # fmt: skip


def test_project_conf_loads_and_maps_the_tracking_plan() -> None:
    settings = load_settings()
    assert settings.profile_name == "local"
    assert settings.table_path("silver.events").endswith("/silver/events")
    mapped = {e.name: e.v1_name for e in settings.taxonomy.events}
    assert mapped == TAXONOMY_V1
    assert {e.category for e in settings.taxonomy.events if e.name == "sync_completed"} == {
        "system"
    }
    assert "acme" in settings.tenants and "umbrella" not in settings.tenants


def test_locations_come_from_flag_then_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LAKEHOUSE_LANDING", "/env/landing")
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "s3a://bucket/wh")
    settings = load_settings()
    assert (settings.landing, settings.warehouse) == ("/env/landing", "s3a://bucket/wh")
    assert settings.table_path("gold.account_daily") == "s3a://bucket/wh/gold/account_daily"
    flagged = load_settings(landing="/flag/landing", warehouse=str(tmp_path))
    assert (flagged.landing, flagged.warehouse) == ("/flag/landing", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_CONF", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="LAKEHOUSE_CONF"):
        load_settings()


def merge(base: object, edit: object) -> object:
    """`edit` laid over `base`, recursively for mappings."""
    if isinstance(base, dict) and isinstance(edit, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in edit.items()}}
    return edit


@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        ("lakehouse.yaml", {"profiles": {"local": {"shuffle_partitons": 4}}},
         "profiles.local.shuffle_partitons: unknown key"),
        ("lakehouse.yaml", {"profiles": {"local": {"shuffle_partitions": "eight"}}},
         "profiles.local.shuffle_partitions: expected int"),
        ("lakehouse.yaml", {"identity": {"max_user_ids_per_identifier": 0}},
         "identity.max_user_ids_per_identifier"),
        ("lakehouse.yaml", {"profile": "prod"}, "profile: 'prod'"),
        ("tenants.yaml", {"tenants": [{"id": "Bad Id"}]}, "tenants[0].id"),
        ("tenants.yaml", {"tenants": [{"id": "a", "timezone": "Mars/Olympus"}]},
         "tenants[0].timezone"),
        ("tenants.yaml", {"tenants": [{"id": "a"}, {"id": "a"}]}, "duplicate tenant"),
        ("event_taxonomy.yaml",
         {"events": [{"name": "x", "v1_name": "X", "category": "fun"}]}, "events[0].category"),
        ("health_score.yaml", {"weights": {"growth": {"breath": 2}}},
         "weights.growth.breath: not one of"),
        ("health_score.yaml", {"bands": {"healthy": 30, "watch": 40}}, "bands"),
        ("health_score.yaml", {"targets": {"features_28d": "six"}},
         "targets.features_28d: expected a number"),
        ("health_score.yaml", {"ticket_weights": {"critical": 9}}, "ticket_weights.critical"),
        ("activation.yaml", {"within_days": 0}, "within_days: must be >= 1"),
    ],
)  # fmt: skip
def test_bad_config_names_file_and_key(tmp_path: Path, file, edit, message) -> None:
    conf = write_conf(tmp_path / "conf")
    doc = merge(yaml.safe_load((conf / file).read_text()), edit)
    (conf / file).write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_settings(conf_dir=conf)
    assert file in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    "bad",
    ["x' OR '1'='1", "../etc", "a,b", "ACME", "acmе", "", "-lead", "a" * 64, "a b", "a/b"],
)
def test_tenant_ids_are_validated(bad: str) -> None:
    with pytest.raises(InputError, match="--tenant"):
        require_tenant_id(bad, "--tenant")


def test_dates_are_validated() -> None:
    assert str(parse_date("2026-03-05", "--date")) == "2026-03-05"
    for bad in ("2026-3-5", "2026-02-30", "yesterday", "1999-12-31", "3026-01-01", "2026-03-05T00"):
        with pytest.raises(InputError, match="--date"):
            parse_date(bad, "--date")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["run", "--date", "2026-02-30"], "--date"),
        (["run", "--date", "2026-03-05", "--tenant", "x' OR '1'='1"], "--tenant"),
        (["run", "--date", "2026-03-05", "--tenant", "../../etc"], "--tenant"),
        (["run", "--date", "2026-03-05", "--tenant", "acm\u0435"], "--tenant"),  # Cyrillic е
        (["run", "--date", "2026-03-05", "--tenant", "acme,globex"], "--tenant"),
        (["run", "--date", "9999-99-99"], "--date"),
        (["run", "--date", "2026-03-05' OR '1'='1"], "--date"),
        (["backfill", "--start", "2026-03-05", "--end", "2999-12-31"], "--end"),
        (["backfill", "--start", "2026-03-05", "--end", "2026-03-01"], "--end"),
        (["generate", "--preset", "huge", "--out", "/tmp/x"], "--preset"),
        (["run", "--date", "2026-03-05", "--conf", "/no/such/conf"], "--conf"),
        (["run", "--date", "2026-03-05", "--through", "platinum"], "--through"),
        (
            ["backfill", "--start", "2026-03-05", "--end", "2026-03-06", "--from-layer", "x"],
            "--from-layer",
        ),
        (["forget", "--tenant", "x' OR '1'='1", "--user-id", "u1"], "--tenant"),
        (["forget", "--tenant", "acme"], "--user-id"),  # one identifier is required
        (["forget", "--tenant", "acme", "--user-id", "u1", "--email", "a@b.c"], "--email"),
        (["forget", "--tenant", "acme", "--user-id", "   "], "--user-id"),
        (["forget", "--tenant", "acme", "--user-id", "u1", "--retain-hours", "-1"], "--retain"),
    ],
)
def test_cli_errors_name_the_flag(args, flag, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(tmp_path / "wh"))
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert flag in result.output
    assert not (tmp_path / "wh").exists()


def test_docs_metrics_md_is_rendered_from_conf(tmp_path: Path) -> None:
    committed = (PROJECT_DIR / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert committed == render_metrics(load_settings()), "run `lakehouse metrics-doc`"
    out = tmp_path / "m.md"
    result = runner.invoke(app, ["metrics-doc", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == committed
    assert "| `mau_28d` |" in committed and "| trend | 10 | 15 | 10 | 10 |" in committed


def test_delta_jars_leave_out_what_spark_ships() -> None:
    shipped = spark_shipped_artifacts()
    jars = sorted(JARS_DIR.glob("*.jar"))
    assert any("delta-spark_" in j.name for j in jars), "make setup resolves the Delta jars"
    for jar in jars:
        artifact = jar.name.split("_", 1)[1].rsplit("-", 1)[0]
        assert artifact not in shipped, jar.name


def test_readme_leads_with_the_two_commands() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    head = readme[: readme.index("\n## ", readme.index("make test"))]
    assert "make demo" in head and "make test" in head
