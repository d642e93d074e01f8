"""The latest revision of each window's ``PerformanceReport``, per model version, for
``GET /v1/models/{id}/versions/{v}/performance`` (``registry.performance``) and the fleet.

The feedback joiner's reporter publishes a window's report again at every revision, on
``vigil.metrics.v1`` beside the drift reports. The registry's metrics feed
(``registry.metrics_feed``) keeps, per model version, the newest revision of each window in a
Redis hash (one field per window start, written only over an older revision, so replays and
several replicas are harmless). Beside it, for the fleet (one ``HMGET`` each for every
version): in ``<prefix>#latest``, per version, its latest window's headline fields; in
``<prefix>#labelled_at``, per version, the ``created_at`` of the newest revision kept whose
``labelled`` count grew over the window's previous revision kept (the window's counts are in
``<prefix><model>/<version>#labelled``): when labels last arrived. Redis can be flushed: reset
the feed's offsets and it is rebuilt from the topic, as far back as the topic keeps.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast

from redis.asyncio import Redis

from registry.drift_rows import from_micros, micros
from registry.metrics_feed import ReportIndex, is_record
from vigil.wire.base import Record, as_utc
from vigil.wire.performance import PerformanceReport

__all__ = [
    "MemoryPerformanceIndex",
    "PerformanceIndex",
    "RedisPerformanceIndex",
    "VersionPerformance",
    "is_performance_report",
    "within",
]

# What the fleet shows of a version's latest window.
_HEADLINE_FIELDS = {
    "window_end",
    "metrics",
    "reference_metrics",
    "degraded",
    "value_per_prediction",
    "reference_value_per_prediction",
    "currency",
    "estimated",
}

# KEYS: the version's hash, its labelled counts, #latest, #labelled_at. ARGV: window field,
# revision, report JSON, labelled, created_at (micros), "<model>/<version>", headline JSON.
# Kept only over an older revision: "<revision>|<json>".
_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local revision = tonumber(string.match(current, '^(%d+)|'))
  if revision and revision >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
local before = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
if tonumber(ARGV[4]) > before then
  local at = tonumber(redis.call('HGET', KEYS[4], ARGV[6]) or '0')
  if tonumber(ARGV[5]) > at then redis.call('HSET', KEYS[4], ARGV[6], ARGV[5]) end
end
local latest = redis.call('HGET', KEYS[3], ARGV[6])
local start = latest and tonumber(string.match(latest, '^(%d+)|'))
if not start or start <= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[3], ARGV[6], ARGV[1] .. '|' .. ARGV[7])
end
return 1
"""


@dataclass(frozen=True)
class VersionPerformance:
    """A version's latest window (its headline fields, as JSON) and when labels last came."""

    latest: dict[str, Any] | None
    last_label_at: datetime | None


def headline_fields(report: PerformanceReport) -> dict[str, Any]:
    return report.model_dump(mode="json", include=_HEADLINE_FIELDS)


class PerformanceIndex(ReportIndex[PerformanceReport]):
    """The latest revision of every window's report, per model version."""

    record: ClassVar[type[Record]] = PerformanceReport

    @abstractmethod
    async def windows(self, model_id: str, version: str) -> list[PerformanceReport]:
        """Every window's latest report of a version, by window start."""

    @abstractmethod
    async def latest(
        self, versions: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], VersionPerformance]:
        """Per (model, version): its latest window and when labels last came."""


class MemoryPerformanceIndex(PerformanceIndex):
    """In this process only (a registry run without Redis, e.g. on test adapters)."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str, datetime], PerformanceReport] = {}
        self.labelled_at: dict[tuple[str, str], datetime] = {}

    async def put(self, report: PerformanceReport) -> bool:
        key = (report.model_id, report.model_version, as_utc(report.window_start))
        before = self.kept.get(key)
        if before is not None and before.revision >= report.revision:
            return False
        self.kept[key] = report
        if report.labelled > (before.labelled if before else 0):
            version, at = key[:2], as_utc(report.created_at)
            self.labelled_at[version] = max(at, self.labelled_at.get(version, at))
        return True

    async def windows(self, model_id: str, version: str) -> list[PerformanceReport]:
        found = [r for (m, v, _), r in self.kept.items() if (m, v) == (model_id, version)]
        return sorted(found, key=lambda r: as_utc(r.window_start))

    async def latest(
        self, versions: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], VersionPerformance]:
        newest: dict[tuple[str, str], PerformanceReport] = {}
        for (m, v, start), report in self.kept.items():
            kept = newest.get((m, v))
            if kept is None or as_utc(kept.window_start) <= start:
                newest[(m, v)] = report
        return {
            key: VersionPerformance(
                headline_fields(newest[key]) if key in newest else None,
                self.labelled_at.get(key),
            )
            for key in versions
        }


class RedisPerformanceIndex(PerformanceIndex):
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._newer = redis.register_script(_NEWER)

    def _key(self, model_id: str, version: str) -> str:
        return f"{self.prefix}{model_id}/{version}"

    async def put(self, report: PerformanceReport) -> bool:
        field = str(micros(as_utc(report.window_start)))
        key = self._key(report.model_id, report.model_version)
        keys = [key, f"{key}#labelled", f"{self.prefix}#latest", f"{self.prefix}#labelled_at"]
        args: list[str | int] = [
            field,
            report.revision,
            report.model_dump_json(),
            report.labelled,
            micros(report.created_at),
            f"{report.model_id}/{report.model_version}",
            json.dumps(headline_fields(report)),
        ]
        return bool(await self._newer(keys=keys, args=args))

    async def windows(self, model_id: str, version: str) -> list[PerformanceReport]:
        found = cast(dict[bytes, bytes], await self.redis.hgetall(self._key(model_id, version)))
        reports = [
            PerformanceReport.model_validate_json(value.split(b"|", 1)[1])
            for value in found.values()
        ]
        return sorted(reports, key=lambda r: as_utc(r.window_start))

    async def latest(
        self, versions: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], VersionPerformance]:
        if not versions:
            return {}
        fields = [f"{m}/{v}" for m, v in versions]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(f"{self.prefix}#latest", fields)
            pipe.hmget(f"{self.prefix}#labelled_at", fields)
            heads, times = cast(list[list[bytes | None]], await pipe.execute())
        return {
            key: VersionPerformance(
                json.loads(head.split(b"|", 1)[1]) if head else None,
                from_micros(int(at)) if at else None,
            )
            for key, head, at in zip(versions, heads, times, strict=True)
        }


def within(
    reports: Sequence[PerformanceReport], since: datetime | None, until: datetime | None
) -> list[PerformanceReport]:
    """The reports of windows that end after ``since`` and start before ``until``."""
    return [
        r
        for r in reports
        if (since is None or as_utc(r.window_end) > as_utc(since))
        and (until is None or as_utc(r.window_start) < as_utc(until))
    ]


def is_performance_report(value: bytes | None) -> bool:
    """Whether a record of the metrics topic is a PerformanceReport (read without decoding)."""
    return is_record(value, PerformanceReport)
