"""The tables the pipeline writes: name (`layer.name`), partitioning and grain.

A table `layer.name` lives at `<warehouse>/<layer>/<name>` (SPEC §10).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_by: tuple[str, ...]
    grain: str


SOURCES = ("events", "accounts", "subscriptions", "tickets")

BRONZE = {
    source: TableSpec(
        f"bronze.{source}",
        ("tenant_id", "delivery_date"),
        f"one row per non-blank line landed in {source}/, raw text kept, with lineage",
    )
    for source in SOURCES
}

SILVER_EVENTS = TableSpec(
    "silver.events",
    ("tenant_id", "event_date"),
    "one row per surviving event (tenant_id, message_id), exactly once across deliveries",
)
SILVER_EVENT_DUPLICATES = TableSpec(
    "silver.events_duplicates",
    ("tenant_id", "event_date"),
    "one row per valid event line that lost to another copy of its (tenant_id, message_id)",
)
SILVER_EVENTS_REJECTED = TableSpec(
    "silver.events_rejected",
    ("tenant_id", "delivery_date"),
    "one row per rejected event line, with its reason code and raw text",
)
SILVER_DELIVERY_EVENT_DATES = TableSpec(
    "silver.delivery_event_dates",
    ("tenant_id",),
    "one row per (tenant_id, delivery_date, event_date) holding valid events of that delivery",
)
OPS_PIPELINE_RUNS = TableSpec(
    "ops.pipeline_runs", (), "one row per run and status change (started, succeeded, failed)"
)
OPS_QUALITY_RESULTS = TableSpec(
    "ops.quality_results",
    (),
    "one row per run, delivery, table and rule (and per tenant breaking a fail rule): "
    "the gate's verdict and the observed value",
)
OPS_DELIVERY_STATS = TableSpec(
    "ops.delivery_stats",
    (),
    "one row per run, tenant and delivery_date: landed, accepted, rejected by reason, duplicates",
)

OPS_REJECTED_FILES = TableSpec(
    "ops.rejected_files",
    (),
    "one row per run and landed file left out of its delivery because it cannot be read "
    "(a `.gz` that is truncated, corrupt or not gzip): tenant, source, date, file, reason",
)

# --- identity, attribution, sessions (SPEC §4.4–4.7) ---
SILVER_IDENTITY_EDGES = TableSpec(
    "silver.identity_edges",
    ("tenant_id", "event_date"),
    "one row per (tenant_id, event_date, src, dst) identity edge seen in that date's events; "
    "dst NULL marks a node; the evidence stitching is recomputed from",
)
SILVER_IDENTITY_MAP = TableSpec(
    "silver.identity_map",
    ("tenant_id",),
    "one row per identifier (tenant_id, id_type, id_value) with its person_id",
)
SILVER_IDENTITY_MERGES = TableSpec(
    "silver.identity_merges",
    ("tenant_id",),
    "one row per run and (old person, new person) pair whose identifiers moved between them",
)
SILVER_GROUP_CALLS = TableSpec(
    "silver.group_calls",
    ("tenant_id", "event_date"),
    "one row per surviving `group` call: identifiers, group_id, event_ts and group traits",
)
SILVER_SESSIONS = TableSpec(
    "silver.sessions",
    ("tenant_id", "event_date"),
    "one row per session (tenant_id, person_id, session_start_ts), dated by its first event",
)
SILVER_ACCOUNT_MEMBERSHIPS = TableSpec(
    "silver.account_memberships",
    ("tenant_id",),
    "one row per (tenant_id, person_id, account_id): role from traits, first and last seen",
)
SILVER_PERSON_ACCOUNT_DAILY = TableSpec(
    "silver.person_account_daily",
    ("tenant_id", "event_date"),
    "one row per (tenant_id, event_date, person_id, account_id) with any event: activity "
    "counts, features, first/last seen; the compact input of gold's windows",
)
OPS_RESTATEMENTS = TableSpec(
    "ops.restatements",
    ("tenant_id",),
    "one row per run, tenant, date and reason: the silver partitions gold must recompute",
)

# --- accounts, subscriptions, tickets, hierarchy (SPEC §3.2–3.4, §4.6) ---
SILVER_ACCOUNTS_SNAPSHOTS = TableSpec(
    "silver.accounts_snapshots",
    ("tenant_id", "delivery_date"),
    "one row per valid CRM account line of a delivery (the tenant's full snapshot that day)",
)
SILVER_SUBSCRIPTIONS = TableSpec(
    "silver.subscriptions",
    ("tenant_id", "delivery_date"),
    "one row per subscription per billing snapshot (delivery): snapshot history, typed",
)
SILVER_TICKET_VERSIONS = TableSpec(
    "silver.ticket_versions",
    ("tenant_id", "delivery_date"),
    "one row per valid ticket line of a delivery (a ticket created or updated that day)",
)
SILVER_TICKETS = TableSpec(
    "silver.tickets",
    ("tenant_id",),
    "one row per (tenant_id, ticket_id): the version with the latest updated_at",
)
SILVER_RECORDS_REJECTED = TableSpec(
    "silver.records_rejected",
    ("tenant_id", "delivery_date"),
    "one row per rejected accounts/subscriptions/tickets line: source, reason, raw line",
)
SILVER_ACCOUNTS = TableSpec(
    "silver.accounts",
    ("tenant_id",),
    "one row per (tenant_id, account_id, valid_from): SCD2 account attributes from CRM "
    "snapshots, else group traits",
)
SILVER_ACCOUNT_HIERARCHY = TableSpec(
    "silver.account_hierarchy",
    ("tenant_id", "as_of_date"),
    "one row per (tenant_id, as_of_date, account_id): effective parent, ancestors, depth",
)

# --- gold (SPEC §6) ---
GOLD_ACCOUNT_DAILY = TableSpec(
    "gold.account_daily",
    ("tenant_id", "activity_date"),
    "one row per (tenant_id, activity_date, account_id, scope) with mau_28d > 0",
)
GOLD_ACCOUNT_HOURLY = TableSpec(
    "gold.account_hourly",
    ("tenant_id", "activity_date"),
    "one row per (tenant_id, account_id, hour_start_utc) with a qualifying event (direct scope)",
)
GOLD_TENANT_DAILY = TableSpec(
    "gold.tenant_daily",
    ("tenant_id", "activity_date"),
    "one row per (tenant_id, activity_date) with a qualifying event",
)
GOLD_FEATURE_ADOPTION_DAILY = TableSpec(
    "gold.feature_adoption_daily",
    ("tenant_id", "activity_date"),
    "one row per (tenant_id, activity_date, account_id, scope, feature_key) with a 28-day adopter",
)
GOLD_ACCOUNT_HEALTH_DAILY = TableSpec(
    "gold.account_health_daily",
    ("tenant_id", "activity_date"),
    "one row per (tenant_id, activity_date, account_id, scope) active in 28 days or with seats",
)
GOLD_ACCOUNT_ACTIVATION = TableSpec(
    "gold.account_activation",
    ("tenant_id", "first_active_date"),
    "one row per (tenant_id, account_id): first active date, activation date, time to value",
)
GOLD_ACCOUNT_RETENTION_MONTHLY = TableSpec(
    "gold.account_retention_monthly",
    ("tenant_id", "activity_month"),
    "one row per (tenant_id, activity_month, cohort_month): accounts of the cohort active",
)
# --- erasure (SPEC §7 "Private"; `lakehouse forget`) ---
OPS_ERASED_IDENTIFIERS = TableSpec(
    "ops.erased_identifiers",
    ("tenant_id",),
    "one row per erasure request and identifier of the erased person: a keyed token of the "
    "identifier (never the identifier) and the request time; bronze suppresses later lines "
    "carrying it",
)
OPS_ERASURE_LOG = TableSpec(
    "ops.erasure_log",
    (),
    "one row per erasure request and status (started, completed, failed): what was removed "
    "from which table, the deliveries replayed, the VACUUM retention; no identifier",
)

# Columns that hold an identifier of a person (or a keyed pseudonym of one). Delta keeps no
# min/max statistics on them: statistics live in the transaction log, which VACUUM does not
# clean, so an erased identifier would otherwise outlive its rows (`delta_io.stats_option`).
IDENTIFIER_COLUMNS = frozenset({
    "raw_line", "user_id", "anonymous_id", "previous_id", "requester_user_id", "id_value",
    "person_id", "old_person_id", "new_person_id", "identifiers", "src", "dst", "node",
    "email_hash", "name_hash", "ip_hash", "token",
})  # fmt: skip

OPS_GOLD_PROGRESS = TableSpec(
    "ops.gold_progress",
    ("tenant_id",),
    "one row per tenant: the horizon gold is built to and the restatements it has consumed",
)
OPS_SILVER_PROGRESS = TableSpec(
    "ops.silver_progress",
    ("tenant_id",),
    "one row per silver pass, tenant and state (started, done): the table versions the pass "
    "compares against and the deliveries interrupted passes left half-built",
)
