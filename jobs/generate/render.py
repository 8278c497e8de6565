"""Rendering of simulated events as Segment-style JSON lines (SPEC §3.1).

Timestamps come in the device's own style (`Z`, explicit offset, none), with the device's
clock skew on `timestamp`/`sent_at` but not on `received_at`; names and properties follow
schema_version 1 (Title Case, `properties.feature`), 2 (snake_case, `properties.feature_key`)
or none (legacy SDK, defaults to 1) by the device's app version on that day. Lines are built
from pre-encoded fragments (this is the generator's hot loop); `Renderer.event_dict` parses a
line back for the rare callers that need an object.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from jobs.generate import vocab
from jobs.generate.crm import CrmState
from jobs.generate.events import (
    ALIAS,
    GROUP,
    IDENTIFY,
    N_TAX,
    PAGE,
    SR_BOTH,
    SR_NONE,
    TRACK,
    TYPE_NAMES,
    UID_LEGACY,
    UID_NONE,
    UID_SECOND,
    EventBatch,
)
from jobs.generate.timeutil import FMT_MS_Z, OffsetTable, format_instants, iso_ms_z
from jobs.generate.world import World

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(obj: Any) -> str:
    """Compact, UTF-8, insertion-ordered JSON (the landing files' style)."""
    return _ENCODER.encode(obj)


def _q(text: str) -> str:
    """`text` as a JSON string literal."""
    return _ENCODER.encode(text)


# Pre-encoded fragments of the hot loop. Ids, timestamps and vocabulary are plain ASCII
# without quotes or backslashes; anything free-form (names, e-mails) goes through `dumps`.
_TYPE_FRAG = tuple(f',"type":"{t}"' for t in TYPE_NAMES)
_NAME_FRAG = tuple(
    tuple(',"event":' + _q(e.v2_name if flavour == 2 else e.v1_name) for e in vocab.TAXONOMY)
    + tuple(',"event":' + _q(v2 if flavour == 2 else v1) for v2, v1, _ in vocab.UNCATEGORIZED)
    for flavour in range(3)
)
_FEATURE_FRAG = tuple(
    tuple(
        ('{"feature_key":' if flavour == 2 else '{"feature":') + _q(e.feature_key)
        for e in vocab.TAXONOMY
    )
    + tuple(
        (('{"feature_key":' if flavour == 2 else '{"feature":') + _q(f)) if f else ""
        for _, _, f in vocab.UNCATEGORIZED
    )
    for flavour in range(3)
)
_EXTRA_KIND = tuple(
    "report"
    if e.v2_name.startswith("report_")
    else "dashboard"
    if e.v2_name.startswith("dashboard_")
    else e.v2_name
    for e in vocab.TAXONOMY
)
_SCHEMA_FRAG = ("", ',"schema_version":1', ',"schema_version":2')


def _extra_props(kind: str, aux: int) -> str:
    """Event-specific properties as a JSON fragment starting with a comma (or "")."""
    if kind == "report":
        return f',"report_id":"rpt_{aux % 900}"'
    if kind == "dashboard":
        return f',"dashboard_id":"dsh_{aux % 400}"'
    if kind == "query_run":
        return f',"duration_ms":{aux % 30_000},"rows":{(aux >> 15) % 5_000}'
    if kind == "experiment_exposed":
        flag = vocab.EXPERIMENT_FLAGS[aux % len(vocab.EXPERIMENT_FLAGS)]
        return f',"flag_key":"{flag}","variant":"{vocab.VARIANTS[(aux >> 4) % 2]}"'
    if kind == "onboarding_step_completed":
        return f',"step":"{vocab.ONBOARDING_STEPS[aux % len(vocab.ONBOARDING_STEPS)]}"'
    if kind == "role_changed":
        return f',"new_role":"{vocab.ROLES[1 + aux % 5]}"'
    if kind == "sync_completed":
        connector = ("salesforce", "hubspot", "snowflake", "bigquery")[aux % 4]
        return f',"connector":"{connector}","rows_synced":{aux % 100_000}'
    if kind == "email_digest_sent":
        return ',"digest":"daily"'
    return ""


class Renderer:
    """Formats the events of one batch as JSON lines (and as dicts, for fault bases).

    Key order of a line: message_id, type, event, user_id, anonymous_id, group_id,
    previous_id, timestamp, sent_at, received_at, properties, traits, context,
    schema_version, tenant_id (absent keys skipped).
    """

    def __init__(
        self,
        world: World,
        crm: CrmState,
        batch: EventBatch,
        offsets: OffsetTable,
        rng: np.random.Generator,
        day: int,
    ) -> None:
        self.w = world
        self.crm = crm
        self.day = day
        n = len(batch)
        dev = np.maximum(batch.device, 0)
        skew = np.where(batch.server, 0, world.dev_skew_ms[dev])
        fmt = np.where(batch.server, FMT_MS_Z, world.dev_fmt[dev])
        self.ts_s = format_instants(batch.ts + skew, fmt, offsets)
        self.sent_s = format_instants(batch.ts + batch.sent_delay + skew, fmt, offsets)
        self.recv_s = iso_ms_z(batch.ts + batch.sent_delay + batch.recv_delay)
        self.mid_hex = rng.bytes(16 * n).hex()
        self.tenant_flag = (batch.server | (rng.random(n) < 0.03)).tolist()
        self.email_variant = rng.random(n).tolist()
        self.blocked = (rng.random(n) < 0.002).tolist()
        self.mobile = np.isin(world.dev_ua[dev], sorted(vocab.MOBILE_AGENTS)).tolist()
        self._ctx: dict[tuple[int, int], str] = {}
        self._traits: dict[int, str] = {}
        self._tenant_frag = ',"tenant_id":' + _q(world.plan.tenant_id) + "}"
        # plain lists for the hot loop
        self.person = batch.person.tolist()
        self.device = batch.device.tolist()
        self.account = batch.account.tolist()
        self.role = batch.role.tolist()
        self.kind = batch.kind.tolist()
        self.name = batch.name.tolist()
        self.uid = batch.uid.tolist()
        self.has_group = batch.has_group.tolist()
        self.flavour = batch.flavour.tolist()
        self.server = batch.server.tolist()
        self.sr_mode = batch.sr_mode.tolist()
        self.aux = batch.aux.tolist()

    def message_id(self, i: int) -> str:
        h = self.mid_hex[32 * i : 32 * i + 32]
        if self.server[i]:
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        if self.mobile[i]:
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".upper()
        return "ajs-next-" + h

    def _context(self, dev: int, flavour: int) -> str:
        key = (dev, flavour)
        ctx = self._ctx.get(key)
        if ctx is None:
            w = self.w
            ctx = ',"context":' + dumps(
                {
                    "ip": w.dev_ip[dev],
                    "user_agent": vocab.USER_AGENTS[int(w.dev_ua[dev])],
                    "locale": w.dev_locale[dev],
                    "app_version": vocab.APP_VERSIONS[flavour][0],
                    "device_id": w.device_id[dev],
                }
            )
            self._ctx[key] = ctx
        return ctx

    def _group_traits(self, a: int) -> str:
        traits = self._traits.get(a)
        if traits is None:
            w, crm = self.w, self.crm
            # the product keeps the parent it was set up with: after a CRM move the group
            # traits are stale, and the CRM snapshot must win (SPEC §4.6)
            in_crm = w.crm_from_day[a] <= self.day
            parent = int(w.parent0[a])
            sub = crm.first_subscription(a)
            t: dict[str, Any] = {"name": w.account_names[a]}
            if sub is not None:
                t["plan"] = sub.plan
            t["tier"] = vocab.TIERS[int(w.tier[a])]
            t["industry"] = vocab.INDUSTRIES[int(w.industry[a])]
            t["employees"] = int(crm.employees[a])
            if sub is not None:
                t["seats"] = sub.seats
            if parent >= 0 and (not in_crm or a % 5 != 0):
                t["parent_group_id"] = w.account_ids[parent]
            traits = ',"traits":' + dumps(t)
            self._traits[a] = traits
        return traits

    def _identify_traits(self, i: int) -> str:
        w = self.w
        p = self.person[i]
        t: dict[str, Any] = {}
        email = w.email[p]
        r = self.email_variant[i]
        if email is not None and r < 0.95:
            if r < 0.06:
                email = email.upper()
            elif r < 0.12:
                email = f"  {email} "
            t["email"] = email
        t["name"] = w.display_name[p]
        if self.role[i] >= 0:
            t["role"] = vocab.ROLES[self.role[i]]
        t["department"] = vocab.DEPARTMENTS[int(w.department[p])]
        return ',"traits":' + dumps(t)

    def user_id(self, i: int) -> str | None:
        kind = self.uid[i]
        if kind == UID_NONE:
            return None
        p = self.person[i]
        if kind == UID_LEGACY:
            return self.w.legacy_user_id[p]
        if kind == UID_SECOND:
            return self.w.second_user_id[p]
        return self.w.user_id[p]

    def line(self, i: int) -> str:
        """The JSON line of event `i`."""
        w = self.w
        kind = self.kind[i]
        flavour = self.flavour[i]
        dev = self.device[i]
        parts = ['{"message_id":"', self.message_id(i), '"', _TYPE_FRAG[kind]]
        props = ""
        if kind == TRACK:
            n = self.name[i]
            parts.append(_NAME_FRAG[flavour][n])
            props = _FEATURE_FRAG[flavour][n]
            if props:
                if n < N_TAX:
                    props += _extra_props(_EXTRA_KIND[n], self.aux[i])
                props += "}"
        elif kind == PAGE:
            pages = vocab.PRELOGIN_PAGES if self.uid[i] == UID_NONE else vocab.PAGES
            path, title = pages[self.name[i] % len(pages)]
            props = f'{{"path":"{path.replace("{n}", str(self.aux[i] % 500))}","title":"{title}"}}'
        uid = self.user_id(i)
        if uid is not None:
            parts += (',"user_id":"', uid, '"')
        elif self.blocked[i] and flavour == 0:  # old SDKs send junk next to a real anon id
            parts += (',"user_id":', _q(vocab.BLOCKED_IDS[self.aux[i] % len(vocab.BLOCKED_IDS)]))
        if dev >= 0:
            parts += (',"anonymous_id":"', w.anon_id[dev], '"')
        if self.has_group[i]:
            parts += (',"group_id":"', w.account_ids[self.account[i]], '"')
        if kind == ALIAS:
            legacy = w.legacy_user_id[self.person[i]]
            parts += (',"previous_id":"', legacy if legacy is not None else w.anon_id[dev], '"')
        parts += (',"timestamp":"', self.ts_s[i], '"')
        mode = self.sr_mode[i]
        if mode != SR_NONE:
            parts += (',"sent_at":"', self.sent_s[i], '"')
            if mode == SR_BOTH:
                parts += (',"received_at":"', self.recv_s[i], '"')
        if props:
            parts += (',"properties":', props)
        if kind == IDENTIFY:
            parts.append(self._identify_traits(i))
        elif kind == GROUP:
            parts.append(self._group_traits(self.account[i]))
        if dev >= 0:
            parts.append(self._context(dev, flavour))
        parts.append(_SCHEMA_FRAG[flavour])
        parts.append(self._tenant_frag if self.tenant_flag[i] else "}")
        return "".join(parts)

    def event_dict(self, i: int) -> dict[str, Any]:
        """The JSON object of event `i` (a fresh copy, safe to mutate)."""
        return json.loads(self.line(i))
