"""Simulated product activity of one tenant, as columnar `EventBatch`es.

`simulate_sessions` turns the fixed `World` into the events of one tenant-local day: people
open sessions (more on weekdays, mostly during the tenant's working hours), a session is a
run of events seconds to minutes apart (now and then a gap over 30 minutes), possibly
preceded by logged-out page views, a login `identify`, a `group` call naming the account
worked in, or an `alias` migrating an old id. Admin actions come only from owners and
admins; prospects browse anonymously and sometimes leave an e-mail (identify without a user
id). `server_events` adds system events (`sync_completed`, `email_digest_sent`).
`render.Renderer` turns a batch into JSON lines.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import numpy as np

from jobs.generate import vocab
from jobs.generate.timeutil import local_seconds_to_utc_ms
from jobs.generate.world import World

PAGE, TRACK, IDENTIFY, GROUP, ALIAS = 0, 1, 2, 3, 4
TYPE_NAMES = ("page", "track", "identify", "group", "alias")
UID_NONE, UID_CURRENT, UID_LEGACY, UID_SECOND = -1, 0, 1, 2
SR_BOTH, SR_NONE, SR_SENT_ONLY = 0, 1, 2

N_TAX = len(vocab.TAXONOMY)
N_NAMES = N_TAX + len(vocab.UNCATEGORIZED)
SYNC_NAME = next(i for i, e in enumerate(vocab.TAXONOMY) if e.v2_name == "sync_completed")
DIGEST_NAME = next(i for i, e in enumerate(vocab.TAXONOMY) if e.v2_name == "email_digest_sent")
WEEKDAY_FACTOR = (1.0, 1.05, 1.05, 1.0, 0.9, 0.22, 0.18)
MEAN_SESSION_EVENTS = 6.0
LONG_GAP_P = 0.03

_BASE_WEIGHTS = {
    "report_viewed": 20,
    "report_created": 4,
    "dashboard_viewed": 18,
    "query_run": 12,
    "dashboard_created": 2.5,
    "alert_created": 1.5,
    "export_created": 2,
    "api_key_created": 0.3,
    "report_shared": 3,
    "comment_added": 4,
    "user_invited": 0.8,
    "user_provisioned": 0.6,
    "user_deprovisioned": 0.3,
    "role_changed": 0.6,
    "permission_reviewed": 0.8,
    "policy_updated": 0.3,
    "sso_configured": 0.1,
    "onboarding_step_completed": 0.0,
    "experiment_exposed": 3,
    "sync_completed": 0.0,
    "email_digest_sent": 0.0,
}
_UNCATEGORIZED_WEIGHTS = (1.2, 0.8, 0.3)


def _name_table() -> np.ndarray:
    """P(track name | role, onboarding) as a (6, 2, N_NAMES) array."""
    table = np.zeros((len(vocab.ROLES), 2, N_NAMES))
    for role in range(len(vocab.ROLES)):
        for onboarding in (0, 1):
            w = np.array(
                [_BASE_WEIGHTS[e.v2_name] for e in vocab.TAXONOMY] + list(_UNCATEGORIZED_WEIGHTS),
                dtype=float,
            )
            for i, e in enumerate(vocab.TAXONOMY):
                if e.category == "admin":
                    w[i] *= 6.0 if role in vocab.ADMIN_ROLES else 0.0
                if role == 3 and e.v2_name.endswith("_created"):  # viewers rarely create
                    w[i] *= 0.1
                if e.category == "onboarding" and onboarding:
                    w[i] = 8.0
            table[role, onboarding] = w / w.sum()
    return table


NAME_P = _name_table()


@dataclass
class EventBatch:
    """Columnar events of one simulation pass (one row per event)."""

    person: np.ndarray
    device: np.ndarray  # -1: server-side (no anonymous_id, no context)
    account: np.ndarray  # account of the session, -1 none
    role: np.ndarray
    kind: np.ndarray
    name: np.ndarray  # track: name index; page: page index
    uid: np.ndarray  # UID_*
    has_group: np.ndarray  # group_id present on the line
    flavour: np.ndarray  # 0 legacy (no schema_version), 1, 2
    server: np.ndarray
    prelogin: np.ndarray
    ts: np.ndarray  # true event instant, epoch ms
    sent_delay: np.ndarray  # sent_at - true time (ms)
    recv_delay: np.ndarray  # received_at - sent_at (ms)
    sr_mode: np.ndarray  # SR_*
    late_file: np.ndarray  # route to the late-<n> file
    aux: np.ndarray  # random payload for properties

    def __len__(self) -> int:
        return len(self.person)

    @staticmethod
    def concat(batches: list[EventBatch]) -> EventBatch:
        return EventBatch(
            **{
                f.name: np.concatenate([getattr(b, f.name) for b in batches])
                for f in fields(EventBatch)
            }
        )

    def take(self, idx: np.ndarray) -> EventBatch:
        return EventBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(EventBatch)})


def base_uid_kind(world: World, persons: np.ndarray, day: int) -> np.ndarray:
    """The user id kind each person uses on `day` (before any per-session choice)."""
    kind = np.full(len(persons), UID_CURRENT, dtype=np.int8)
    has_legacy = (
        np.array([world.legacy_user_id[p] is not None for p in persons.tolist()], dtype=bool)
        if len(persons)
        else np.zeros(0, dtype=bool)
    )
    kind[has_legacy & (world.alias_day[persons] > day)] = UID_LEGACY
    kind[world.signup_day[persons] > day] = UID_NONE
    return kind


def _session_starts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Tenant-local seconds after midnight: two work-hour peaks, a day band, night owls."""
    comp = rng.random(n)
    morning = rng.normal(10.3 * 3600, 1.4 * 3600, n)
    afternoon = rng.normal(14.8 * 3600, 1.6 * 3600, n)
    day_band = rng.uniform(7 * 3600, 20 * 3600, n)
    anytime = rng.uniform(0, 86_400, n)
    secs = np.where(
        comp < 0.42,
        morning,
        np.where(comp < 0.84, afternoon, np.where(comp < 0.96, day_band, anytime)),
    )
    return np.clip(secs, 0, 86_399).astype(np.int64)


