"""Configuration: `conf/*.yaml` loaded into frozen, typed objects.

Every problem is reported as a `ConfigError` that names the file and the key at fault
(`conf/lakehouse.yaml: profiles.local.shuffle_partitions: expected int, got 'eight'`).
Unknown keys are errors too, so a typo never silently falls back to a default.

Where things live is decided here and only here (SPEC §10): landing root, warehouse root
and conf directory each come from a flag, else an environment variable
(`LAKEHOUSE_LANDING`, `LAKEHOUSE_WAREHOUSE`, `LAKEHOUSE_CONF`), else the embedded default
under the project folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import types
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
EVENT_CATEGORIES = (
    "core",
    "advanced",
    "collaboration",
    "admin",
    "onboarding",
    "experiment",
    "system",
)
HEALTH_COMPONENTS = (
    "breadth",
    "depth",
    "consistency",
    "admin_engagement",
    "collaboration",
    "support_load",
    "seat_utilization",
    "trend",
)
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
SEVERITIES = ("fail", "warn")  # of a quality rule: fail blocks the tenant, warn reports


class ConfigError(ValueError):
    """A configuration file is missing, malformed, or holds a bad value."""


# --------------------------------------------------------------------------- typed objects


@dataclass(frozen=True)
class SparkProfile:
    """How to reach Spark and where the warehouse lives for one deployment profile."""

    master: str = "local[*]"
    warehouse: str | None = None  # None: <project>/warehouse (the embedded default)
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    spark_conf: dict[str, str] = field(default_factory=dict)
    local_pii_key: bool = False  # demo/test only: generate .secrets/pii.key if no env key


@dataclass(frozen=True)
class DeltaConf:
    """Which Delta jars the session uses.

    `jars_dir` points at pre-downloaded jars (air-gapped clusters); when unset the session
    uses the jars `make setup` resolved into `.cache/jars`, and failing that the Maven
    coordinates (`spark.jars.packages`).
    """

    version: str = "4.4.0"
    maven_artifact: str = "io.delta:delta-spark_4.1_2.13"
    jars_dir: str | None = None


@dataclass(frozen=True)
class IdentityConf:
    """Identity-stitching settings (SPEC §4.4)."""

    max_user_ids_per_identifier: int = 3
    blocked_identifier_values: tuple[str, ...] = (
        "",
        "null",
        "undefined",
        "none",
        "nan",
        "0",
        "-1",
        "anonymous",
        "guest",
        "unknown",
        "[object object]",
    )


@dataclass(frozen=True)
class ValidationConf:
    """Limits of SPEC §4.1."""

    max_line_bytes: int = 1_048_576
    max_field_chars: int = 128
    max_json_depth: int = 64
    min_event_date: str = "2000-01-01"
    future_days: int = 2
    supported_schema_versions: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class OrchestrationConf:
    """How the Airflow DAGs of `dags/` schedule and run the jobs (docs/orchestration.md)."""

    daily_schedule: str = "0 6 * * *"  # cron, UTC; a run processes its data interval's date
    start_date: str = "2026-03-05"  # the first delivery date the daily DAG knows
    retries: int = 2
    retry_delay_minutes: int = 10
    max_active_runs: int = 1
    execution: str = "local"  # local: jobs run in the worker; cluster: spark-submit
    spark_conn_id: str = "spark_default"  # the Airflow connection SparkSubmitOperator uses
    maintenance_schedule: str = "30 3 * * 0"
    optimize_recent_days: int = 7  # OPTIMIZE partitions of the last N days
    vacuum_retention_hours: int = 168  # VACUUM keeps this much time travel (Delta: ≥ 168)
    bronze_retention_days: dict[str, int] = field(default_factory=lambda: {"default": 400})


@dataclass(frozen=True)
class PipelineConf:
    """`conf/lakehouse.yaml`."""

    profile: str = "local"
    profiles: dict[str, SparkProfile] = field(default_factory=lambda: {"local": SparkProfile()})
    delta: DeltaConf = field(default_factory=DeltaConf)
    identity: IdentityConf = field(default_factory=IdentityConf)
    validation: ValidationConf = field(default_factory=ValidationConf)
    orchestration: OrchestrationConf = field(default_factory=OrchestrationConf)


@dataclass(frozen=True)
class Tenant:
    """One registered tenant (SPEC §2)."""

    id: str
    timezone: str = "UTC"


@dataclass(frozen=True)
class TenantRegistry:
    """`conf/tenants.yaml`."""

    tenants: tuple[Tenant, ...] = ()

    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tenants)

    def __contains__(self, tenant_id: object) -> bool:
        return any(t.id == tenant_id for t in self.tenants)


@dataclass(frozen=True)
class TaxonomyEntry:
    """One tracking-plan event: its canonical (v2) name, v1 name, category and feature."""

    name: str
    v1_name: str
    category: str
    feature_key: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    """`conf/event_taxonomy.yaml` (SPEC §3.5)."""

    events: tuple[TaxonomyEntry, ...] = ()


@dataclass(frozen=True)
class MetricTable:
    version: str
    grain: str


@dataclass(frozen=True)
class Metric:
    name: str
    table: str
    version: str
    owner: str
    definition: str


@dataclass(frozen=True)
class MetricDictionary:
    """`conf/metrics.yaml`: gold tables (with the `metric_version` their rows carry) and the
    definition, owner and version of every metric."""

    tables: dict[str, MetricTable]
    metrics: tuple[Metric, ...] = ()

    def version_of(self, table: str) -> str:
        if table not in self.tables:
            raise ConfigError(f"metrics.yaml: tables: no entry for {table!r}")
        return self.tables[table].version


@dataclass(frozen=True)
class HealthTargets:
    """The value of each health input that scores 100 (support load: that scores 0)."""

    features_28d: float  # breadth: distinct features adopted over 28 days
    events_per_user_week: float  # depth: 7-day qualifying events per weekly active person
    dau_per_wau: float  # consistency: mean daily share of the week's active persons
    admin_actions_28d: float  # admin engagement
    collaboration_per_user_week: float  # collaboration: 7-day actions per weekly active person
    weighted_tickets_28d: float  # support load: priority-weighted tickets created in 28 days
    trend_full_change: float  # trend: relative mau_28d change vs 28 days earlier for 0 / 100


@dataclass(frozen=True)
class HealthBands:
    healthy: float  # score ≥ healthy → healthy
    watch: float  # score ≥ watch → watch; below → at_risk


@dataclass(frozen=True)
class HealthConf:
    """`conf/health_score.yaml`: account health (gold.account_health_daily)."""

    targets: HealthTargets
    bands: HealthBands
    ticket_weights: dict[str, float]
    weights: dict[str, dict[str, float]]  # tier (or `default`) → component → weight

    def weights_for(self, tier: str | None) -> dict[str, float]:
        """The tier's weights; components it does not list take the default's."""
        return {**self.weights["default"], **self.weights.get(tier or "default", {})}


@dataclass(frozen=True)
class ActivationConf:
    """`conf/activation.yaml`: when an account has reached first value."""

    min_active_users: int
    min_features: int
    within_days: int


@dataclass(frozen=True)
class QualityConf:
    """`conf/quality.yaml`: the Great Expectations gates (suites live in `expectations/`)."""

    suites_dir: str  # relative to the project folder unless absolute
    params: dict[str, float]  # thresholds the suites refer to as ${name} / $PARAMETER
    severity: dict[str, str] = field(default_factory=dict)  # "table:rule" → fail | warn
    trailing_deliveries: int = 7
    data_docs: bool = True

    def suites_path(self) -> Path:
        path = Path(self.suites_dir)
        return path if path.is_absolute() else PROJECT_DIR / path


# --------------------------------------------------------------------------- generic loader

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`, converting YAML lists to tuples."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {
            _coerce(k, args[0], f"{where}"): _coerce(v, args[1], f"{where}.{k}")
            for k, v in value.items()
        }
    if tp is str:
        # YAML turns `4g`-like values into strings already; numbers in spark_conf are fine.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{where}.{key}: unknown key (expected one of: {', '.join(sorted(known))})"
            )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required key is missing
        raise ConfigError(f"{where}: {exc}") from None


def _read_yaml(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_file(cls: type[T], path: Path) -> T:
    """Load one YAML file into the dataclass `cls`; errors start with the file name."""
    obj = _build(cls, _read_yaml(path), str(path))
    _check(obj, path)
    return obj


# --------------------------------------------------------------------------- semantic checks


def _check_orchestration(o: OrchestrationConf, where: str) -> None:
    if o.execution not in ("local", "cluster"):
        raise ConfigError(f"{where}.execution: {o.execution!r} is not one of local, cluster")
    try:
        dt.date.fromisoformat(o.start_date)
    except ValueError:
        raise ConfigError(f"{where}.start_date: {o.start_date!r} is not YYYY-MM-DD") from None
    for name in ("daily_schedule", "maintenance_schedule"):
        if len(getattr(o, name).split()) != 5:
            raise ConfigError(f"{where}.{name}: {getattr(o, name)!r} is not a 5-field cron")
    if o.max_active_runs < 1:
        raise ConfigError(f"{where}.max_active_runs: must be >= 1")
    for name in ("retries", "retry_delay_minutes", "optimize_recent_days"):
        if getattr(o, name) < 0:
            raise ConfigError(f"{where}.{name}: must be >= 0")
    if o.vacuum_retention_hours < 168:
        raise ConfigError(
            f"{where}.vacuum_retention_hours: {o.vacuum_retention_hours} is under Delta's "
            "safe minimum of 168 (a week): concurrent readers could lose files"
        )
    for tenant, days in o.bronze_retention_days.items():
        if tenant != "default" and not TENANT_ID_PATTERN.match(tenant):
            raise ConfigError(f"{where}.bronze_retention_days: {tenant!r} is not a tenant id")
        if days < 1:
            raise ConfigError(f"{where}.bronze_retention_days.{tenant}: must be >= 1")
    if "default" not in o.bronze_retention_days:
        raise ConfigError(f"{where}.bronze_retention_days: needs a 'default' entry")


def _check(obj: Any, path: Path) -> None:
    if isinstance(obj, PipelineConf):
        if obj.profile not in obj.profiles:
            raise ConfigError(f"{path}: profile: {obj.profile!r} is not one of profiles")
        if obj.identity.max_user_ids_per_identifier < 1:
            raise ConfigError(f"{path}: identity.max_user_ids_per_identifier: must be >= 1")
        for name, prof in obj.profiles.items():
            if prof.shuffle_partitions < 1:
                raise ConfigError(f"{path}: profiles.{name}.shuffle_partitions: must be >= 1")
        _check_orchestration(obj.orchestration, f"{path}: orchestration")
    elif isinstance(obj, TenantRegistry):
        seen: set[str] = set()
        for i, tenant in enumerate(obj.tenants):
            where = f"{path}: tenants[{i}]"
            if not TENANT_ID_PATTERN.match(tenant.id):
                raise ConfigError(
                    f"{where}.id: {tenant.id!r} does not match {TENANT_ID_PATTERN.pattern}"
                )
            if tenant.id in seen:
                raise ConfigError(f"{where}.id: duplicate tenant {tenant.id!r}")
            seen.add(tenant.id)
            try:
                zoneinfo.ZoneInfo(tenant.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ConfigError(
                    f"{where}.timezone: {tenant.timezone!r} is not an IANA time zone"
                ) from None
    elif isinstance(obj, MetricDictionary):
        seen_metrics: set[tuple[str, str]] = set()
        for i, metric in enumerate(obj.metrics):
            where = f"{path}: metrics[{i}]"
            if metric.table not in obj.tables:
                raise ConfigError(f"{where}.table: {metric.table!r} is not one of tables")
            if (metric.table, metric.name) in seen_metrics:
                raise ConfigError(f"{where}.name: {metric.name!r} is defined twice")
            seen_metrics.add((metric.table, metric.name))
    elif isinstance(obj, HealthConf):
        _check_health(obj, path)
    elif isinstance(obj, ActivationConf):
        for name in ("min_active_users", "min_features", "within_days"):
            if getattr(obj, name) < 1:
                raise ConfigError(f"{path}: {name}: must be >= 1")
    elif isinstance(obj, QualityConf):
        for key, value in obj.severity.items():
            if value not in SEVERITIES:
                raise ConfigError(f"{path}: severity.{key}: {value!r} is not one of fail, warn")
            if ":" not in key:
                raise ConfigError(f"{path}: severity.{key}: name a rule as 'layer.table:rule'")
        if obj.trailing_deliveries < 1:
            raise ConfigError(f"{path}: trailing_deliveries: must be >= 1")
        if not obj.suites_path().is_dir():
            raise ConfigError(f"{path}: suites_dir: {obj.suites_path()} is not a directory")
    elif isinstance(obj, Taxonomy):
        names: set[str] = set()
        for i, entry in enumerate(obj.events):
            where = f"{path}: events[{i}]"
            if entry.category not in EVENT_CATEGORIES:
                allowed = ", ".join(EVENT_CATEGORIES)
                raise ConfigError(f"{where}.category: {entry.category!r} is not one of {allowed}")
            for name in (entry.name, entry.v1_name):
                if name in names:
                    raise ConfigError(f"{where}: event name {name!r} is mapped twice")
                names.add(name)


def _check_health(obj: HealthConf, path: Path) -> None:
    for name, value in dataclasses.asdict(obj.targets).items():
        if value <= 0:
            raise ConfigError(f"{path}: targets.{name}: must be > 0")
    if not 0 <= obj.bands.watch < obj.bands.healthy <= 100:
        raise ConfigError(f"{path}: bands: need 0 <= watch < healthy <= 100")
    for priority, weight in obj.ticket_weights.items():
        if priority not in TICKET_PRIORITIES:
            allowed = ", ".join(TICKET_PRIORITIES)
            raise ConfigError(f"{path}: ticket_weights.{priority}: not one of {allowed}")
        if weight < 0:
            raise ConfigError(f"{path}: ticket_weights.{priority}: must be >= 0")
    if not obj.ticket_weights:
        raise ConfigError(f"{path}: ticket_weights: list at least one priority")
    if "default" not in obj.weights:
        raise ConfigError(f"{path}: weights: a `default` tier is required")
    for tier, weights in obj.weights.items():
        for component, weight in weights.items():
            if component not in HEALTH_COMPONENTS:
                allowed = ", ".join(HEALTH_COMPONENTS)
                raise ConfigError(f"{path}: weights.{tier}.{component}: not one of {allowed}")
            if weight < 0:
                raise ConfigError(f"{path}: weights.{tier}.{component}: must be >= 0")
    missing = [c for c in HEALTH_COMPONENTS if c not in obj.weights["default"]]
    if missing:
        raise ConfigError(f"{path}: weights.default: no weight for {', '.join(missing)}")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """Everything a job needs to know about its environment, resolved once."""

    conf_dir: Path
    landing: str
    warehouse: str
    profile_name: str
    pipeline: PipelineConf
    tenants: TenantRegistry
    taxonomy: Taxonomy
    metrics: MetricDictionary
    health: HealthConf
    activation: ActivationConf
    quality: QualityConf

    @property
    def profile(self) -> SparkProfile:
        return self.pipeline.profiles[self.profile_name]

    def table_path(self, qualified_name: str) -> str:
        """`layer.name` lives at `<warehouse>/<layer>/<name>` (SPEC §10)."""
        layer, _, name = qualified_name.partition(".")
        if not layer or not name:
            raise ValueError(f"table name {qualified_name!r} must be 'layer.name'")
        return f"{self.warehouse.rstrip('/')}/{layer}/{name}"

    def timezone_of(self, tenant_id: str) -> str:
        for tenant in self.tenants.tenants:
            if tenant.id == tenant_id:
                return tenant.timezone
        raise KeyError(tenant_id)


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def load_settings(
    conf_dir: str | Path | None = None,
    landing: str | None = None,
    warehouse: str | None = None,
    profile: str | None = None,
) -> Settings:
    """Resolve locations (flag > environment > default) and load every conf file."""
    conf = Path(
        _first(str(conf_dir) if conf_dir else None, os.environ.get("LAKEHOUSE_CONF"))
        or PROJECT_DIR / "conf"
    )
    if not conf.is_dir():
        raise ConfigError(f"{conf}: conf directory not found (--conf / LAKEHOUSE_CONF)")
    pipeline = load_file(PipelineConf, conf / "lakehouse.yaml")
    profile_name = _first(profile, os.environ.get("LAKEHOUSE_PROFILE")) or pipeline.profile
    if profile_name not in pipeline.profiles:
        raise ConfigError(
            f"{conf / 'lakehouse.yaml'}: profiles: no profile named {profile_name!r} "
            f"(--profile / LAKEHOUSE_PROFILE; known: {', '.join(sorted(pipeline.profiles))})"
        )
    prof = pipeline.profiles[profile_name]
    return Settings(
        conf_dir=conf,
        landing=_first(landing, os.environ.get("LAKEHOUSE_LANDING"))
        or str(PROJECT_DIR / "landing"),
        warehouse=_first(warehouse, os.environ.get("LAKEHOUSE_WAREHOUSE"), prof.warehouse)
        or str(PROJECT_DIR / "warehouse"),
        profile_name=profile_name,
        pipeline=pipeline,
        tenants=load_file(TenantRegistry, conf / "tenants.yaml"),
        taxonomy=load_file(Taxonomy, conf / "event_taxonomy.yaml"),
        metrics=load_file(MetricDictionary, conf / "metrics.yaml"),
        health=load_file(HealthConf, conf / "health_score.yaml"),
        activation=load_file(ActivationConf, conf / "activation.yaml"),
        quality=load_file(QualityConf, conf / "quality.yaml"),
    )
