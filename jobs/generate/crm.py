"""Daily CRM, billing and support state of one tenant, and the rows each delivery holds.

* `accounts` (SPEC §3.2): a full snapshot of the tenant's CRM accounts every day. Accounts
  created in the product first appear from their `crm_from_day`; group-only workspaces
  never do. Every third day (day index 2, 5, 8, ...) one account moves to another parent,
  keeping the hierarchy acyclic and at most 5 deep.
* `subscriptions` (§3.3): a full snapshot every day; trials convert, payments fail and
  recover, subscriptions cancel, seats change, billing periods roll.
* `tickets` (§3.4): the tickets created or updated on that (tenant-local) day, one row each
  with its current state; some are updated again on later days, and now and then a row is
  exported a second time unchanged (a tie on `updated_at`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from jobs.generate import vocab
from jobs.generate.timeutil import (
    MS_PER_DAY,
    day_start_ms,
    iso_seconds_z,
    local_seconds_to_utc_ms,
)
from jobs.generate.world import MAX_DEPTH, World, hex_ids

STATUSES = ("trialing", "active", "past_due", "canceled")
TICKET_FLOW = ("new", "open", "pending", "solved", "closed")
PRIORITY_P = (0.3, 0.45, 0.2, 0.05)


@dataclass
class Subscription:
    subscription_id: str
    account: int
    plan: str
    price_cents: int
    status: str
    seats: int
    currency: str
    period_start: date
    trial_end_day: int
    canceled_at_ms: int | None


@dataclass
class Ticket:
    ticket_id: str
    account: int | None
    requester: str | None
    created_ms: int
    updated_ms: int
    status: int
    priority: int
    csat: int | None


class CrmState:
    """Mutable CRM / billing / support state; advance it one day at a time."""

    def __init__(self, world: World, rng: np.random.Generator) -> None:
        self.world = world
        self.parent = world.parent0.copy()
        self.employees = world.employees.copy()
        self.subs: list[Subscription] = []
        self.tickets: list[Ticket] = []
        self.moves = 0
        self._first_sub: dict[int, Subscription] | None = None
        n_crm = int(np.sum(world.crm_from_day < 1_000_000))
        seats_needed = np.bincount(world.m_account, minlength=world.n_accounts)
        sub_ids = hex_ids(rng, 2 * n_crm + 8, 6)
        start = world.start
        for a in range(n_crm):
            depth = self.depth(a)
            if depth >= 3 and rng.random() < 0.4:
                continue  # covered by a parent's subscription
            plan_idx = min(3, int(world.tier[a]) + int(rng.random() < 0.3))
            status = str(rng.choice(STATUSES, p=(0.1, 0.75, 0.07, 0.08)))
            self._add(a, plan_idx, status, seats_needed[a], sub_ids, rng, start)
            if rng.random() < 0.15:
                self._add(a, -1, "active", max(1, seats_needed[a] // 3), sub_ids, rng, start)
        forced = ("active", "trialing", "past_due", "canceled")
        for sub, status in zip(self.subs[1:5], forced, strict=False):  # every status, always
            sub.status = status
            if status == "canceled":
                sub.canceled_at_ms = day_start_ms(start) - int(rng.integers(1, 20)) * MS_PER_DAY
            if status == "trialing":
                sub.trial_end_day = int(rng.integers(1, 10))
        self.next_ticket = 10_000 + int(rng.integers(0, 80_000))
        for _ in range(max(2, world.n_accounts // 4)):  # an open backlog from before the run
            created = day_start_ms(start) - int(rng.integers(1, 20)) * MS_PER_DAY
            self._new_ticket(
                rng, created + int(rng.integers(0, MS_PER_DAY)), status=int(rng.integers(1, 3))
            )

    # ---- helpers
    def first_subscription(self, a: int) -> Subscription | None:
        """The account's first subscription (group traits show its plan and seats)."""
        if self._first_sub is None:
            self._first_sub = {}
            for sub in self.subs:
                self._first_sub.setdefault(sub.account, sub)
        return self._first_sub.get(a)

    def depth(self, a: int) -> int:
        d = 1
        while self.parent[a] >= 0 and d <= MAX_DEPTH + 1:
            a = int(self.parent[a])
            d += 1
        return d

    def _height(self, a: int) -> int:
        children = np.flatnonzero(self.parent == a)
        return 1 + max((self._height(int(c)) for c in children), default=0)

    def _subtree(self, a: int) -> set[int]:
        out = {a}
        for c in np.flatnonzero(self.parent == a).tolist():
            out |= self._subtree(c)
        return out

    def _add(
        self,
        a: int,
        plan_idx: int,
        status: str,
        seats_needed: int,
        sub_ids: list[str],
        rng: np.random.Generator,
        start: date,
    ) -> None:
        if plan_idx >= 0:
            plan, price = vocab.PLANS[plan_idx], vocab.PLAN_SEAT_PRICE_CENTS[plan_idx]
        else:
            plan, price = vocab.ADDON_PLAN, vocab.ADDON_SEAT_PRICE_CENTS
        seats = max(
            1, int(np.rint(float(seats_needed) * rng.uniform(0.9, 1.6))) + int(rng.integers(0, 3))
        )
        region = self.world.account_region[a]
        currency = (
            "GBP" if (region == "EMEA" and rng.random() < 0.3) else vocab.REGION_CURRENCY[region]
        )
        self.subs.append(
            Subscription(
                subscription_id="sub_" + sub_ids[len(self.subs)],
                account=a,
                plan=plan,
                price_cents=price,
                status=status,
                seats=seats,
                currency=currency,
                period_start=start - timedelta(days=int(rng.integers(0, 28))),
                trial_end_day=int(rng.integers(1, 14)) if status == "trialing" else -1,
                canceled_at_ms=(
                    day_start_ms(start) - int(rng.integers(1, 60)) * MS_PER_DAY
                    if status == "canceled"
                    else None
                ),
            )
        )

    def _requester(self, a: int, rng: np.random.Generator, day: int) -> str | None:
        w = self.world
        members = np.flatnonzero(w.m_account == a)
        if members.size == 0:
            return None
        p = int(w.m_person[members[rng.integers(members.size)]])
        return w.current_uid(p, day)

    def _new_ticket(
        self, rng: np.random.Generator, created_ms: int, status: int = 0, day: int = 0
    ) -> Ticket:
        w = self.world
        a = int(rng.integers(w.n_accounts))
        ticket = Ticket(
            ticket_id=f"TKT-{self.next_ticket}",
            account=None if rng.random() < 0.05 else a,
            requester=self._requester(a, rng, day),
            created_ms=created_ms,
            updated_ms=created_ms,
            status=status,
            priority=int(rng.choice(4, p=PRIORITY_P)),
            csat=None,
        )
        self.next_ticket += 1 + int(rng.integers(0, 3))
        self.tickets.append(ticket)
        return ticket

    # ---- daily evolution
    def advance(self, day: int, local_date: date, rng: np.random.Generator) -> list[Ticket]:
        """Apply day `day`'s changes; return the tickets touched that day (for export)."""
        w = self.world
        if day % 3 == 2:
            self._move_one(rng, day)
        drift = rng.random(len(self.employees)) < 0.02
        self.employees[drift] = np.maximum(
            5, (self.employees[drift] * rng.uniform(0.95, 1.08, int(drift.sum()))).astype(int)
        )
        today_ms = day_start_ms(local_date)
        for sub in self.subs:
            if sub.status == "canceled":
                continue
            r = rng.random()
            if sub.status == "trialing" and day >= sub.trial_end_day:
                sub.status = "active" if r < 0.7 else "canceled"
            elif sub.status == "active":
                if r < 0.004:
                    sub.status = "past_due"
                elif r < 0.006:
                    sub.status = "canceled"
                elif r < 0.04:
                    sub.seats = max(1, sub.seats + int(rng.choice([-3, -2, -1, 1, 2, 3, 5])))
            elif sub.status == "past_due":
                sub.status = "active" if r < 0.3 else ("canceled" if r < 0.4 else "past_due")
            if sub.status == "canceled":
                sub.canceled_at_ms = today_ms + int(rng.integers(0, MS_PER_DAY))
            while sub.period_start + timedelta(days=30) <= local_date:
                sub.period_start += timedelta(days=30)

        base = int(local_seconds_to_utc_ms(local_date, np.zeros(1), w.zone)[0])
        touched: list[Ticket] = []
        weekday = local_date.weekday() < 5
        n_new = int(rng.poisson(max(1.0, 0.05 * w.n_accounts) * (1.0 if weekday else 0.3)))
        for _ in range(max(1 if weekday else 0, n_new)):
            created = base + int(rng.integers(8 * 3_600_000, 19 * 3_600_000))
            touched.append(self._new_ticket(rng, created, day=day))
        new_ids = {t.ticket_id for t in touched}
        for t in self.tickets:
            if t.ticket_id in new_ids or t.status >= 4 or rng.random() > 0.35:
                continue
            t.status += 1
            t.updated_ms = max(
                t.updated_ms + 60_000, base + int(rng.integers(8 * 3_600_000, 20 * 3_600_000))
            )
            if t.status == 3 and rng.random() < 0.55:
                t.csat = int(rng.choice([1, 2, 3, 4, 5], p=(0.05, 0.07, 0.13, 0.35, 0.4)))
            touched.append(t)
        touched_ids = {t.ticket_id for t in touched}
        untouched = [
            t for t in self.tickets if t.ticket_id not in touched_ids and t.updated_ms < base
        ]
        if untouched and rng.random() < 0.5:  # re-exported unchanged (same updated_at)
            touched.append(untouched[int(rng.integers(len(untouched)))])
        return sorted(touched, key=lambda t: t.ticket_id)

    def _move_one(self, rng: np.random.Generator, day: int) -> None:
        w = self.world
        crm = np.flatnonzero(w.crm_from_day <= day)
        movable = crm[crm >= MAX_DEPTH]
        for _ in range(50):
            if movable.size == 0 or crm.size < 2:
                return
            a = int(movable[rng.integers(movable.size)])
            target = int(crm[rng.integers(crm.size)])
            if target == self.parent[a] or target in self._subtree(a):
                continue
            if self.depth(target) + self._height(a) > MAX_DEPTH:
                continue
            self.parent[a] = target
            self.moves += 1
            return

    # ---- snapshots / delivery rows
    def accounts_rows(self, day: int) -> list[dict[str, Any]]:
        w = self.world
        rows = []
        for a in np.flatnonzero(w.crm_from_day <= day).tolist():
            p = int(self.parent[a])
            created_ms = int(w.account_created_ms[a])
            renewal = date(1970, 1, 1) + timedelta(days=created_ms // MS_PER_DAY)
            while renewal <= w.start + timedelta(days=day):
                renewal = (
                    renewal.replace(year=renewal.year + 1)
                    if not (renewal.month == 2 and renewal.day == 29)
                    else renewal + timedelta(days=365)
                )
            rows.append(
                {
                    "account_id": w.account_ids[a],
                    "name": w.account_names[a],
                    "parent_account_id": w.account_ids[p] if p >= 0 else None,
                    "tier": vocab.TIERS[int(w.tier[a])],
                    "industry": vocab.INDUSTRIES[int(w.industry[a])],
                    "employee_count": int(self.employees[a]),
                    "region": w.account_region[a],
                    "renewal_date": renewal.isoformat(),
                    "created_at": iso_seconds_z(created_ms),
                }
            )
        return sorted(rows, key=lambda r: r["account_id"])

    def subscriptions_rows(self) -> list[dict[str, Any]]:
        rows = []
        for s in self.subs:
            end = s.period_start + timedelta(days=30)
            rows.append(
                {
                    "subscription_id": s.subscription_id,
                    "account_id": self.world.account_ids[s.account],
                    "plan": s.plan,
                    "status": s.status,
                    "seats": s.seats,
                    "mrr_cents": 0
                    if s.status in ("trialing", "canceled")
                    else s.seats * s.price_cents,
                    "currency": s.currency,
                    "current_period_start": iso_seconds_z(day_start_ms(s.period_start)),
                    "current_period_end": iso_seconds_z(day_start_ms(end)),
                    "canceled_at": (
                        iso_seconds_z(s.canceled_at_ms) if s.canceled_at_ms is not None else None
                    ),
                }
            )
        return sorted(rows, key=lambda r: r["subscription_id"])

    def ticket_rows(self, tickets: list[Ticket]) -> list[dict[str, Any]]:
        w = self.world
        return [
            {
                "ticket_id": t.ticket_id,
                "account_id": w.account_ids[t.account] if t.account is not None else None,
                "requester_user_id": t.requester,
                "created_at": iso_seconds_z(t.created_ms),
                "updated_at": iso_seconds_z(t.updated_ms),
                "status": TICKET_FLOW[t.status],
                "priority": ("low", "normal", "high", "urgent")[t.priority],
                "csat": t.csat,
            }
            for t in tickets
        ]