def simulate_sessions(
    world: World,
    day: int,
    local_date: date,
    scale: float,
    rng: np.random.Generator,
    *,
    special: bool,
    min_sessions: int = 0,
) -> EventBatch:
    """Client activity of local day `local_date` (day index `day`, may be < 0 for late data).

    `scale` multiplies every person's session rate; `special` adds the forced sessions of the
    world's special cases and the alias sessions of the day.
    """
    w = world
    n_p = w.n_persons
    lam = w.activity * scale * WEEKDAY_FACTOR[local_date.weekday()]
    lam = np.where(w.signup_day > day, lam * 0.5, lam)
    n_sess = rng.poisson(lam)
    if n_sess.sum() < min_sessions:
        active = np.flatnonzero(w.activity[: w.n_members] > 0)
        n_sess[active[rng.integers(active.size, size=min_sessions)]] += 1
    person = np.repeat(np.arange(n_p), n_sess)
    n_random = len(person)
    # device of random sessions: one of the person's devices already in use on `day`
    entry = w.dev_start[person] + (rng.random(n_random) * w.dev_count[person]).astype(np.int64)
    entry = np.where(w.pd_from_day[entry] > day, w.dev_start[person], entry)
    device = w.pd_device[entry]
    starts = _session_starts(rng, n_random)
    uid = base_uid_kind(w, person, day)
    alias_sess = np.zeros(n_random, dtype=bool)
    forced_sess = np.zeros(n_random, dtype=bool)

    extra_p: list[int] = []
    extra_d: list[int] = []
    extra_s: list[int] = []
    extra_uid: list[int] = []
    extra_alias: list[bool] = []
    if special:
        for p, d, first, last in w.forced:
            if first <= day <= last:
                extra_p.append(p)
                extra_d.append(d)
                extra_s.append(int(rng.integers(8 * 3600, 18 * 3600)))
                kind = base_uid_kind(w, np.array([p]), day)[0]
                if w.second_user_id[p] is not None and day == w.second_from_day[p]:
                    kind = UID_SECOND
                extra_uid.append(int(kind))
                extra_alias.append(False)
        for p in np.flatnonzero(w.alias_day == day).tolist():
            d = int(w.pd_device[w.dev_start[p]])
            alias_start = int(rng.integers(13 * 3600, 17 * 3600))
            if w.legacy_user_id[p] is not None:  # a morning session still on the old id
                extra_p.append(p)
                extra_d.append(d)
                extra_s.append(int(rng.integers(8 * 3600, 11 * 3600)))
                extra_uid.append(UID_LEGACY)
                extra_alias.append(False)
            extra_p.append(p)
            extra_d.append(d)
            extra_s.append(alias_start)
            extra_uid.append(UID_CURRENT)
            extra_alias.append(True)
            on_p = person == p  # random sessions that day: old id before the alias
            uid[on_p] = np.where(starts[on_p] < alias_start, UID_LEGACY, UID_CURRENT)
            if w.legacy_user_id[p] is None:
                uid[on_p] = UID_CURRENT
    if extra_p:
        person = np.concatenate((person, np.array(extra_p, dtype=np.int64)))
        device = np.concatenate((device, np.array(extra_d, dtype=np.int64)))
        starts = np.concatenate((starts, np.array(extra_s, dtype=np.int64)))
        uid = np.concatenate((uid, np.array(extra_uid, dtype=np.int8)))
        alias_sess = np.concatenate((alias_sess, np.array(extra_alias, dtype=bool)))
        forced_sess = np.concatenate((forced_sess, ~np.array(extra_alias, dtype=bool)))
    n_s = len(person)
    if n_s == 0:
        return _empty_batch()

    # SSO users sometimes log in with their second identity (identify links it by email)
    sso_ok = np.array([w.second_user_id[p] is not None for p in person.tolist()], dtype=bool)
    sso_ok &= w.second_from_day[person] <= day
    uid = np.where(sso_ok & (rng.random(n_s) < 0.3) & (uid == UID_CURRENT), UID_SECOND, uid)

    anonymous = (uid == UID_NONE) & ~alias_sess
    # account of the session: mostly the primary membership
    mcount = w.mem_count[person]
    pick = np.where(rng.random(n_s) < 0.75, 0, (rng.random(n_s) * mcount).astype(np.int64))
    midx = np.clip(w.mem_start[person] + pick, 0, max(0, len(w.m_account) - 1))
    has_mem = (mcount > 0) & ~anonymous
    account = np.where(has_mem, w.m_account[midx], -1)
    role = np.where(has_mem, w.m_role[midx], -1)
    flavour = w.flavour_on(device, day)

    length = rng.geometric(1.0 / MEAN_SESSION_EVENTS, n_s)
    visit_len = rng.geometric(1.0 / 2.5, n_s)
    pre = np.where(rng.random(n_s) < 0.08, rng.integers(1, 3, n_s), 0)
    kind1_alias = alias_sess & (w.alias_kind[person] == 1)
    pre = np.where(kind1_alias, np.maximum(pre, 1), pre)
    pre = np.where(anonymous, visit_len, pre)
    regular = np.where(anonymous, 0, length)
    n_alias = alias_sess.astype(np.int64)
    signup_today = w.signup_day[person] == day
    identify = ((pre > 0) & ~anonymous & ~alias_sess) | (rng.random(n_s) < 0.04)
    identify |= (uid == UID_SECOND) | signup_today | forced_sess
    identify &= ~anonymous
    # a prospect leaves an e-mail in a form: identify with anonymous_id only (a lead)
    identify |= anonymous & w.is_visitor[person] & (rng.random(n_s) < 0.06)
    not_in_crm = np.where(account >= 0, w.crm_from_day[np.maximum(account, 0)] > day, False)
    group_p = np.where(not_in_crm, 0.9, np.where(account != w.primary_account[person], 0.8, 0.25))
    group = (rng.random(n_s) < group_p) & (account >= 0)
    n_ident = identify.astype(np.int64)
    n_group = group.astype(np.int64)
    total = pre + n_alias + n_ident + n_group + regular

    # ---- expand sessions to events
    sidx = np.repeat(np.arange(n_s), total)
    n = len(sidx)
    first = np.concatenate(([0], np.cumsum(total)[:-1]))
    pos = np.arange(n) - np.repeat(first, total)
    b1 = pre[sidx]
    b2 = b1 + n_alias[sidx]
    b3 = b2 + n_ident[sidx]
    b4 = b3 + n_group[sidx]
    is_page = rng.random(n) < 0.28
    kind = np.where(
        pos < b1,
        PAGE,
        np.where(
            pos < b2,
            ALIAS,
            np.where(pos < b3, IDENTIFY, np.where(pos < b4, GROUP, np.where(is_page, PAGE, TRACK))),
        ),
    )
    kind = kind.astype(np.int8)
    prelogin = pos < b1
    ev_uid = np.where(prelogin, UID_NONE, uid[sidx]).astype(np.int8)
    ev_person = person[sidx]
    ev_role = role[sidx]
    ev_flavour = flavour[sidx]

    # track names by role (admins only do admin things), pages by index
    name = np.zeros(n, dtype=np.int64)
    onboarding = ((w.signup_day[ev_person] <= day) & (w.signup_day[ev_person] > day - 7)) | (
        ev_person % 33 == 0
    )
    for r in range(len(vocab.ROLES)):
        for onb in (0, 1):
            sel = np.flatnonzero((kind == TRACK) & (ev_role == r) & (onboarding == bool(onb)))
            if sel.size:
                name[sel] = rng.choice(N_NAMES, size=sel.size, p=NAME_P[r, onb])
    page_sel = np.flatnonzero(kind == PAGE)
    name[page_sel] = np.where(
        prelogin[page_sel],
        rng.integers(len(vocab.PRELOGIN_PAGES), size=page_sel.size),
        rng.integers(len(vocab.PAGES), size=page_sel.size),
    )

    group_share = np.array([0.0, 0.4, 0.95])[ev_flavour]
    has_group = np.where(
        kind == GROUP,
        True,
        np.where((kind == PAGE) | (kind == TRACK), rng.random(n) < group_share, False),
    )
    has_group &= (account[sidx] >= 0) & ~prelogin

    # ---- times: session start + gaps of seconds to minutes, sometimes > 30 minutes
    gaps = np.exp(rng.normal(np.log(35.0), 1.0, n)) * 1000.0
    long_gap = rng.random(n) < LONG_GAP_P
    gaps = np.where(long_gap, rng.uniform(31 * 60_000, 100 * 60_000, n), gaps)
    gaps[first] = 0.0
    csum = np.cumsum(gaps.astype(np.int64))
    start_ms = local_seconds_to_utc_ms(local_date, starts, w.zone)
    start_ms = start_ms + rng.integers(0, 1000, n_s)
    ts = start_ms[sidx] + csum - np.repeat(csum[first], total)

    skewed = w.dev_skew_ms[device[sidx]] != 0
    sr_draw = rng.random(n)
    sr_mode = np.where(
        skewed | (sr_draw < 0.93), SR_BOTH, np.where(sr_draw < 0.98, SR_NONE, SR_SENT_ONLY)
    ).astype(np.int8)
    sent_delay = rng.exponential(3_000.0, n).astype(np.int64)
    queued = rng.random(n) < 0.01
    sent_delay = np.where(queued, rng.integers(60_000, 1_800_000, n), sent_delay)
    recv_delay = rng.integers(20, 800, n)
    return EventBatch(
        person=ev_person,
        device=device[sidx],
        account=account[sidx],
        role=ev_role,
        kind=kind,
        name=name,
        uid=ev_uid,
        has_group=has_group,
        flavour=ev_flavour,
        server=np.zeros(n, dtype=bool),
        prelogin=prelogin,
        ts=ts,
        sent_delay=sent_delay,
        recv_delay=recv_delay,
        sr_mode=sr_mode,
        late_file=np.zeros(n, dtype=bool),
        aux=rng.integers(0, 1 << 30, n),
    )


