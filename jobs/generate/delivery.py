"""One tenant's `events` delivery for one delivery date: what lands, in which file, in what order.

A delivery folder holds

* `part-00000.jsonl[.gz]`, `part-00001...`: the events the collector received that
  (tenant-local) day, in arrival order — on-time events, system events, offline devices
  flushing events from earlier days, retries of the same line (same message_id) a little
  later in the stream, re-deliveries of lines already delivered on an earlier date, about
  0.5% malformed lines (one fault each) and a few blank lines;
* `late-1.jsonl[.gz]` (sometimes also `late-2`): a late file — a slice of the day's events
  the exporter missed at first, plus a replay of events received days ago (event time
  several, occasionally 10+, days before the delivery date).

About 30% of the event files are gzip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from jobs.generate.crm import CrmState
from jobs.generate.events import (
    ALIAS,
    IDENTIFY,
    SR_BOTH,
    TRACK,
    UID_LEGACY,
    UID_NONE,
    EventBatch,
    server_events,
    simulate_sessions,
)
from jobs.generate.faults import SMALL_REASONS, make_fault
from jobs.generate.render import Renderer, dumps
from jobs.generate.timeutil import OffsetTable, format_instants, iso_ms_z, local_seconds_to_utc_ms
from jobs.generate.world import World
from jobs.generate.writers import LineWriter

FAULT_RATE = 0.005
RETRY_RATE = 0.005
CARRY_RATE = 0.003
LATE_SLICE = 0.02
# (share of the day's volume, lag range in days, goes to the late file)
LATE_BATCHES: tuple[tuple[float, tuple[int, int], bool], ...] = (
    (0.012, (1, 1), False),  # yesterday's offline devices flushing today
    (0.003, (2, 6), False),
    (0.002, (2, 6), True),  # exporter replay of events received days ago
    (0.0015, (10, 14), True),
)


@dataclass
class DayStats:
    """Counts of one tenant-day events delivery."""

    event_lines: int = 0  # non-blank lines written
    blank_lines: int = 0
    faults: int = 0
    retries: int = 0
    redelivered: int = 0
    late_events: int = 0
    files: int = 0
    bytes: int = 0
    fault_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Usage:
    """Which identifiers of the world the data actually used (for `_truth`)."""

    uid: np.ndarray  # (3, n_persons) current / legacy / second user id used
    email: np.ndarray  # (n_persons,)
    person_device: set[tuple[int, int]]

    @staticmethod
    def empty(world: World) -> Usage:
        return Usage(
            np.zeros((3, world.n_persons), dtype=bool), np.zeros(world.n_persons, dtype=bool), set()
        )

    def mark(self, world: World, batch: EventBatch, email_used: np.ndarray) -> None:
        has = batch.uid != UID_NONE
        self.uid[batch.uid[has], batch.person[has]] = True
        alias_legacy = (batch.kind == ALIAS) & np.array(
            [world.legacy_user_id[p] is not None for p in batch.person.tolist()], dtype=bool
        )
        self.uid[UID_LEGACY, batch.person[alias_legacy]] = True
        self.email[batch.person[email_used]] = True
        client = batch.device >= 0
        pairs = np.unique(np.stack((batch.person[client], batch.device[client]), axis=1), axis=0)
        self.person_device.update(map(tuple, pairs.tolist()))


@dataclass
class Item:
    """A non-event line in the stream: a fault, a blank, a retry or a re-delivered line."""

    kind: str  # "fault" | "blank" | "retry" | "carry"
    text: str = ""
    reason: str = ""
    event: int = -1


def _late_batches(
    world: World, day: int, delivery: date, scale: float, rng: np.random.Generator
) -> list[EventBatch]:
    out = []
    deliver_ms_base = local_seconds_to_utc_ms(delivery, np.zeros(1), world.zone)[0]
    for share, (lo, hi), to_late_file in LATE_BATCHES:
        lag = int(rng.integers(lo, hi + 1))
        when = delivery - timedelta(days=lag)
        batch = simulate_sessions(
            world, day - lag, when, scale * share, rng, special=False, min_sessions=1
        )
        n = len(batch)
        if n == 0:
            continue
        batch.sr_mode[:] = SR_BOTH
        if to_late_file:
            batch.late_file[:] = True
        else:  # the device was offline: it sends everything on the delivery day
            flush = (
                deliver_ms_base
                + rng.integers(8 * 3_600_000, 20 * 3_600_000, world.n_persons)[batch.person]
            )
            batch.sent_delay = np.maximum(flush - batch.ts, batch.sent_delay)
        out.append(batch)
    return out


def _choose_reasons(n: int, oversized: bool, rng: np.random.Generator) -> list[str]:
    reasons: list[str] = []
    while len(reasons) < n:
        reasons.extend(str(r) for r in rng.permutation(np.array(SMALL_REASONS)))
    reasons = reasons[:n]
    if oversized and reasons:
        reasons[int(rng.integers(len(reasons)))] = "oversized_record"
    return reasons


def deliver_events(
    world: World,
    crm: CrmState,
    offsets: OffsetTable,
    day: int,
    delivery: date,
    scale: float,
    rng: np.random.Generator,
    folder: Path,
    rel_folder: str,
    carry_in: list[str],
    carry_out: dict[int, list[str]],
    usage: Usage,
    *,
    inject_faults: bool,
) -> DayStats:
    """Simulate and write the events delivery of `delivery` (day index `day`)."""
    plan = world.plan
    stats = DayStats()
    batches = [
        simulate_sessions(world, day, delivery, scale, rng, special=True),
        server_events(world, day, delivery, rng),
    ]
    late = _late_batches(world, day, delivery, scale, rng)
    stats.late_events = sum(len(b) for b in late)
    batch = EventBatch.concat(batches + late)
    n = len(batch)
    batch.late_file |= rng.random(n) < LATE_SLICE
    renderer = Renderer(world, crm, batch, offsets, rng, day)
    email_used = (batch.kind == IDENTIFY) & (np.array(renderer.email_variant) < 0.95)
    email_used &= np.array([world.email[p] is not None for p in batch.person.tolist()], dtype=bool)
    usage.mark(world, batch, email_used)

    received = batch.ts + batch.sent_delay + batch.recv_delay
    main_idx = np.flatnonzero(~batch.late_file)
    late_idx = np.flatnonzero(batch.late_file)
    main_idx = main_idx[np.argsort(received[main_idx], kind="stable")]
    late_idx = late_idx[np.argsort(received[late_idx], kind="stable")]

    # ---- faults (a valid track event as the base of each), blanks, retries, carries
    n_faults = 0
    reasons: list[str] = []
    bases = np.flatnonzero(
        (batch.kind == TRACK) & (batch.uid != UID_NONE) & (batch.device >= 0) & ~batch.server
    )
    if inject_faults and bases.size:
        n_faults = max(3, int(rng.binomial(n, FAULT_RATE)))
        oversized = (plan.ordinal + day) % 4 == 0
        reasons = _choose_reasons(n_faults, oversized, rng)
    fault_items = []
    for reason in reasons:
        base = renderer.event_dict(int(bases[rng.integers(bases.size)]))
        mid = "ajs-next-" + rng.bytes(16).hex()
        text = make_fault(
            reason,
            base,
            rng,
            delivery_date=delivery,
            other_tenant=plan.other_tenant,
            message_id=mid,
        )
        fault_items.append(Item("fault", text=text, reason=reason))
    n_late_faults = 1 if len(fault_items) >= 3 and late_idx.size else 0
    main_specials: list[tuple[float, Item]] = []
    late_specials: list[tuple[float, Item]] = []
    for k, item in enumerate(fault_items):
        if k < n_late_faults:
            late_specials.append((float(rng.uniform(0, late_idx.size)), item))
        else:
            main_specials.append((float(rng.uniform(0, main_idx.size)), item))
    for _ in range(int(rng.integers(1, 4))):
        main_specials.append((float(rng.uniform(0, main_idx.size)), Item("blank")))
    for line in carry_in:
        main_specials.append((float(rng.uniform(0, main_idx.size)), Item("carry", text=line)))
    retry_pos = np.flatnonzero(rng.random(main_idx.size) < RETRY_RATE)
    for pos in retry_pos.tolist():
        delay = float(rng.integers(1, 3_000)) + 0.5
        main_specials.append((pos + delay, Item("retry", event=int(main_idx[pos]))))
    stats.retries = len(retry_pos)
    stats.redelivered = len(carry_in)

    # ---- lines to re-deliver on later dates (a few re-stamped: same event_ts, new clocks)
    carry_sel = np.flatnonzero(rng.random(main_idx.size) < CARRY_RATE)
    carry_events = {int(main_idx[pos]) for pos in carry_sel.tolist()}
    carry_later: dict[int, int] = {}
    for e in sorted(carry_events):
        carry_later[e] = day + (1 if rng.random() < 0.75 else int(rng.integers(2, 5)))
    restamp = sorted(e for e in carry_events if batch.sr_mode[e] == SR_BOTH and rng.random() < 0.15)
    restamped: dict[int, str] = {}
    if restamp:
        r_idx = np.array(restamp)
        shift = rng.integers(1_000, 120_000, r_idx.size)
        dev = np.maximum(batch.device[r_idx], 0)
        skew = np.where(batch.server[r_idx], 0, world.dev_skew_ms[dev])
        fmt = np.where(batch.server[r_idx], 0, world.dev_fmt[dev])
        sent = format_instants(
            batch.ts[r_idx] + batch.sent_delay[r_idx] + skew + shift, fmt, offsets
        )
        recv = iso_ms_z(received[r_idx] + shift)
        for j, e in enumerate(restamp):
            ev = renderer.event_dict(e)
            ev["sent_at"], ev["received_at"] = sent[j], recv[j]
            restamped[e] = dumps(ev)

    def stream(
        order: np.ndarray,
        specials: list[tuple[float, Item]],
        names: list[str],
        gz_flags: list[bool],
    ) -> None:
        keys = np.concatenate(
            (np.arange(order.size, dtype=float), np.array([k for k, _ in specials], dtype=float))
        )
        codes = np.concatenate((order, -1 - np.arange(len(specials))))
        plan_codes = codes[np.argsort(keys, kind="stable")].tolist()
        total = len(plan_codes)
        per_part = max(1, math.ceil(total / len(names)))
        retry_text: dict[int, str] = {}
        retry_events = {it.event for _, it in specials if it.kind == "retry"}
        for part, (name, gz) in enumerate(zip(names, gz_flags, strict=True)):
            chunk = plan_codes[part * per_part : (part + 1) * per_part]
            if not chunk:
                continue
            path = folder / (name + (".gz" if gz else ""))
            writer = LineWriter(path, plan.gzip_level if gz else None)
            for code in chunk:
                if code >= 0:
                    text = renderer.line(code)
                    if code in retry_events:
                        retry_text[code] = text
                    if code in carry_later:
                        carry_out.setdefault(carry_later[code], []).append(
                            restamped.get(code, text)
                        )
                    writer.write(text)
                    stats.event_lines += 1
                    continue
                item = specials[-1 - code][1]
                if item.kind == "blank":
                    writer.write("")
                    stats.blank_lines += 1
                    continue
                if item.kind == "retry":
                    text = retry_text.get(item.event) or renderer.line(item.event)
                else:
                    text = item.text
                line_no = writer.write(text)
                stats.event_lines += 1
                if item.kind == "fault":
                    stats.faults += 1
                    stats.fault_rows.append(
                        {
                            "tenant_id": plan.tenant_id,
                            "delivery_date": delivery.isoformat(),
                            "file": f"{rel_folder}/{path.name}",
                            "line_no": line_no,
                            "reason": item.reason,
                        }
                    )
            stats.bytes += writer.close()
            stats.files += 1

    main_total = main_idx.size + len(main_specials)
    n_parts = max(2, math.ceil(main_total / plan.lines_per_part))
    names = [f"part-{k:05d}.jsonl" for k in range(n_parts)]
    gz = [(plan.ordinal * 7 + day * 3 + k) % 10 in (0, 3, 6) for k in range(n_parts)]
    stream(main_idx, main_specials, names, gz)
    if late_idx.size or late_specials:
        n_late = 2 if (day % 3 == 1 and late_idx.size > 1) else 1
        late_names = [f"late-{k + 1}.jsonl" for k in range(n_late)]
        late_gz = [(plan.ordinal + day + k) % 4 == 1 for k in range(n_late)]
        stream(late_idx, late_specials, late_names, late_gz)
    return stats
