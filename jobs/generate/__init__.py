"""Deterministic synthetic landing data for the account-analytics lakehouse (SPEC §3).

`generate_landing(preset, days, seed, out, start)` writes, for every tenant of the preset
plus the unregistered tenant ``umbrella`` and every delivery date start .. start+days-1::

    <out>/events/tenant_id=<t>/delivery_date=<d>/part-00000.jsonl[.gz], ..., late-1.jsonl[.gz]
    <out>/accounts/tenant_id=<t>/delivery_date=<d>/accounts.jsonl[.gz]            full snapshot
    <out>/subscriptions/tenant_id=<t>/delivery_date=<d>/subscriptions.jsonl[.gz]  full snapshot
    <out>/tickets/tenant_id=<t>/delivery_date=<d>/tickets.jsonl[.gz]   created/updated that day

and the ground truth, outside the source folders so the pipeline never reads it::

    <out>/_truth/identities.jsonl   {"tenant_id","id_type","id_value","person"}: one line per
        identifier the data uses and true person behind it — a shared device or mailbox has
        one line per person (so an id_value can repeat); emails lower-cased and trimmed;
        blocked junk values ("undefined", ...) and ids only found in malformed lines are left
        out. `person` is unique within its tenant.
    <out>/_truth/memberships.jsonl  {"tenant_id","person","account_id","role"}
    <out>/_truth/faults.jsonl       {"tenant_id","delivery_date","file","line_no","reason"}:
        one line per malformed event line; `file` is relative to `out`, `line_no` is the
        1-based physical line (blank lines count).
    <out>/_truth/summary.json       the returned `GenerateSummary`

Modules: `tenants` (catalog), `presets` (sizes, seeding), `world` (accounts, people,
devices), `crm` (snapshots, tickets), `events` (activity simulation), `render` (JSON lines),
`faults` (malformed lines), `delivery` (file layout of an events delivery), `writers`
(JSONL/gzip), `landing` (orchestration).
"""

from jobs.generate.landing import DEFAULT_START, SOURCES, GenerateSummary, generate_landing
from jobs.generate.presets import PRESETS, PresetName, PresetSpec, validate_preset
from jobs.generate.tenants import (
    TENANT_CATALOG,
    UNREGISTERED_TENANT,
    TenantSpec,
    render_tenants_yaml,
)

__all__ = [
    "DEFAULT_START",
    "PRESETS",
    "SOURCES",
    "TENANT_CATALOG",
    "UNREGISTERED_TENANT",
    "GenerateSummary",
    "PresetName",
    "PresetSpec",
    "TenantSpec",
    "generate_landing",
    "render_tenants_yaml",
    "validate_preset",
]
