"""The synthetic world of one tenant: accounts, people, memberships, devices, special cases.

A `World` is built once per tenant from its own RNG and then stays fixed for the run (daily
changes — CRM moves, billing, tickets — live in `crm.py`). Tables are columnar (numpy
arrays plus parallel lists of strings) so the event simulator can index them vectorised.

Special identity cases every tenant carries (so each appears in every preset, tiny too):

* a kiosk device shared by 5 users (> K = 3: the stitching guard must drop it);
* a device used by 3 users on day 0 and by a 4th from day 1 (crosses K: a later split);
* a device shared by exactly 3 users (at K: still links them);
* a shared mailbox ``team@<domain>`` identified by 4 different user ids;
* users migrated by `alias` (previous_id = an old numeric user id, or an anonymous id);
* users with a second SSO login linked only through their email (a merge);
* sign-ups whose anonymous visits on earlier days are identified later.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np

from jobs.generate import vocab
from jobs.generate.presets import TenantPlan
from jobs.generate.timeutil import FMT_MS_Z, day_start_ms

NEVER = 1_000_000  # a day index that never comes
ALWAYS = -1_000_000  # a day index that has always passed
MAX_DEPTH = 5

ROLE_P = np.array([0.0, 0.07, 0.58, 0.24, 0.04, 0.07])  # owner admin member viewer billing guest
EXTRA_ROLE_P = np.array([0.0, 0.15, 0.45, 0.30, 0.0, 0.10])
FMT_P = np.array([0.70, 0.08, 0.10, 0.05, 0.07])


def hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    """`n` random lowercase hex strings of `2 * nbytes` characters."""
    blob = rng.bytes(n * nbytes).hex()
    width = 2 * nbytes
    return [blob[i * width : (i + 1) * width] for i in range(n)]


def as_uuid(h: str) -> str:
    """A 32-hex-digit string shaped as a version-4 UUID."""
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters/digits of `text` (accents folded), for ids and emails."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _prefix_lookup(table: tuple[tuple[str, str], ...], tz: str, default: str) -> str:
    for prefix, value in table:
        if tz.startswith(prefix):
            return value
    return default


@dataclass
class World:
    """Everything fixed about one tenant for the run (see module docstring)."""

    plan: TenantPlan
    zone: ZoneInfo
    start: date
    locale: str
    region: str
    # accounts (CRM accounts first, then group-only workspaces)
    account_ids: list[str]
    account_names: list[str]
    account_domains: list[str]
    parent0: np.ndarray  # initial parent index, -1 = root
    tier: np.ndarray
    industry: np.ndarray
    employees: np.ndarray
    account_region: list[str]
    account_created_ms: np.ndarray
    crm_from_day: np.ndarray  # first day index in CRM snapshots; NEVER = group-only
    has_integration: np.ndarray
    # persons (members first, then anonymous visitors)
    n_members: int
    person_ids: list[str]
    is_visitor: np.ndarray
    user_id: list[str | None]
    legacy_user_id: list[str | None]
    alias_day: np.ndarray
    alias_kind: np.ndarray  # 0: previous_id = legacy user id, 1: previous_id = anonymous id
    second_user_id: list[str | None]
    second_from_day: np.ndarray
    signup_day: np.ndarray  # before it: anonymous visits only
    email: list[str | None]  # as the product stores it (case may vary)
    display_name: list[str]
    department: np.ndarray
    activity: np.ndarray
    primary_account: np.ndarray
    mem_start: np.ndarray
    mem_count: np.ndarray
    m_person: np.ndarray
    m_account: np.ndarray
    m_role: np.ndarray
    dev_start: np.ndarray
    dev_count: np.ndarray
    pd_device: np.ndarray
    pd_from_day: np.ndarray
    # devices
    anon_id: list[str]
    device_id: list[str]
    dev_ua: np.ndarray
    dev_ip: list[str]
    dev_locale: list[str]
    dev_skew_ms: np.ndarray
    dev_fmt: np.ndarray
    dev_upgrade_u: np.ndarray
    # schema migration: share of devices on the v2 app on day d = base + slope * d
    v2_base: float
    v2_slope: float
    legacy_share: float
    # forced daily sessions for special cases: (person, device, from_day, to_day)
    forced: list[tuple[int, int, int, int]] = field(default_factory=list)
    special: dict[str, list[int]] = field(default_factory=dict)

    @property
    def n_accounts(self) -> int:
        return len(self.account_ids)

    @property
    def n_persons(self) -> int:
        return len(self.person_ids)

    def flavour_on(self, devices: np.ndarray, day: int) -> np.ndarray:
        """App flavour (0 legacy / 1 v1 / 2 v2) of each device on day index `day`."""
        share = min(1.0, max(0.0, self.v2_base + self.v2_slope * day))
        u = self.dev_upgrade_u[devices]
        flavour = np.where(u < share, 2, np.where(u > 1.0 - self.legacy_share, 0, 1))
        return flavour.astype(np.int8)

    def current_uid(self, person: int, day: int) -> str | None:
        """The user id `person` logs in with on day index `day` (None before sign-up)."""
        if self.signup_day[person] > day:
            return None
        legacy = self.legacy_user_id[person]
        if legacy is not None and day < self.alias_day[person]:
            return legacy
        return self.user_id[person]


def _build_accounts(
    plan: TenantPlan, rng: np.random.Generator, start: date, region: str
) -> dict[str, object]:
    n_crm = plan.accounts
    n_group_only = max(2, n_crm // 40)
    n = n_crm + n_group_only
    parent = np.full(n, -1, dtype=np.int64)
    depth = np.ones(n, dtype=np.int64)
    chain = min(MAX_DEPTH, n_crm)
    for i in range(1, chain):  # a guaranteed 5-deep chain: 0 -> 1 -> 2 -> 3 -> 4
        parent[i] = i - 1
        depth[i] = i + 1
    for i in range(chain, n_crm):
        if rng.random() < 0.4:
            continue
        eligible = np.flatnonzero(depth[:i] < MAX_DEPTH)
        p = int(eligible[rng.integers(len(eligible))])
        parent[i] = p
        depth[i] = depth[p] + 1
    for i in range(n_crm, n):  # group-only workspaces hang under CRM accounts (or each other)
        p = i - 1 if (i > n_crm and rng.random() < 0.5) else int(rng.integers(n_crm))
        if depth[p] >= MAX_DEPTH:
            p = int(rng.integers(chain, n_crm)) if n_crm > chain else 0
        parent[i] = p
        depth[i] = depth[p] + 1

    employees = np.clip(np.exp(rng.normal(5.0, 1.5, n)), 5, 200_000).astype(np.int64)
    if n_crm:
        employees[0] = max(int(employees[0]), 5_000)
    tier = np.where(employees > 1_000, 2, np.where(employees > 150, 1, 0)).astype(np.int64)
    tier[0] = 2
    industry = rng.integers(len(vocab.INDUSTRIES), size=n)

    root = np.arange(n)
    for i in range(n):
        r = i
        while parent[r] >= 0:
            r = int(parent[r])
        root[i] = r
    names: list[str] = [""] * n
    domains: list[str] = [""] * n
    seen_domains: dict[str, int] = {}
    for i in range(n):
        if root[i] == i:
            a = vocab.COMPANY_WORDS_A[rng.integers(len(vocab.COMPANY_WORDS_A))]
            b = vocab.COMPANY_WORDS_B[rng.integers(len(vocab.COMPANY_WORDS_B))]
            suffix = vocab.COMPANY_SUFFIXES[rng.integers(len(vocab.COMPANY_SUFFIXES))]
            names[i] = f"{a} {b} {suffix}"
            slug = ascii_slug(a + b)
            k = seen_domains.get(slug, 0)
            seen_domains[slug] = k + 1
            domains[i] = f"{slug}{k if k else ''}.example"
        else:
            base = names[root[i]].rsplit(" ", 1)[0]
            names[i] = f"{base} {vocab.SUBSIDIARY_WORDS[rng.integers(len(vocab.SUBSIDIARY_WORDS))]}"
            domains[i] = domains[root[i]]
    regions = [
        region if rng.random() < 0.7 else vocab.REGIONS[rng.integers(len(vocab.REGIONS))]
        for _ in range(n)
    ]
    crm_ids = ["acc_" + h for h in hex_ids(rng, n_crm, 5)]
    ws_ids = ["ws_" + h for h in hex_ids(rng, n_group_only, 5)]
    crm_from_day = np.zeros(n, dtype=np.int64)
    crm_from_day[n_crm:] = NEVER
    if n_crm > chain + 2:  # accounts created in the product first, synced to CRM later
        n_lag = max(1, n_crm // 50)
        lagged = rng.choice(np.arange(chain, n_crm), size=n_lag, replace=False)
        crm_from_day[lagged] = rng.integers(2, 7, size=n_lag)
        crm_from_day[lagged[0]] = 2
    created_ms = day_start_ms(start) - rng.integers(30, 2_000, size=n) * 86_400_000
    created_ms += rng.integers(0, 86_400_000, size=n)
    return {
        "account_ids": _dedupe(crm_ids + ws_ids),
        "account_names": names,
        "account_domains": domains,
        "parent0": parent,
        "tier": tier,
        "industry": industry,
        "employees": employees,
        "account_region": regions,
        "account_created_ms": created_ms,
        "crm_from_day": crm_from_day,
        "has_integration": rng.random(n) < 0.5,
        "n_crm": n_crm,
    }


def _dedupe(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i, value in enumerate(ids):
        if value in seen:
            value = f"{value}{i}"
        seen.add(value)
        out.append(value)
    return out


def build_world(plan: TenantPlan, rng: np.random.Generator, start: date) -> World:
    """Build the fixed world of one tenant."""
    zone = ZoneInfo(plan.timezone)
    locale = _prefix_lookup(vocab.LOCALES_BY_TZ_PREFIX, plan.timezone, "en-US")
    region = _prefix_lookup(vocab.REGION_BY_TZ_PREFIX, plan.timezone, "NA")
    acc = _build_accounts(plan, rng, start, region)
    n_acc = len(acc["account_ids"])  # type: ignore[arg-type]
    employees: np.ndarray = acc["employees"]  # type: ignore[assignment]
    parent0: np.ndarray = acc["parent0"]  # type: ignore[assignment]
    domains: list[str] = acc["account_domains"]  # type: ignore[assignment]

    # ---- people: members (one owner per account first), then anonymous visitors
    n_members = max(plan.users, n_acc + 2)
    n_visitors = max(3, plan.users // 12)
    n_persons = n_members + n_visitors
    primary = np.empty(n_members, dtype=np.int64)
    primary[:n_acc] = np.arange(n_acc)
    w = employees.astype(float) ** 0.6
    primary[n_acc:] = rng.choice(n_acc, size=n_members - n_acc, p=w / w.sum())
    role = rng.choice(len(vocab.ROLES), size=n_members, p=ROLE_P)
    role[:n_acc] = 0

    first = rng.integers(len(vocab.FIRST_NAMES), size=n_persons)
    last = rng.integers(len(vocab.LAST_NAMES), size=n_persons)
    display = [
        f"{vocab.FIRST_NAMES[f]} {vocab.LAST_NAMES[g]}"
        for f, g in zip(first.tolist(), last.tolist(), strict=True)
    ]
    department = rng.integers(len(vocab.DEPARTMENTS), size=n_persons)
    email: list[str | None] = [None] * n_persons
    taken: dict[str, int] = {}
    fancy = rng.random(n_members) < 0.12
    for p in range(n_members):
        local = (
            f"{ascii_slug(vocab.FIRST_NAMES[first[p]]) or 'user'}."
            f"{ascii_slug(vocab.LAST_NAMES[last[p]]) or str(p)}"
        )
        addr = f"{local}@{domains[primary[p]]}"
        k = taken.get(addr, 0)
        taken[addr] = k + 1
        if k:
            addr = f"{local}{k + 1}@{domains[primary[p]]}"
        if fancy[p]:  # stored with capitals, as typed at sign-up
            name_part, dom = addr.split("@")
            addr = ".".join(s.capitalize() for s in name_part.split(".")) + "@" + dom.upper()
        email[p] = addr
    for p in range(n_members, n_persons):  # prospects sign forms with private addresses
        local = f"{ascii_slug(vocab.FIRST_NAMES[first[p]]) or 'lead'}{p}"
        email[p] = f"{local}@{('mail', 'inbox', 'post')[p % 3]}.example"

    user_id: list[str | None] = [*_dedupe(["usr_" + h for h in hex_ids(rng, n_members, 8)])]
    user_id += [None] * n_visitors  # prospects have no login
    legacy: list[str | None] = [None] * n_persons
    second: list[str | None] = [None] * n_persons
    alias_day = np.full(n_persons, NEVER, dtype=np.int64)
    alias_kind = np.zeros(n_persons, dtype=np.int64)
    second_from = np.full(n_persons, NEVER, dtype=np.int64)
    signup_day = np.full(n_persons, ALWAYS, dtype=np.int64)
    signup_day[n_members:] = NEVER  # visitors never sign up

    activity = np.where(rng.random(n_persons) < 0.15, 0.0, np.exp(rng.normal(0.0, 0.8, n_persons)))
    activity[:n_members] *= np.where(np.isin(role, (0, 1)), 1.3, 1.0)
    activity[n_members:] = np.exp(rng.normal(-1.0, 0.5, n_visitors))

    # candidates for special cases: non-owner members, in random order
    pool = [int(p) for p in rng.permutation(np.arange(n_acc, n_members))]
    used: set[int] = set()
    special: dict[str, list[int]] = {}

    def take(k: int, same_account_as: int | None = None) -> list[int]:
        chosen: list[int] = []
        if same_account_as is not None:
            for p in pool:
                if len(chosen) >= k:
                    break
                if primary[p] == same_account_as and p not in used:
                    chosen.append(p)
                    used.add(p)
        for p in pool:
            if len(chosen) >= k:
                break
            if p not in used:
                chosen.append(p)
                used.add(p)
        return chosen

    counts = np.bincount(primary[n_acc:], minlength=n_acc)
    busiest = int(np.argmax(counts))
    special["mailbox"] = take(4, busiest)
    for p in special["mailbox"]:
        email[p] = f"team@{domains[primary[p]]}"
    special["kiosk"] = take(5, busiest)
    special["growing"] = take(4)
    special["at_k"] = take(3)
    n_alias = max(3, n_members // 100)
    special["alias"] = take(n_alias)
    for j, p in enumerate(special["alias"]):  # the first two migrate on days 0 and 1
        alias_day[p] = j if j < 2 else int(rng.integers(0, 10))
        alias_kind[p] = 0 if j < 2 else int(rng.random() < 0.4)
        if alias_kind[p] == 0:
            legacy[p] = str(1_000_000 + 7 * p + int(rng.integers(7)))
    n_sso = max(1, n_members // 80)
    special["sso"] = take(n_sso)
    for j, p in enumerate(special["sso"]):
        second[p] = "okta|" + hex_ids(rng, 1, 10)[0]
        second_from[p] = 1 if j == 0 else int(rng.integers(0, 7))
    n_signup = max(1, n_members // 150)
    special["signup"] = take(n_signup)
    for j, p in enumerate(special["signup"]):
        signup_day[p] = 1 if j == 0 else int(rng.integers(1, 8))
    for name in ("mailbox", "kiosk", "growing", "at_k", "alias", "sso", "signup"):
        activity[special[name]] = np.maximum(activity[special[name]], 1.0)

    # ---- memberships (CSR by person)
    m_person: list[int] = []
    m_account: list[int] = []
    m_role: list[int] = []
    extra = rng.random(n_members) < 0.08
    extra[:n_acc] = False
    for p in range(n_members):
        m_person.append(p)
        m_account.append(int(primary[p]))
        m_role.append(int(role[p]))
        if not extra[p]:
            continue
        others: list[int] = []
        for _ in range(1 + int(rng.random() < 0.35)):
            a = int(primary[p])
            if rng.random() < 0.5 and parent0[a] >= 0:
                cand = int(parent0[a])
            else:
                cand = int(rng.integers(n_acc))
            if cand != a and cand not in others:
                others.append(cand)
        for a in others:
            m_person.append(p)
            m_account.append(a)
            m_role.append(int(rng.choice(len(vocab.ROLES), p=EXTRA_ROLE_P)))
    m_person_arr = np.array(m_person, dtype=np.int64)
    mem_count = np.zeros(n_persons, dtype=np.int64)
    mem_count[:n_members] = np.bincount(m_person_arr, minlength=n_members)
    mem_start = np.concatenate(([0], np.cumsum(mem_count)[:-1]))

    # ---- devices: own devices per person, then shared ones
    own = 1 + np.minimum(3, rng.poisson(0.6, n_persons))
    own[n_members:] = 1
    n_shared = 3
    n_dev = int(own.sum()) + n_shared
    pd_device: list[int] = []
    pd_from: list[int] = []
    shared_lists: dict[int, list[tuple[int, int]]] = {}
    kiosk, growing, at_k = n_dev - 3, n_dev - 2, n_dev - 1
    for p in special["kiosk"]:
        shared_lists.setdefault(p, []).append((kiosk, 0))
    for j, p in enumerate(special["growing"]):
        shared_lists.setdefault(p, []).append((growing, 1 if j == 3 else 0))
    for p in special["at_k"]:
        shared_lists.setdefault(p, []).append((at_k, 0))
    dev_count = np.zeros(n_persons, dtype=np.int64)
    next_dev = 0
    for p in range(n_persons):
        for _ in range(int(own[p])):
            pd_device.append(next_dev)
            pd_from.append(0)
            next_dev += 1
        for d, from_day in shared_lists.get(p, []):
            pd_device.append(d)
            pd_from.append(from_day)
        dev_count[p] = own[p] + len(shared_lists.get(p, []))
    dev_start = np.concatenate(([0], np.cumsum(dev_count)[:-1]))
    forced = [(p, d, f, NEVER) for p in sorted(shared_lists) for d, f in shared_lists[p]]
    for p in special["mailbox"]:
        forced.append((p, int(pd_device[dev_start[p]]), 0, NEVER))
    crm_from: np.ndarray = acc["crm_from_day"]  # type: ignore[assignment]
    for a in np.flatnonzero(crm_from > 0).tolist():  # product-only accounts: owner logs in daily
        forced.append((a, int(pd_device[dev_start[a]]), 0, NEVER))
    for name, first_day in (("sso", second_from), ("signup", signup_day)):
        for j, p in enumerate(special[name]):
            # the first of each kind also visits on day 0, so a 1-day run shows the "before"
            day = int(first_day[p])
            forced.append((p, int(pd_device[dev_start[p]]), 0 if j == 0 else day, day))
    forced.sort()

    mobile = rng.random(n_dev) < 0.22
    dev_ua = np.where(
        mobile, rng.choice(sorted(vocab.MOBILE_AGENTS), size=n_dev), rng.integers(0, 5, size=n_dev)
    )
    raw = hex_ids(rng, n_dev, 16)
    anon_id = [
        as_uuid(h).upper() if m else as_uuid(h) for h, m in zip(raw, mobile.tolist(), strict=True)
    ]
    device_id = ["dev_" + h for h in hex_ids(rng, n_dev, 6)]
    octets = rng.integers(1, 255, size=(n_dev, 4))
    octets[:, 0] = rng.choice(np.array([23, 31, 45, 62, 81, 89, 103, 151, 185, 203]), size=n_dev)
    dev_ip = [f"{a}.{b}.{c}.{d}" for a, b, c, d in octets.tolist()]
    v6 = rng.random(n_dev) < 0.1
    for i in np.flatnonzero(v6).tolist():
        dev_ip[i] = f"2001:db8:{octets[i, 1]:x}:{octets[i, 2]:x}::{octets[i, 3]:x}"
    owner_locale: list[str] = [locale] * n_dev
    other = rng.random(n_dev) < 0.2
    for i in np.flatnonzero(other).tolist():
        owner_locale[i] = vocab.OTHER_LOCALES[int(rng.integers(len(vocab.OTHER_LOCALES)))]
    skewed = rng.random(n_dev) < 0.07
    skew = (
        np.where(skewed, rng.choice([-1, 1], size=n_dev) * rng.integers(120, 18_000, n_dev), 0)
        * 1000
    )
    fmt = rng.choice(len(FMT_P), size=n_dev, p=FMT_P)
    skew[kiosk:] = 0
    fmt[kiosk:] = FMT_MS_Z
    mode = plan.ordinal % 4
    v2_base, v2_slope, legacy_share = {
        0: (0.35, 0.08, 0.08),  # migrating during the period
        1: (0.90, 0.01, 0.04),  # mostly v2, a few v1 stragglers
        2: (0.10, 0.02, 0.15),  # mostly v1, many legacy SDKs
        3: (0.00, 0.20, 0.06),  # migrating fast from v1 to v2
    }[mode]

    return World(
        plan=plan,
        zone=zone,
        start=start,
        locale=locale,
        region=region,
        account_ids=acc["account_ids"],  # type: ignore[arg-type]
        account_names=acc["account_names"],  # type: ignore[arg-type]
        account_domains=domains,
        parent0=parent0,
        tier=acc["tier"],  # type: ignore[arg-type]
        industry=acc["industry"],  # type: ignore[arg-type]
        employees=employees,
        account_region=acc["account_region"],  # type: ignore[arg-type]
        account_created_ms=acc["account_created_ms"],  # type: ignore[arg-type]
        crm_from_day=acc["crm_from_day"],  # type: ignore[arg-type]
        has_integration=acc["has_integration"],  # type: ignore[arg-type]
        n_members=n_members,
        person_ids=[f"p{p:06d}" for p in range(n_persons)],
        is_visitor=np.arange(n_persons) >= n_members,
        user_id=user_id,
        legacy_user_id=legacy,
        alias_day=alias_day,
        alias_kind=alias_kind,
        second_user_id=second,
        second_from_day=second_from,
        signup_day=signup_day,
        email=email,
        display_name=display,
        department=department,
        activity=activity,
        primary_account=np.concatenate((primary, np.full(n_visitors, -1))),
        mem_start=mem_start,
        mem_count=mem_count,
        m_person=m_person_arr,
        m_account=np.array(m_account, dtype=np.int64),
        m_role=np.array(m_role, dtype=np.int64),
        dev_start=dev_start,
        dev_count=dev_count,
        pd_device=np.array(pd_device, dtype=np.int64),
        pd_from_day=np.array(pd_from),
        anon_id=anon_id,
        device_id=device_id,
        dev_ua=dev_ua,
        dev_ip=dev_ip,
        dev_locale=owner_locale,
        dev_skew_ms=skew.astype(np.int64),
        dev_fmt=fmt,
        dev_upgrade_u=rng.random(n_dev),
        v2_base=v2_base,
        v2_slope=v2_slope,
        legacy_share=legacy_share,
        forced=forced,
        special=special,
    )
