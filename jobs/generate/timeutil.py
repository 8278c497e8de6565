"""Time helpers for the generator: tenant-local wall clock ↔ UTC, ISO-8601 formatting.

All instants are int64 milliseconds since the Unix epoch (UTC). Formatting is vectorised with
numpy so millions of timestamps cost a fraction of a second.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

MS_PER_S = 1000
MS_PER_DAY = 86_400_000
_EPOCH = date(1970, 1, 1)

# Timestamp renderings a device can use (SPEC §3.1: ISO-8601, offset or `Z`, none = UTC).
FMT_MS_Z = 0  # 2026-03-05T14:03:22.123Z
FMT_S_Z = 1  # 2026-03-05T14:03:22Z
FMT_MS_OFFSET = 2  # 2026-03-05T09:03:22.123-05:00 (tenant's local offset at that instant)
FMT_MS_NAIVE = 3  # 2026-03-05T14:03:22.123 (no offset: UTC)
FMT_US_PLUS0 = 4  # 2026-03-05T14:03:22.123000+00:00
N_FORMATS = 5


def epoch_day(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - _EPOCH).days


def day_start_ms(d: date) -> int:
    """00:00 UTC of `d` in epoch milliseconds."""
    return epoch_day(d) * MS_PER_DAY


def wall_hour_offsets_s(local_date: date, zone: ZoneInfo) -> np.ndarray:
    """UTC offset (seconds) of each wall-clock hour 0..23 of `local_date` in `zone`.

    Non-existent wall times (spring forward) take the pre-transition offset (fold=0), which
    maps them onto valid instants just after the gap; ambiguous ones take the first.
    """
    offsets = np.empty(24, dtype=np.int64)
    for hour in range(24):
        local = datetime(local_date.year, local_date.month, local_date.day, hour, tzinfo=zone)
        delta = local.utcoffset()
        offsets[hour] = int(delta.total_seconds()) if delta is not None else 0
    return offsets


def local_seconds_to_utc_ms(local_date: date, seconds: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """Instants (epoch ms) for wall-clock `seconds` after local midnight of `local_date`."""
    secs = np.clip(seconds.astype(np.int64), 0, 86_399)
    offsets = wall_hour_offsets_s(local_date, zone)
    return (epoch_day(local_date) * 86_400 + secs - offsets[secs // 3600]) * MS_PER_S


class OffsetTable:
    """UTC offsets of one zone on a 15-minute grid, for vectorised instant → offset lookup."""

    STEP_MS = 900_000

    def __init__(self, zone: ZoneInfo, first: date, last: date) -> None:
        self.t0 = day_start_ms(first - timedelta(days=2))
        t1 = day_start_ms(last + timedelta(days=3))
        n = (t1 - self.t0) // self.STEP_MS + 1
        offs = np.empty(n, dtype=np.int64)
        for i in range(n):
            instant = datetime.fromtimestamp((self.t0 + i * self.STEP_MS) / 1000, tz=UTC)
            delta = instant.astimezone(zone).utcoffset()
            offs[i] = int(delta.total_seconds()) if delta is not None else 0
        self.offsets_s = offs

    def lookup_s(self, ms: np.ndarray) -> np.ndarray:
        """Offset in seconds at each instant (clamped to the table's range)."""
        idx = np.clip((ms - self.t0) // self.STEP_MS, 0, len(self.offsets_s) - 1)
        return self.offsets_s[idx]


def _offset_suffix(offset_s: int) -> str:
    sign = "+" if offset_s >= 0 else "-"
    minutes = abs(offset_s) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def iso_ms_z(ms: np.ndarray) -> list[str]:
    """`YYYY-MM-DDTHH:MM:SS.fffZ` for each instant."""
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return [s + "Z" for s in text.tolist()]


def format_instants(ms: np.ndarray, fmt: np.ndarray, offsets: OffsetTable) -> list[str]:
    """Render each instant with its device's format code (`FMT_*`)."""
    out: list[str] = [""] * len(ms)
    for code in range(N_FORMATS):
        idx = np.flatnonzero(fmt == code)
        if idx.size == 0:
            continue
        sub = ms[idx]
        if code == FMT_MS_Z:
            rendered = iso_ms_z(sub)
        elif code == FMT_S_Z:
            text = np.datetime_as_string(sub.astype("datetime64[ms]"), unit="s")
            rendered = [s + "Z" for s in text.tolist()]
        elif code == FMT_MS_OFFSET:
            offs = offsets.lookup_s(sub)
            text = np.datetime_as_string(
                (sub + offs * MS_PER_S).astype("datetime64[ms]"), unit="ms"
            )
            suffix = {int(o): _offset_suffix(int(o)) for o in np.unique(offs)}
            rendered = [s + suffix[o] for s, o in zip(text.tolist(), offs.tolist(), strict=True)]
        elif code == FMT_MS_NAIVE:
            rendered = np.datetime_as_string(sub.astype("datetime64[ms]"), unit="ms").tolist()
        else:
            text = np.datetime_as_string((sub * 1000).astype("datetime64[us]"), unit="us")
            rendered = [s + "+00:00" for s in text.tolist()]
        for i, s in zip(idx.tolist(), rendered, strict=True):
            out[i] = s
    return out


def iso_seconds_z(ms: int) -> str:
    """One instant as `YYYY-MM-DDTHH:MM:SSZ` (CRM / billing / support exports)."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
