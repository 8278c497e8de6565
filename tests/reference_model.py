"""An independent reference model of the core gold tables (SPEC §6.1–§6.3).

`recompute_gold` rebuilds `gold.account_daily`, `gold.account_hourly` and `gold.tenant_daily`
straight from a landing zone, in plain Python (stdlib + PyYAML), from the SPEC's text alone:
it shares no code with `jobs/` and reads only the `conf/*.yaml` files. It favours being
obviously right over being fast (everything is held in memory), so use it on small presets.

Where the SPEC leaves a choice open, the model follows docs/decisions.md:
- duplicates (§4.2): the copy from the earliest delivery survives, then the smallest SHA-256
  of the raw line, then the smallest source file path;
- the K guard (§4.4) counts the `user_id` nodes *directly* linked to an identifier;
- attribution ties (§4.5): a `group` call at the same instant as an event counts as before
  it; among calls at one instant the larger message id is the later one;
- timestamps (§4.1) must be full ISO-8601 date-times; `sent_at` / `received_at` that do not
  parse never reject a line.
Gold holds counts and raw account ids only, so a person is just its identity component here
(no pseudonyms, no person-id scheme).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

CALL_TYPES = frozenset({"track", "page", "identify", "group", "alias"})
LIMITED_FIELDS = ("message_id", "user_id", "anonymous_id", "event", "group_id", "previous_id")
STRING_FIELDS = (*LIMITED_FIELDS, "type", "timestamp", "tenant_id")
OBJECT_FIELDS = ("properties", "traits", "context")
LIVE_STATUSES = frozenset({"trialing", "active", "past_due"})  # §6.1 seats
SESSION_GAP = timedelta(minutes=30)  # §4.7
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")


@dataclass(frozen=True)
class Conf:
    """What the model reads from the conf directory (SPEC §2, §3.5, §4.1, §4.4)."""

    timezones: dict[str, ZoneInfo]  # registered tenants only
    taxonomy: dict[str, tuple[str, str | None]]  # v1 or v2 name -> category, feature_key
    max_user_ids: int  # K
    blocked: frozenset[str]
    max_line_bytes: int
    max_field_chars: int
    max_json_depth: int
    min_ts: datetime
    future_days: int
    schema_versions: frozenset[int]


def load_conf(conf_dir: Path) -> Conf:
    def load(name: str) -> dict[str, Any]:
        return yaml.safe_load((Path(conf_dir) / name).read_text(encoding="utf-8"))

    tenants, taxonomy, settings = (
        load(n) for n in ("tenants.yaml", "event_taxonomy.yaml", "lakehouse.yaml")
    )
    entries = {  # lookup is by name, whichever schema_version the event declares (§3.5)
        name: (e["category"], e.get("feature_key"))
        for e in taxonomy["events"]
        for name in (e["name"], e.get("v1_name"))
        if name
    }
    identity, validation = settings["identity"], settings["validation"]
    return Conf(
        timezones={t["id"]: ZoneInfo(t.get("timezone") or "UTC") for t in tenants["tenants"]},
        taxonomy=entries,
        max_user_ids=int(identity["max_user_ids_per_identifier"]),
        blocked=frozenset(str(v).strip().lower() for v in identity["blocked_identifier_values"]),
        max_line_bytes=int(validation["max_line_bytes"]),
        max_field_chars=int(validation["max_field_chars"]),
        max_json_depth=int(validation["max_json_depth"]),
        min_ts=datetime.fromisoformat(str(validation["min_event_date"])).replace(tzinfo=UTC),
        future_days=int(validation["future_days"]),
        schema_versions=frozenset(validation["supported_schema_versions"]),
    )


@dataclass
class Event:
    """One accepted event call, as far as gold needs it."""

    message_id: str
    type: str
    ts: datetime  # event_ts, UTC
    date: date  # event_date: local date in the tenant's timezone
    user_id: str | None  # None when absent or blocked
    anonymous_id: str | None
    group_id: str | None
    previous_id: str | None
    email: str | None  # identify's traits.email, trimmed and lower-cased
    parent_group_id: str | None  # group's traits.parent_group_id
    category: str | None
    feature_key: str | None
    survivor_key: tuple[date, str, str]  # delivery_date, sha256(raw line), source file
    person: Any = None
    account: str | None = None

    @property
    def qualifying(self) -> bool:
        """§4.3: track and page calls whose category is not `system`."""
        return self.type in ("track", "page") and self.category != "system"


# --------------------------------------------------------------------------- landing (§3)


def landing_files(landing: Path, source: str, tenant: str, day: date) -> list[Path]:
    folder = Path(landing) / source / f"tenant_id={tenant}" / f"delivery_date={day}"
    return sorted(p for p in folder.glob("*") if p.name.endswith((".jsonl", ".jsonl.gz")))


def read_lines(path: Path) -> Iterator[str]:
    """§3: UTF-8 JSON Lines, gzip when the name ends in .gz, blank lines ignored."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    for line in data.decode("utf-8").split("\n"):
        if line.strip():
            yield line


