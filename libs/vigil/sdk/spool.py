"""The SDK's local spool: an append-only file of events that could not be delivered yet.

Events are NDJSON lines in segment files ``spool-<seq>.ndjson``; each append is flushed and
fsynced before it counts as spooled. Segments are replayed oldest first and deleted once
delivered. A torn last line (a crash mid-write) is skipped when read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Spool"]


class Spool:
    def __init__(
        self, directory: str | os.PathLike[str], max_bytes: int, segment_bytes: int = 8 << 20
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.skipped_lines = 0

    def segments(self) -> list[Path]:
        """Spooled segments, oldest first."""
        return sorted(
            self.directory.glob("spool-*.ndjson"), key=lambda p: int(p.stem.split("-")[1])
        )

    def lines(self, segment: Path) -> int:
        """Complete event lines in a segment (a torn last line is not one)."""
        return segment.read_bytes().count(b"\n")

    def count(self) -> int:
        """Events waiting in the spool."""
        return sum(self.lines(s) for s in self.segments())

    def append(self, events: Sequence[dict[str, Any]]) -> bool:
        """Durably append ``events``; False (and nothing written) if the spool would overflow."""
        data = b"".join(orjson.dumps(e) + b"\n" for e in events)
        segments = self.segments()
        sizes = [s.stat().st_size for s in segments]
        if sum(sizes) + len(data) > self.max_bytes:
            return False
        last = segments[-1] if segments else None
        if last is None or sizes[-1] + len(data) > self.segment_bytes:
            seq = int(last.stem.split("-")[1]) + 1 if last else 1
            last = self.directory / f"spool-{seq:08d}.ndjson"
        with last.open("ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return True

    def read(self, segment: Path) -> list[dict[str, Any]]:
        """The events in one segment."""
        return self.read_counted(segment)[0]

    def read_counted(self, segment: Path) -> tuple[list[dict[str, Any]], int]:
        """The events in one segment, and its complete lines (what ``count`` counted)."""
        data = segment.read_bytes()
        events = []
        for line in data.splitlines():
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                self.skipped_lines += 1
        return events, data.count(b"\n")

    def remove(self, segment: Path) -> None:
        segment.unlink(missing_ok=True)
