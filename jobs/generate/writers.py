"""Deterministic JSON Lines writers (plain or gzip) for the landing zone.

Gzip members are written with `mtime=0` and no file name in the header, so the same lines
always give the same bytes. Writing `x.jsonl.gz` removes a stale `x.jsonl` from an earlier
run (and vice versa) so one delivery never holds both spellings of one file; other files
are left alone.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path
from typing import IO

CHUNK_LINES = 8_192


def landing_folder(out: Path, source: str, tenant_id: str, delivery_date: str) -> Path:
    """`<out>/<source>/tenant_id=<tenant>/delivery_date=<date>` (SPEC §3)."""
    return out / source / f"tenant_id={tenant_id}" / f"delivery_date={delivery_date}"


class LineWriter:
    """Writes lines (without their newline) to one `.jsonl` or `.jsonl.gz` file."""

    def __init__(self, path: Path, gzip_level: int | None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        alternate = (
            path.with_suffix("") if path.suffix == ".gz" else path.with_name(path.name + ".gz")
        )
        if alternate.exists():
            alternate.unlink()
        self._raw: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._out: IO[bytes] = (
            gzip.GzipFile(
                fileobj=self._raw, mode="wb", mtime=0, filename="", compresslevel=gzip_level
            )
            if gzip_level is not None
            else self._raw
        )
        self.lines = 0
        self._pending: list[str] = []

    def write(self, line: str) -> int:
        """Append one line; return its 1-based line number in the file."""
        self._pending.append(line)
        self.lines += 1
        if len(self._pending) >= CHUNK_LINES:
            self._flush()
        return self.lines

    def write_many(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def _flush(self) -> None:
        if self._pending:
            self._out.write(("\n".join(self._pending) + "\n").encode("utf-8"))
            self._pending = []

    def close(self) -> int:
        """Finish the file; return its size in bytes."""
        self._flush()
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()
        return self.path.stat().st_size


def write_lines(path: Path, lines: Iterable[str], gzip_level: int | None) -> tuple[int, int]:
    """Write all `lines` to `path`; return (lines, bytes)."""
    writer = LineWriter(path, gzip_level)
    writer.write_many(lines)
    size = writer.close()
    return writer.lines, size