# ------------------------------------------------------------------- validation (§4.1)


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate key")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")  # NaN / Infinity


def parse_ts(value: Any) -> datetime | None:
    """A full ISO-8601 date-time; `Z`, an offset, or nothing (= UTC). Microsecond precision."""
    if not isinstance(value, str) or not ISO_DATETIME.fullmatch(value):
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)


def _depth(value: Any) -> int:
    """Nesting depth of objects and arrays (an object of scalars is 1)."""
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def validate(line: str, tenant: str, delivery: date, conf: Conf) -> dict[str, Any] | str:
    """§4.1: the parsed call with its `event_ts`, or the reason the line is rejected."""
    if len(line.encode("utf-8")) > conf.max_line_bytes:
        return "oversized_record"
    try:
        obj = json.loads(
            line.removeprefix("\ufeff"),
            object_pairs_hook=_object_without_duplicate_keys,
            parse_constant=_reject_constant,
        )
    except ValueError:
        return "invalid_json"
    if not isinstance(obj, dict) or _depth(obj) > conf.max_json_depth:
        return "invalid_json"
    version = obj.get("schema_version")
    if (
        any(obj.get(f) is not None and not isinstance(obj[f], str) for f in STRING_FIELDS)
        or any(obj.get(f) is not None and not isinstance(obj[f], dict) for f in OBJECT_FIELDS)
        or obj.get("type") not in (*CALL_TYPES, None, "")
        or (version is not None and (isinstance(version, bool) or not isinstance(version, int)))
    ):
        return "invalid_type"
    if (1 if version is None else version) not in conf.schema_versions:
        return "unsupported_schema_version"
    user, anon, previous = (
        identifier(obj.get(f), conf) for f in ("user_id", "anonymous_id", "previous_id")
    )
    kind = obj.get("type")
    if (
        not all(obj.get(f) for f in ("message_id", "type", "timestamp"))
        or (user is None and anon is None)
        or (kind == "track" and not obj.get("event"))
        or (kind == "group" and not obj.get("group_id"))
        or (kind == "alias" and (user is None or previous is None))
    ):
        return "missing_field"
    if any(len(obj.get(f) or "") > conf.max_field_chars for f in LIMITED_FIELDS):
        return "field_too_long"
    if obj.get("tenant_id") is not None and obj["tenant_id"] != tenant:
        return "tenant_mismatch"
    ts = parse_ts(obj["timestamp"])
    if ts is None:
        return "invalid_timestamp"
    sent, received = parse_ts(obj.get("sent_at")), parse_ts(obj.get("received_at"))
    event_ts = received - (sent - ts) if sent and received else ts
    if event_ts < conf.min_ts:
        return "timestamp_out_of_range"
    future = datetime.combine(delivery, datetime.min.time(), UTC) + timedelta(conf.future_days)
    if event_ts >= future:
        return "future_timestamp"
    return {**obj, "user_id": user, "anonymous_id": anon, "previous_id": previous, "_ts": event_ts}


def identifier(value: Any, conf: Conf) -> str | None:
    """§4.4: values SDKs emit by mistake (after trim + lower-case) count as absent."""
    if not isinstance(value, str) or value.strip().lower() in conf.blocked:
        return None
    return value


def classify(obj: dict[str, Any], conf: Conf) -> tuple[str | None, str | None]:
    """§3.5: category and feature_key of a call (None, None for identify / group / alias)."""
    if obj["type"] == "page":
        return "page", None
    if obj["type"] != "track":
        return None, None
    if obj["event"] in conf.taxonomy:
        return conf.taxonomy[obj["event"]]
    props = obj.get("properties") or {}  # not in the taxonomy: still activity
    key = props.get("feature_key") or props.get("feature")
    return "uncategorized", key if isinstance(key, str) else None


