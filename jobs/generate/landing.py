"""`generate_landing`: write a preset's landing zone and its ground truth.

One task per tenant (registered ones, then the unregistered tenant) builds the tenant's
world, then walks the delivery dates in order writing `accounts`, `subscriptions`,
`tickets` and `events` deliveries. Tasks run in a process pool for the larger presets; every
tenant draws from its own RNG seeded by (seed, tenant id), so the bytes written do not depend
on the number of workers or on scheduling.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from jobs.generate import vocab
from jobs.generate.crm import CrmState
from jobs.generate.delivery import LATE_BATCHES, Usage, deliver_events
from jobs.generate.events import expected_events_per_scale
from jobs.generate.presets import (
    PresetSpec,
    TenantPlan,
    make_rng,
    tenant_plans,
    validate_preset,
)
from jobs.generate.render import dumps
from jobs.generate.timeutil import OffsetTable
from jobs.generate.world import World, build_world
from jobs.generate.writers import landing_folder, write_lines

DEFAULT_START = date(2026, 3, 5)
SOURCES: tuple[str, ...] = ("events", "accounts", "subscriptions", "tickets")
TRUTH_DIR = "_truth"
SNAPSHOT_GZIP_LEVEL = 6


@dataclass(frozen=True)
class GenerateSummary:
    """What one `generate_landing` call wrote (also stored as `_truth/summary.json`)."""

    preset: str
    days: int
    seed: int
    start: str
    delivery_dates: list[str]
    tenants: list[str]  # every tenant written, the unregistered one last
    registered_tenants: list[str]
    unregistered_tenants: list[str]
    files_written: int
    bytes_written: int
    lines_written: dict[str, int]  # non-blank lines per source
    events_lines: int  # non-blank event lines (valid, duplicated and malformed)
    malformed_lines: int  # injected faults (see _truth/faults.jsonl)
    blank_lines: int
    retry_duplicate_lines: int  # same line again within a delivery
    redelivered_lines: int  # a line of an earlier delivery again
    late_events: int  # events delivered 1+ days after their event date
    events_by_tenant: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"preset={self.preset} days={self.days} seed={self.seed} start={self.start} "
            f"tenants={len(self.tenants)} files={self.files_written} "
            f"events_lines={self.events_lines} malformed={self.malformed_lines} "
            f"bytes={self.bytes_written}"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class TenantTask:
    plan: TenantPlan
    days: int
    start: date
    out: str


@dataclass
class TenantResult:
    tenant_id: str
    files: int = 0
    bytes: int = 0
    lines: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    blank_lines: int = 0
    faults: int = 0
    retries: int = 0
    redelivered: int = 0
    late_events: int = 0
    identities: str = ""
    memberships: str = ""
    fault_rows: str = ""


def _calibrated_scale(world: World, plan: TenantPlan) -> float:
    """Session-rate multiplier so a weekday lands near `plan.events_per_day` lines."""
    server = 1.2 * float(world.has_integration.sum()) + 0.12 * world.n_members
    late_share = sum(share for share, _, _ in LATE_BATCHES)
    client = plan.events_per_day / (1.0 + late_share) - server
    client = max(client, 0.3 * plan.events_per_day)
    return client / expected_events_per_scale(world)


def _truth_identities(world: World, usage: Usage) -> str:
    rows: list[tuple[str, str, str]] = []
    w = world
    for p in range(w.n_persons):
        pid = w.person_ids[p]
        for k, ids in enumerate((w.user_id, w.legacy_user_id, w.second_user_id)):
            value = ids[p]
            if value is not None and usage.uid[k, p]:
                rows.append(("user_id", value, pid))
        email = w.email[p]
        if email is not None and usage.email[p]:
            rows.append(("email", email.strip().lower(), pid))
    for p, d in usage.person_device:
        rows.append(("anonymous_id", w.anon_id[d], w.person_ids[p]))
    rows.sort()
    tenant = w.plan.tenant_id
    return "".join(
        dumps({"tenant_id": tenant, "id_type": t, "id_value": v, "person": p}) + "\n"
        for t, v, p in rows
    )


def _truth_memberships(world: World) -> str:
    w = world
    rows = sorted(
        (w.person_ids[p], w.account_ids[a], vocab.ROLES[r])
        for p, a, r in zip(
            w.m_person.tolist(), w.m_account.tolist(), w.m_role.tolist(), strict=True
        )
    )
    tenant = w.plan.tenant_id
    return "".join(
        dumps({"tenant_id": tenant, "person": p, "account_id": a, "role": r}) + "\n"
        for p, a, r in rows
    )


def run_tenant(task: TenantTask) -> TenantResult:
    """Generate every delivery of one tenant (runs in a worker process for big presets)."""
    plan = task.plan
    out = Path(task.out)
    tid = plan.tenant_id
    world = build_world(plan, make_rng(plan.seed, tid, "world"), task.start)
    crm = CrmState(world, make_rng(plan.seed, tid, "crm-init"))
    offsets = OffsetTable(
        world.zone, task.start - timedelta(days=20), task.start + timedelta(days=task.days)
    )
    scale = _calibrated_scale(world, plan)
    usage = Usage.empty(world)
    carry: dict[int, list[str]] = {}
    result = TenantResult(tid)
    fault_rows: list[dict[str, Any]] = []
    for day in range(task.days):
        delivery = task.start + timedelta(days=day)
        ds = delivery.isoformat()
        tickets = crm.advance(day, delivery, make_rng(plan.seed, tid, "crm", day))
        snapshots = (
            ("accounts", crm.accounts_rows(day)),
            ("subscriptions", crm.subscriptions_rows()),
            ("tickets", crm.ticket_rows(tickets)),
        )
        for k, (source, rows) in enumerate(snapshots):
            gz = (plan.ordinal + day + k) % 3 == 1
            path = landing_folder(out, source, tid, ds) / (
                f"{source}.jsonl" + (".gz" if gz else "")
            )
            n_lines, size = write_lines(
                path, (dumps(r) for r in rows), SNAPSHOT_GZIP_LEVEL if gz else None
            )
            result.lines[source] += n_lines
            result.files += 1
            result.bytes += size
        folder = landing_folder(out, "events", tid, ds)
        rel = folder.relative_to(out).as_posix()
        stats = deliver_events(
            world,
            crm,
            offsets,
            day,
            delivery,
            scale,
            make_rng(plan.seed, tid, "events", day),
            folder,
            rel,
            carry.pop(day, []),
            carry,
            usage,
            inject_faults=plan.registered,
        )
        result.lines["events"] += stats.event_lines
        result.files += stats.files
        result.bytes += stats.bytes
        result.blank_lines += stats.blank_lines
        result.faults += stats.faults
        result.retries += stats.retries
        result.redelivered += stats.redelivered
        result.late_events += stats.late_events
        fault_rows.extend(stats.fault_rows)
    result.identities = _truth_identities(world, usage)
    result.memberships = _truth_memberships(world)
    result.fault_rows = "".join(dumps(r) + "\n" for r in fault_rows)
    return result


def _worker_count(spec: PresetSpec, n_tasks: int, workers: int | None) -> int:
    if workers is not None:
        return max(1, min(workers, n_tasks))
    if spec.events_per_day <= 20_000:
        return 1  # process start-up would cost more than it saves
    return max(1, min(os.cpu_count() or 1, n_tasks, 8))


def generate_landing(
    preset: str,
    days: int,
    seed: int,
    out: Path,
    start: date = DEFAULT_START,
    *,
    workers: int | None = None,
) -> GenerateSummary:
    """Write `days` delivery dates of preset `preset` under `out` (SPEC §3) plus `_truth/`.

    Same (preset, days, seed, start) → byte-identical files. Files at the same paths are
    replaced; unrelated files are left alone. `workers` overrides the process count.
    """
    spec = validate_preset(preset)
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    out = Path(out)
    plans = tenant_plans(spec, seed)
    tasks = [TenantTask(p, days, start, str(out)) for p in plans]
    n_workers = _worker_count(spec, len(tasks), workers)
    results: dict[str, TenantResult] = {}
    if n_workers == 1:
        for task in tasks:
            results[task.plan.tenant_id] = run_tenant(task)
    else:
        by_size = sorted(tasks, key=lambda t: (-t.plan.events_per_day, t.plan.ordinal))
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(n_workers) as pool:
            for res in pool.imap_unordered(run_tenant, by_size, chunksize=1):
                results[res.tenant_id] = res
    ordered = [results[p.tenant_id] for p in plans]

    truth = out / TRUTH_DIR
    truth.mkdir(parents=True, exist_ok=True)
    for name, attr in (
        ("identities", "identities"),
        ("memberships", "memberships"),
        ("faults", "fault_rows"),
    ):
        (truth / f"{name}.jsonl").write_text(
            "".join(getattr(r, attr) for r in ordered), encoding="utf-8"
        )
    lines = {s: sum(r.lines[s] for r in ordered) for s in SOURCES}
    summary = GenerateSummary(
        preset=spec.name,
        days=days,
        seed=seed,
        start=start.isoformat(),
        delivery_dates=[(start + timedelta(days=d)).isoformat() for d in range(days)],
        tenants=[p.tenant_id for p in plans],
        registered_tenants=[p.tenant_id for p in plans if p.registered],
        unregistered_tenants=[p.tenant_id for p in plans if not p.registered],
        files_written=sum(r.files for r in ordered),
        bytes_written=sum(r.bytes for r in ordered),
        lines_written=lines,
        events_lines=lines["events"],
        malformed_lines=sum(r.faults for r in ordered),
        blank_lines=sum(r.blank_lines for r in ordered),
        retry_duplicate_lines=sum(r.retries for r in ordered),
        redelivered_lines=sum(r.redelivered for r in ordered),
        late_events=sum(r.late_events for r in ordered),
        events_by_tenant={r.tenant_id: r.lines["events"] for r in ordered},
    )
    (truth / "summary.json").write_text(summary.to_json(), encoding="utf-8")
    return summary
