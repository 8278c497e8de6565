"""Preset sizes and the per-tenant plan derived from them; deterministic RNG seeding.

A preset fixes how many catalog tenants take part and the approximate totals per delivery
day (accounts, users, weekday events) across all tenants including the unregistered one.
Registered tenants share the totals by their catalog weight (Zipf), with floors so the
smallest tenant still has a 5-deep hierarchy and every hard case.

Every random draw comes from a `numpy.random.Generator` seeded from
(seed, tenant id, stream, day) via SHA-256, so output never depends on hash randomisation,
worker count or processing order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from jobs.generate.tenants import (
    TENANT_CATALOG,
    UNREGISTERED_TENANT,
    UNREGISTERED_TIMEZONE,
)

PresetName = Literal["tiny", "small", "medium"]


@dataclass(frozen=True)
class PresetSpec:
    """Approximate daily totals of one preset (weekday volumes; weekends are quieter)."""

    name: str
    tenants: int
    accounts: int
    users: int
    events_per_day: int
    lines_per_part: int  # event lines per `part-*` file before a new part starts
    gzip_level: int


PRESETS: dict[str, PresetSpec] = {
    "tiny": PresetSpec("tiny", 3, 40, 400, 5_000, 1_500, 6),
    "small": PresetSpec("small", 12, 600, 8_000, 150_000, 40_000, 6),
    "medium": PresetSpec("medium", 60, 10_000, 300_000, 3_000_000, 250_000, 1),
}
assert tuple(PRESETS) == get_args(PresetName)

# The unregistered tenant is the same size in every preset.
UNREGISTERED_ACCOUNTS = 3
UNREGISTERED_USERS = 25
UNREGISTERED_EVENTS = 300

MIN_ACCOUNTS = 8
MIN_USERS_PER_ACCOUNT = 6


@dataclass(frozen=True)
class TenantPlan:
    """What one generator task produces for one tenant."""

    tenant_id: str
    timezone: str
    ordinal: int  # position in the catalog; the unregistered tenant comes last
    registered: bool
    accounts: int
    users: int
    events_per_day: int
    seed: int  # the run seed
    lines_per_part: int
    gzip_level: int
    other_tenant: str  # a different tenant id, for tenant_mismatch faults


def validate_preset(preset: str) -> PresetSpec:
    """The spec of `preset`, or ValueError naming the allowed presets."""
    try:
        return PRESETS[preset]
    except KeyError:
        allowed = ", ".join(PRESETS)
        raise ValueError(f"unknown preset {preset!r}; allowed presets: {allowed}") from None


def tenant_plans(spec: PresetSpec, seed: int) -> list[TenantPlan]:
    """Per-tenant sizes for `spec`: the first `spec.tenants` catalog tenants, then the
    unregistered tenant."""
    chosen = TENANT_CATALOG[: spec.tenants]
    total_w = sum(t.weight for t in chosen)
    accounts = spec.accounts - UNREGISTERED_ACCOUNTS
    users = spec.users - UNREGISTERED_USERS
    events = spec.events_per_day - UNREGISTERED_EVENTS
    plans: list[TenantPlan] = []
    for ordinal, t in enumerate(chosen):
        share = t.weight / total_w
        n_acc = max(MIN_ACCOUNTS, round(accounts * share))
        n_users = max(MIN_USERS_PER_ACCOUNT * n_acc, round(users * share))
        other = chosen[(ordinal + 1) % len(chosen)].tenant_id if len(chosen) > 1 else "globex"
        plans.append(
            TenantPlan(
                t.tenant_id,
                t.timezone,
                ordinal,
                True,
                n_acc,
                n_users,
                max(200, round(events * share)),
                seed,
                spec.lines_per_part,
                spec.gzip_level,
                other,
            )
        )
    plans.append(
        TenantPlan(
            UNREGISTERED_TENANT,
            UNREGISTERED_TIMEZONE,
            len(chosen),
            False,
            UNREGISTERED_ACCOUNTS,
            UNREGISTERED_USERS,
            UNREGISTERED_EVENTS,
            seed,
            spec.lines_per_part,
            spec.gzip_level,
            chosen[0].tenant_id,
        )
    )
    return plans


def _key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def make_rng(seed: int, tenant_id: str, stream: str, day: int = 0) -> np.random.Generator:
    """An independent generator for (seed, tenant, stream, day)."""
    entropy = [seed & 0xFFFFFFFFFFFFFFFF, _key(tenant_id), _key(stream), day + 1_000_000]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