def read_events(landing: Path, tenant: str, days: list[date], conf: Conf) -> list[Event]:
    """Accepted calls of one registered tenant, exactly once per message_id (§4.1, §4.2)."""
    tz = conf.timezones[tenant]
    survivors: dict[str, Event] = {}
    for day in days:
        for path in landing_files(landing, "events", tenant, day):
            for line in read_lines(path):
                obj = validate(line, tenant, day, conf)
                if isinstance(obj, str):
                    continue  # rejected: not an event for gold
                category, feature_key = classify(obj, conf)
                traits = obj.get("traits") or {}
                email = identifier(traits.get("email"), conf) if obj["type"] == "identify" else None
                parent = traits.get("parent_group_id") if obj["type"] == "group" else None
                ev = Event(
                    message_id=obj["message_id"],
                    type=obj["type"],
                    ts=obj["_ts"],
                    date=obj["_ts"].astimezone(tz).date(),
                    user_id=obj["user_id"],
                    anonymous_id=obj["anonymous_id"],
                    group_id=obj.get("group_id") or None,
                    previous_id=obj["previous_id"],
                    email=email.strip().lower() if email else None,
                    parent_group_id=parent if isinstance(parent, str) and parent else None,
                    category=category,
                    feature_key=feature_key,
                    survivor_key=(day, hashlib.sha256(line.encode()).hexdigest(), str(path)),
                )
                old = survivors.get(ev.message_id)
                if old is None or ev.survivor_key < old.survivor_key:
                    survivors[ev.message_id] = ev
    return sorted(survivors.values(), key=lambda e: (e.ts, e.message_id))


# ------------------------------------------------------------- identity (§4.4)


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def stitch(events: list[Event], conf: Conf) -> None:
    """§4.4: set each event's `person` (a connected component of the guarded graph)."""
    edges: set[tuple[tuple[str, str], tuple[str, str]]] = set()
    for ev in events:
        user = ("user_id", ev.user_id) if ev.user_id else None
        anon = ("anonymous_id", ev.anonymous_id) if ev.anonymous_id else None
        if user and anon:
            edges.add((user, anon))
        if ev.email:
            edges.add((("email", ev.email), user or anon))
        if ev.type == "alias":
            edges.add((user, ("anonymous_id", ev.previous_id)))
            edges.add((user, ("user_id", ev.previous_id)))
    users_of: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for a, b in edges:
        for node, other in ((a, b), (b, a)):
            if node[0] != "user_id" and other[0] == "user_id":
                users_of[node].add(other)
    ambiguous = {n for n, users in users_of.items() if len(users) > conf.max_user_ids}
    persons = UnionFind()
    for a, b in edges:
        if a not in ambiguous and b not in ambiguous:
            persons.union(a, b)
    for ev in events:
        own = ("user_id", ev.user_id) if ev.user_id else ("anonymous_id", ev.anonymous_id)
        ev.person = persons.find(own)


# ---------------------------------------------------------- attribution (§4.5)


def attribute(events: list[Event]) -> None:
    """§4.5: own group_id; else the person's latest group call at or before the event; else
    the person's earliest group call; else unattributed (None)."""
    calls: dict[Any, list[tuple[datetime, str, str]]] = defaultdict(list)
    for ev in events:
        if ev.type == "group" and ev.group_id:
            calls[ev.person].append((ev.ts, ev.message_id, ev.group_id))
    for ev in events:
        if not ev.qualifying:
            continue
        if ev.group_id:
            ev.account = ev.group_id
        elif ev.person in calls:
            mine = calls[ev.person]
            before = [c for c in mine if c[0] <= ev.ts]
            ev.account = max(before)[2] if before else min(mine)[2]


# ------------------------------------------------------------- sessions (§4.7)


def session_starts(events: list[Event]) -> list[Event]:
    """§4.7: the first event of every session (per person, gap > 30 minutes starts one)."""
    last_seen: dict[Any, datetime] = {}
    starts = []
    for ev in events:  # sorted by event_ts
        if not ev.qualifying:
            continue
        previous = last_seen.get(ev.person)
        if previous is None or ev.ts - previous > SESSION_GAP:
            starts.append(ev)
        last_seen[ev.person] = ev.ts
    return starts


# ------------------------------------------------- snapshots: hierarchy (§4.6), seats


def read_snapshots(landing: Path, source: str, tenant: str, days: list[date]) -> dict[date, list]:
    """Every delivery of a full-snapshot source (§3.2, §3.3) that has files, by date."""
    snapshots = {}
    for day in days:
        files = landing_files(landing, source, tenant, day)
        if files:
            rows = [json.loads(line) for path in files for line in read_lines(path)]
            snapshots[day] = [r for r in rows if isinstance(r, dict) and r.get("account_id")]
    return snapshots


