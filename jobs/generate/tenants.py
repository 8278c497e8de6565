"""The synthetic tenant catalog shared by the generator and `conf/tenants.yaml`.

`TENANT_CATALOG` lists the 60 registered tenants in a fixed order: id, IANA timezone and a
relative size weight. Weights follow a Zipf law over the catalog position (exponent 1.3), so
with all 60 tenants the first one (`acme`) produces about a third of all events, as SPEC §8
asks of the benchmark. Presets take a prefix of the catalog (`tiny` 3, `small` 12,
`medium` 60).

`UNREGISTERED_TENANT` is a tenant the generator always writes data for but which is *not*
registered in `conf/tenants.yaml`: its deliveries exercise the `unknown_tenant` path.

`conf/tenants.yaml` is rendered from this catalog by `render_tenants_yaml()`; a test keeps
the two in agreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ZIPF_EXPONENT = 1.3
UNREGISTERED_TENANT = "umbrella"
UNREGISTERED_TIMEZONE = "UTC"


@dataclass(frozen=True)
class TenantSpec:
    """One registered tenant: id, IANA timezone and relative size weight (>0)."""

    tenant_id: str
    timezone: str
    weight: float


# The three tenants the tests lean on: a DST zone, a half-hour offset zone and UTC.
_FIXED: tuple[tuple[str, str], ...] = (
    ("acme", "America/New_York"),
    ("globex", "Asia/Kolkata"),
    ("initech", "UTC"),
)

_MORE_IDS: tuple[str, ...] = (
    "hooli",
    "stark",
    "wayne",
    "soylent",
    "cyberdyne",
    "tyrell",
    "wonka",
    "oscorp",
    "aperture",
    "black-mesa",
    "vandelay",
    "dunder-mifflin",
    "pied-piper",
    "bluth",
    "nakatomi",
    "gringotts",
    "buy-n-large",
    "octan",
    "duff",
    "los-pollos",
    "sterling-cooper",
    "wernham-hogg",
    "virtucon",
    "spacely",
    "cogswell",
    "rekall",
    "weyland",
    "ingen",
    "yoyodyne",
    "monarch",
    "dharma",
    "abstergo",
    "sarif",
    "veidt",
    "lexcorp",
    "genco",
    "massive-dynamic",
    "prestige-worldwide",
    "blue-sun",
    "sirius-cybernetics",
    "omni-consumer",
    "mooby",
    "chotchkies",
    "lacuna",
    "stay-puft",
    "kwik-e-mart",
    "krusty",
    "zorg",
    "tessier-ashpool",
    "encom",
    "vehement",
    "bubba-gump",
    "mom-corp",
    "planet-express",
    "initrode",
    "contoso",
    "fabrikam",
)

_TIMEZONES: tuple[str, ...] = (
    "Europe/Berlin",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
    "Asia/Kolkata",
    "America/New_York",
    "Europe/London",
    "America/Chicago",
    "America/Sao_Paulo",
    "Asia/Singapore",
    "Europe/Paris",
    "America/Denver",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "Pacific/Auckland",
    "Africa/Johannesburg",
    "America/Toronto",
    "Europe/Madrid",
    "Asia/Dubai",
)

CATALOG_SIZE = 60


def _build_catalog() -> tuple[TenantSpec, ...]:
    pairs = list(_FIXED)
    for i, tenant_id in enumerate(_MORE_IDS):
        pairs.append((tenant_id, _TIMEZONES[i % len(_TIMEZONES)]))
    n = len(pairs)
    while len(pairs) < CATALOG_SIZE:  # deterministic filler should the name list run short
        pairs.append((f"tenant-{n:03d}", _TIMEZONES[n % len(_TIMEZONES)]))
        n += 1
    pairs = pairs[:CATALOG_SIZE]
    return tuple(
        TenantSpec(tenant_id, tz, round(1.0 / (rank + 1) ** ZIPF_EXPONENT, 6))
        for rank, (tenant_id, tz) in enumerate(pairs)
    )


TENANT_CATALOG: tuple[TenantSpec, ...] = _build_catalog()


def _check_catalog(catalog: tuple[TenantSpec, ...]) -> None:
    ids = [t.tenant_id for t in catalog]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate tenant ids in TENANT_CATALOG")
    if UNREGISTERED_TENANT in ids:
        raise ValueError(f"{UNREGISTERED_TENANT!r} must not be registered")
    for tenant_id in ids:
        if not TENANT_ID_PATTERN.match(tenant_id):
            raise ValueError(f"tenant id {tenant_id!r} does not match {TENANT_ID_PATTERN.pattern}")


_check_catalog(TENANT_CATALOG)


def render_tenants_yaml(catalog: tuple[TenantSpec, ...] = TENANT_CATALOG) -> str:
    """The text of `conf/tenants.yaml` for `catalog` (SPEC §2 format)."""
    lines = [
        "# Tenant registry (SPEC §2). Generated from jobs/generate/tenants.py:TENANT_CATALOG;",
        "# tests/test_generate.py keeps the generator's catalog and this file in agreement.",
        f"# The generator also writes data for the unregistered tenant {UNREGISTERED_TENANT!r},",
        "# which must stay out of this file (it exercises the unknown_tenant path).",
        "tenants:",
    ]
    for spec in catalog:
        lines.append(f"  - id: {spec.tenant_id}")
        lines.append(f"    timezone: {spec.timezone}")
    return "\n".join(lines) + "\n"
