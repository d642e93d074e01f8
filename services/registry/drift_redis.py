"""Every window's ``WindowReport`` per model version, as compact rows and rollups, for the
drift heatmap, a window's detail and the fleet (``registry.drift_views``).

Fed by the metrics feed (``registry.metrics_feed``). Per version, under
``<prefix><model>/<version>``, Redis keeps:

- ``#reports``: per window start (micros), ``<created_at micros>|<zlib of its Avro>``, the
  latest report of the window (replaced only by a newer ``created_at``);
- ``#rows`` and ``#starts`` (a sorted set): each window's row (``registry.drift_rows``);
- ``#r600``, ``#r3600``, ``#r21600``, ``#r86400``: the rollup buckets, each recomputed from
  the level below (the first from the windows) whenever one of its windows is written, under
  ``WATCH`` of ``#rows``, so a replay or two replicas never count a window twice;
- ``#traffic``: events per hour, for the fleet; ``#layout``: the feature positions;
- ``#cutoff``: windows starting before it were pruned: only the last
  ``VIGIL_REGISTRY_DRIFT_WINDOW_DAYS`` days (whole UTC days before the newest window's day)
  keep their report and row; older windows are refused, so a bucket never loses a window.

and ``<prefix>#latest`` per version its newest window's verdicts. Redis can be flushed and
rebuilt from the topic (reset the feed's offsets).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from registry.drift_answers import FleetDrift, Heatmap, drift_summary
from registry.drift_index import DriftIndex
from registry.drift_rows import (
    LEVELS,
    Layout,
    bucket_start,
    decode_row,
    encode_row,
    layout_of,
    level_for,
    merge_rows,
    micros,
    row_of,
)
from vigil.wire.codec import Codec
from vigil.wire.records import WindowReport

__all__ = ["RedisDriftIndex"]

log = logging.getLogger(__name__)
REPORTS = Codec(WindowReport)
_DAY = 86_400_000_000
_HOUR = 3_600_000_000

# KEYS: #reports, #rows, #starts, #cutoff, <prefix>#latest. ARGV: window start, created_at,
# report blob, row, "<model>/<version>", summary JSON, days kept (micros). -1: too old.
_PUT = """
local start = tonumber(ARGV[1])
local newest = start
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if last[2] then newest = math.max(newest, tonumber(last[2])) end
local cutoff = newest - newest % 86400000000 - tonumber(ARGV[7])
if start < cutoff then return -1 end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local created = tonumber(string.match(current, '^(%d+)|'))
  if created and created >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[3], start, ARGV[1])
local bound = string.format('%.0f', cutoff)
while true do
  local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. bound, 'LIMIT', 0, 1000)
  if #old == 0 then break end
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
  redis.call('ZREM', KEYS[3], unpack(old))
  redis.call('SET', KEYS[4], bound)
end
local latest = redis.call('HGET', KEYS[5], ARGV[5])
local at = latest and tonumber(string.match(latest, '^(%d+)|'))
if not at or at <= start then redis.call('HSET', KEYS[5], ARGV[5], ARGV[1] .. '|' .. ARGV[6]) end
return 1
"""
# KEYS: #layout. ARGV: "<name>\\t<statistic>" of a report. Appends the names it lacks.
_GROW = """
local have = redis.call('LRANGE', KEYS[1], 0, -1)
local seen = {}
for _, entry in ipairs(have) do seen[string.match(entry, '^([^\\t]*)')] = true end
for _, entry in ipairs(ARGV) do
  local name = string.match(entry, '^([^\\t]*)')
  if not seen[name] then redis.call('RPUSH', KEYS[1], entry); seen[name] = true end