@dataclass
class Hierarchy:
    """§4.6: account parents as of a date, from CRM snapshots, else group traits."""

    snapshots: dict[date, list[dict[str, Any]]]
    group_calls: list[Event]  # group calls with a parent_group_id, in event_ts order
    _cache: dict[date, dict[str, str | None]] = field(default_factory=dict)

    def parents_on(self, day: date) -> dict[str, str | None]:
        if day not in self._cache:
            parents: dict[str, str | None] = {}
            for call in self.group_calls:  # the latest call with event_date <= day wins
                if call.date <= day:
                    parents[call.group_id] = call.parent_group_id
            for snap_day in sorted(self.snapshots):  # any snapshot beats group traits
                if snap_day <= day:
                    parents |= {r["account_id"]: r.get("parent_account_id") or None
                                for r in self.snapshots[snap_day]}  # fmt: skip
            self._cache[day] = _cycles_to_roots(parents)
        return self._cache[day]

    def chain(self, account: str, day: date) -> list[str]:
        """The account followed by its ancestors on `day`."""
        parents, out = self.parents_on(day), [account]
        while parents.get(out[-1]) is not None:
            out.append(parents[out[-1]])
        return out


def _cycles_to_roots(parents: dict[str, str | None]) -> dict[str, str | None]:
    in_cycle: set[str] = set()
    for start in parents:
        path: dict[str, int] = {}
        node: str | None = start
        while node is not None and node not in path:
            path[node] = len(path)
            node = parents.get(node)
        if node is not None:  # walked back into the path: a cycle from `node` on
            in_cycle.update(n for n, i in path.items() if i >= path[node])
    return {a: None if a in in_cycle else p for a, p in parents.items()}


def live_seats(subscriptions: dict[date, list], day: date) -> dict[str, int]:
    """§6.1: seats of trialing/active/past_due subscriptions per account, from the latest
    subscriptions snapshot with delivery_date <= day (accounts without one are absent)."""
    snaps = [d for d in subscriptions if d <= day]
    seats: dict[str, int] = defaultdict(int)
    for row in subscriptions[max(snaps)] if snaps else []:
        if row.get("status") in LIVE_STATUSES and isinstance(row.get("seats"), int):
            seats[row["account_id"]] += row["seats"]
    return seats


# ---------------------------------------------------------------- gold (§6.1–6.3)


@dataclass
class Scope:
    """Accumulated facts of one (date, account, scope) or (date, tenant)."""

    dau: set = field(default_factory=set)
    wau: set = field(default_factory=set)
    mau: set = field(default_factory=set)
    events: int = 0
    sessions: int = 0
    admin: int = 0
    collaboration: int = 0
    features: set = field(default_factory=set)
    unattributed: int = 0

    def add_event(self, ev: Event) -> None:
        self.dau.add(ev.person)
        self.events += 1
        self.admin += ev.category == "admin"
        self.collaboration += ev.category == "collaboration"
        if ev.feature_key is not None:
            self.features.add(ev.feature_key)
        self.unattributed += ev.account is None


def hour_start_utc(ts: datetime, tz: ZoneInfo) -> datetime:
    """§6.2: the start of the tenant-local clock hour holding `ts`, as a UTC instant."""
    local = ts.astimezone(tz)
    return ts - (local - local.replace(minute=0, second=0, microsecond=0))


def tenant_daily(tenant: str, qualifying: list[Event]) -> list[dict[str, Any]]:
    """§6.3: one row per date with a qualifying event; persons attributed or not."""
    totals: dict[date, Scope] = defaultdict(Scope)
    for ev in qualifying:
        totals[ev.date].add_event(ev)
    return [
        {"tenant_id": tenant, "activity_date": d, "dau": len(s.dau), "events": s.events,
         "unattributed_events": s.unattributed}
        for d, s in sorted(totals.items())
    ]  # fmt: skip