def server_events(world: World, day: int, local_date: date, rng: np.random.Generator) -> EventBatch:
    """System events of the day: integration syncs per account, morning e-mail digests."""
    w = world
    accounts = np.flatnonzero(w.has_integration[: w.n_accounts])
    syncs = rng.poisson(1.2, accounts.size)
    sync_acc = np.repeat(accounts, syncs)
    sync_secs = rng.integers(0, 86_400, sync_acc.size)
    members = np.arange(w.n_members)
    digest = members[(rng.random(w.n_members) < 0.12) & (w.signup_day[: w.n_members] <= day)]
    if local_date.weekday() >= 5:
        digest = digest[:0]
    digest_secs = 7 * 3600 + rng.integers(0, 600, digest.size)
    # owners: person i owns account i
    person = np.concatenate((np.minimum(sync_acc, w.n_members - 1), digest))
    account = np.concatenate((sync_acc, w.primary_account[digest]))
    name = np.concatenate((np.full(sync_acc.size, SYNC_NAME), np.full(digest.size, DIGEST_NAME)))
    secs = np.concatenate((sync_secs, digest_secs))
    n = len(person)
    if n == 0:
        return _empty_batch()
    ts = local_seconds_to_utc_ms(local_date, secs, w.zone) + rng.integers(0, 1000, n)
    uid = base_uid_kind(w, person, day)
    keep = uid != UID_NONE
    batch = EventBatch(
        person=person,
        device=np.full(n, -1),
        account=account,
        role=np.full(n, -1),
        kind=np.full(n, TRACK, dtype=np.int8),
        name=name,
        uid=uid,
        has_group=np.ones(n, dtype=bool),
        flavour=np.full(n, 2, dtype=np.int8),
        server=np.ones(n, dtype=bool),
        prelogin=np.zeros(n, dtype=bool),
        ts=ts,
        sent_delay=rng.integers(0, 50, n),
        recv_delay=rng.integers(5, 200, n),
        sr_mode=np.full(n, SR_BOTH, dtype=np.int8),
        late_file=np.zeros(n, dtype=bool),
        aux=rng.integers(0, 1 << 30, n),
    )
    return batch.take(np.flatnonzero(keep))


def _empty_batch() -> EventBatch:
    z = np.zeros(0, dtype=np.int64)
    return EventBatch(**{f.name: z for f in fields(EventBatch)})


def expected_events_per_scale(world: World) -> float:
    """Expected client events on a weekday per unit of `scale` (for calibration)."""
    members = world.activity[: world.n_members].sum() * (MEAN_SESSION_EVENTS + 0.45)
    visitors = world.activity[world.n_members :].sum() * 2.5
    return float(members + visitors) * 1.01