end
return redis.call('LRANGE', KEYS[1], 0, -1)
"""


def _layout(entries: Sequence[bytes]) -> Layout:
    pairs = [e.decode().split("\t", 1) for e in entries]
    return Layout(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))


class RedisDriftIndex(DriftIndex):
    def __init__(self, redis: Redis, prefix: str, window_days: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.keep = window_days * _DAY
        self.refused = 0  # windows older than those kept
        self._put = redis.register_script(_PUT)
        self._grow = redis.register_script(_GROW)
        self._layouts: dict[str, Layout] = {}

    def _base(self, model_id: str, version: str) -> str:
        return f"{self.prefix}{model_id}/{version}"

    async def _layout_for(self, base: str, report: WindowReport) -> Layout:
        wanted = layout_of(report)
        known = self._layouts.get(base)
        if known is None or not set(wanted.names) <= set(known.names):
            entries = [f"{n}\t{s}" for n, s in zip(wanted.names, wanted.statistics, strict=True)]
            known = _layout(await self._grow(keys=[f"{base}#layout"], args=entries))
            self._layouts[base] = known
        return known

    async def put(self, report: WindowReport) -> bool:
        base = self._base(report.model_id, report.model_version)
        layout = await self._layout_for(base, report)
        row = row_of(report, layout)
        keys = [f"{base}#{k}" for k in ("reports", "rows", "starts", "cutoff")]
        kept = await self._put(
            keys=[*keys, f"{self.prefix}#latest"],
            args=[
                row.start,
                micros(report.created_at),
                zlib.compress(REPORTS.encode(report), 1),
                encode_row(row),
                f"{report.model_id}/{report.model_version}",
                json.dumps(drift_summary(report)),
                self.keep,
            ],
        )
        if kept == -1:
            self.refused += 1
            log.debug("window %s is older than the windows kept", report.report_id)
        if kept != 1:
            return False
        await self._roll_up(base, row.start, layout)
        return True

    async def _roll_up(self, base: str, start: int, layout: Layout) -> None:
        """Recompute the buckets holding the window at ``start``, at every level."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(f"{base}#rows")
                    writes = await self._buckets(pipe, base, start, layout)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for key, field, value in writes:
                        pipe.hset(key, field, value)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def _buckets(
        self, pipe: Any, base: str, start: int, layout: Layout
    ) -> list[tuple[str, int, bytes | int]]:
        first = bucket_start(start, LEVELS[0])
        step = LEVELS[0] * 1_000_000
        members = await pipe.zrangebyscore(f"{base}#starts", first, first + step - 1)
        rows = [decode_row(r) for r in await pipe.hmget(f"{base}#rows", members) if r]
        if not rows:
            return []  # pruned meanwhile by a much newer window
        writes: list[tuple[str, int, bytes | int]] = []
        merged = merge_rows(rows, first, first + step, layout)
        for below, seconds in pairwise(LEVELS):
            writes.append((f"{base}#r{below}", merged.start, encode_row(merged)))
            if below == 3600:
                writes.append((f"{base}#traffic", merged.start, merged.events))
            bucket = bucket_start(start, seconds)
            fields = list(range(bucket, bucket + seconds * 1_000_000, below * 1_000_000))
            found = await pipe.hmget(f"{base}#r{below}", fields)
            siblings = [
                merged if field == merged.start else decode_row(raw)
                for field, raw in zip(fields, found, strict=True)
                if raw or field == merged.start
            ]
            merged = merge_rows(siblings, bucket, bucket + seconds * 1_000_000, layout)
        writes.append((f"{base}#r{LEVELS[-1]}", merged.start, encode_row(merged)))
        return writes

    async def window(self, model_id: str, version: str, start: datetime) -> WindowReport | None:
        base = self._base(model_id, version)
        found = await self.redis.hget(f"{base}#reports", str(micros(start)))
        if not found:
            return None
        return REPORTS.decode(zlib.decompress(cast(bytes, found).split(b"|", 1)[1]))

    async def heatmap(
        self, model_id: str, version: str, since: int, until: int, columns: int
    ) -> Heatmap:
        base = self._base(model_id, version)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lrange(f"{base}#layout", 0, -1)
            pipe.get(f"{base}#cutoff")
            pipe.zcount(f"{base}#starts", since, until - 1)
            entries, cutoff, count = cast(
                tuple[list[bytes], bytes | None, int], await pipe.execute()
            )
        # Windows pruned from the range: only the rollups still count them.
        pruned = cutoff is not None and int(cutoff) > since
        level = level_for(since, until, columns + 1 if pruned else count, columns)
        if level == 0:
            members = cast(
                list[bytes], await self.redis.zrangebyscore(f"{base}#starts", since, until - 1)
            )
            raw = await self.redis.hmget(f"{base}#rows", members) if members else []
        else:
            step = level * 1_000_000
            fields = list(range(bucket_start(since, level), until, step))
            raw = await self.redis.hmget(f"{base}#r{level}", fields)
        rows = [decode_row(r) for r in cast(list[bytes | None], raw) if r]
        return Heatmap(_layout(entries), level, rows)

    async def fleet(
        self, versions: Sequence[tuple[str, str]], since: int
    ) -> dict[tuple[str, str], FleetDrift]:
        if not versions:
            return {}
        hours = [since + i * _HOUR for i in range(24)]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(f"{self.prefix}#latest", [f"{m}/{v}" for m, v in versions])
            for m, v in versions:
                pipe.hmget(f"{self._base(m, v)}#traffic", hours)
            latest, *traffic = await pipe.execute()
        return {
            key: FleetDrift(
                [int(c) if c else 0 for c in counts],
                json.loads(head.split(b"|", 1)[1]) if head else None,
            )
            for key, head, counts in zip(versions, latest, traffic, strict=True)
        }