def account_hourly(tenant: str, tz: ZoneInfo, qualifying: list[Event]) -> list[dict[str, Any]]:
    """§6.2: direct scope, one row per account and tenant-local clock hour with events."""
    hours: dict[tuple[str, datetime], Scope] = defaultdict(Scope)
    for ev in qualifying:
        if ev.account is not None:
            hours[(ev.account, hour_start_utc(ev.ts, tz))].add_event(ev)
    rows = []
    for (account, start), s in sorted(hours.items()):
        local = start.astimezone(tz)
        rows.append({
            "tenant_id": tenant, "activity_date": local.date(), "account_id": account,
            "hour_start_utc": start, "local_hour": local.hour, "active_users": len(s.dau),
            "events": s.events, "admin_actions": s.admin,
        })  # fmt: skip
    return rows


def account_daily(
    tenant: str,
    events: list[Event],
    hierarchy: Hierarchy,
    subscriptions: dict[date, list[dict[str, Any]]],
    horizon: date,
) -> list[dict[str, Any]]:
    """§6.1: per activity date up to the horizon, every (account, scope) with mau_28d > 0.

    The hierarchy of the activity date applies to the whole trailing window."""
    by_date: dict[date, list[Event]] = defaultdict(list)  # attributed qualifying events
    for ev in events:
        if ev.qualifying and ev.account is not None:
            by_date[ev.date].append(ev)
    starts: dict[date, list[Event]] = defaultdict(list)
    for ev in session_starts(events):
        if ev.account is not None:
            starts[ev.date].append(ev)
    targets = {d + timedelta(i) for d in by_date for i in range(28)}
    rows = []
    for target in sorted(t for t in targets if t <= horizon):

        def scope_keys(account: str, on: date = target) -> list[tuple[str, str]]:
            """(direct, the account) and (rollup, every account whose rollup scope holds it)."""
            return [(account, "direct")] + [(a, "rollup") for a in hierarchy.chain(account, on)]

        scopes: dict[tuple[str, str], Scope] = defaultdict(Scope)
        for back in range(28):
            for ev in by_date.get(target - timedelta(back), []):
                for key in scope_keys(ev.account):
                    scopes[key].mau.add(ev.person)
                    if back < 7:
                        scopes[key].wau.add(ev.person)
                    if back == 0:
                        scopes[key].add_event(ev)
        for ev in starts.get(target, []):
            for key in scope_keys(ev.account):
                scopes[key].sessions += 1
        seats: dict[tuple[str, str], int] = defaultdict(int)
        for account, n in live_seats(subscriptions, target).items():
            for key in scope_keys(account):
                seats[key] += n
        for (account, scope), s in sorted(scopes.items()):
            n_seats = seats.get((account, scope))
            rows.append({
                "tenant_id": tenant, "activity_date": target, "account_id": account,
                "scope": scope, "dau": len(s.dau), "wau_7d": len(s.wau), "mau_28d": len(s.mau),
                "events": s.events, "sessions": s.sessions, "admin_actions": s.admin,
                "collaboration_actions": s.collaboration, "distinct_features": len(s.features),
                "seats": n_seats, "seat_utilization": len(s.mau) / n_seats if n_seats else None,
                "stickiness": len(s.dau) / len(s.mau),
            })  # fmt: skip
    return rows


def recompute_gold(
    landing: Path, conf_dir: Path, delivery_dates: list[date]
) -> dict[str, list[dict[str, Any]]]:
    """The rows of gold.account_daily, gold.account_hourly and gold.tenant_daily after the
    given deliveries were processed (lineage and metric_version columns excluded).
    Unregistered tenants are not processed (§2)."""
    conf = load_conf(conf_dir)
    days = sorted(delivery_dates)
    gold: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for tenant in sorted(conf.timezones):  # registered tenants only (§2)
        events = read_events(landing, tenant, days, conf)
        stitch(events, conf)
        attribute(events)
        hierarchy = Hierarchy(
            snapshots=read_snapshots(landing, "accounts", tenant, days),
            group_calls=[e for e in events if e.type == "group" and e.parent_group_id],
        )
        subscriptions = read_snapshots(landing, "subscriptions", tenant, days)
        delivered = [
            d for d in days for source in ("events", "accounts", "subscriptions", "tickets")
            if landing_files(landing, source, tenant, d)
        ]  # fmt: skip
        # the horizon: the later of the latest processed delivery and the latest event_date
        horizon = max([e.date for e in events] + delivered, default=days[-1])
        qualifying = [e for e in events if e.qualifying]
        gold["account_daily"] += account_daily(tenant, events, hierarchy, subscriptions, horizon)
        gold["account_hourly"] += account_hourly(tenant, conf.timezones[tenant], qualifying)
        gold["tenant_daily"] += tenant_daily(tenant, qualifying)
    return dict(gold)
