"""Experts' flags counted per model version in Redis, and published as ``FlagReport`` records
on ``vigil.metrics.v1`` once their interval is over (``VIGIL_FEEDBACK_FLAG_REPORT_SECONDS``).

The review queue's consumer (``feedback.review_worker``) hands every flag it reads to
``FlagTally.add``; the count is kept in Redis, where every replica's flags meet. Keys under
``P:flags`` (``P``: ``VIGIL_FEEDBACK_REVIEW_REDIS_PREFIX``), ``I`` = ``model/version/n`` for
interval number ``n`` (of Redis's clock):

- ``P:flags:counted:<feedback id>``: the flag was counted (kept twice ``max_age`` and a
  minute), so a flag read again after a crash is counted once; a flag older than
  ``max_age`` (re-read when the queue is rebuilt from the topic) is not news, not counted;
- ``P:flags:I:counts`` hash kind -> flags, ``P:flags:I:items`` set of the items flagged,
  ``P:flags:I:harmful`` list of the first harmful items; ``P:flags:open`` zset of the ``I``
  by the end of their interval (seconds).

A script counts with Redis's own clock, so once that clock passes an interval's end nothing is
added to it: ``FlagReporter`` (one replica at a time) publishes it then forgets it. Publishing
is at least once: a crash between the two publishes the same report again (same report id and
window), which alerting's rules take for a repeat and judge once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import orjson
from prometheus_client import Counter
from redis.asyncio import Redis

from feedback.config import Settings
from feedback.flag_counts import Counted, champion, flag_report, to_count
from vigil.adapters.ports import Bus, Catalog
from vigil.adapters.tasks import stop_tasks
from vigil.wire.base import utcnow
from vigil.wire.codec import Codec
from vigil.wire.flag_reports import FlagReport

__all__ = ["FlagReporter", "FlagTally", "start"]

log = logging.getLogger(__name__)
REPORTS = Codec(FlagReport)
MAX_HARMFUL = 20
FLAGS = Counter(
    "vigil_feedback_flags_counted_total",
    "Flags read by the review queue's consumer, by outcome (counted; again: counted before;"
    " stale: older than the tally's max age; unattributed: no version known).",
    ["outcome"],
)
PUBLISHED = Counter("vigil_feedback_flag_reports_total", "Flag reports published.")

# ARGV: prefix, interval seconds, max age seconds, harmful kept, then 6 per flag
# (feedback id, model/version, kind, prediction id, feedback time in seconds, item JSON).
_COUNT = """
local p, every, age, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local n = math.floor(tonumber(t[1]) / every)
local member, fresh, again, stale = '', 0, 0, 0
-- past the age, and past a client clock's allowed skew ahead (a future feedback time)
local ttl = 2 * math.ceil(age) + 60
for i = 5, #ARGV, 6 do
  if now - tonumber(ARGV[i + 4]) > age then
    stale = stale + 1
  elseif redis.call('SET', p .. ':counted:' .. ARGV[i], n, 'NX', 'EX', ttl) then
    member = ARGV[i + 1] .. '/' .. string.format('%d', n)
    local at = p .. ':' .. member
    redis.call('HINCRBY', at .. ':counts', ARGV[i + 2], 1)
    redis.call('SADD', at .. ':items', ARGV[i + 3])
    if ARGV[i + 2] == 'harmful' and redis.call('LLEN', at .. ':harmful') < keep then
      redis.call('RPUSH', at .. ':harmful', ARGV[i + 5])
    end
    redis.call('ZADD', p .. ':open', (n + 1) * every, member)
    fresh = fresh + 1
  else
    again = again + 1
  end
end
return {fresh, again, stale}
"""


class FlagTally:
    """Flags counted per model version and interval, in the state Redis."""

    def __init__(self, redis: Redis, prefix: str, catalog: Catalog, settings: Settings) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:flags"
        self.items_prefix = prefix
        self.catalog = catalog
        self.every = settings.feedback_flag_report_seconds
        self.max_age = settings.feedback_flag_report_max_age_seconds
        self._count = redis.register_script(_COUNT)

    async def add(self, flags: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Count flags (model id, flag as the review queue keeps it) each on its version: the
        handed-out item's when the queue knows it, else the model's champion."""
        counted: list[Counted] = []
        for model_id, flag in flags:
            version = await self._version(model_id, flag["prediction_id"])
            if version is None:
                FLAGS.labels("unattributed").inc()
            else:
                counted.append(to_count(flag, model_id, version))
        if not counted:
            return
        args: list[Any] = [self.prefix, self.every, self.max_age, MAX_HARMFUL]
        for c in counted:
            args += c.args()
        fresh, again, stale = await self._count(keys=[], args=args)
        FLAGS.labels("counted").inc(fresh)
        FLAGS.labels("again").inc(again)
        FLAGS.labels("stale").inc(stale)

    async def _version(self, model_id: str, prediction_id: str) -> str | None:
        body = await self.redis.hget(f"{self.items_prefix}:{model_id}:items", prediction_id)
        if body is not None:
            return str(orjson.loads(body)["model_version"])
        return champion(self.catalog.versions(model_id))

    async def closed(self) -> list[str]:
        """The intervals over by Redis's clock, oldest first (``model/version/n``)."""
        seconds, _ = await self.redis.time()
        found = await self.redis.zrangebyscore(f"{self.prefix}:open", "-inf", seconds)
        return [str(m) for m in found]

    async def report(self, member: str) -> FlagReport:
        """The report of one closed interval."""
        at = f"{self.prefix}:{member}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(f"{at}:counts")
        pipe.scard(f"{at}:items")
        pipe.lrange(f"{at}:harmful", 0, -1)
        counts, judged, harmful = await pipe.execute()
        tally = {str(k): int(v) for k, v in counts.items()}
        return flag_report(member, self.every, tally, int(judged), harmful, utcnow())

    async def forget(self, member: str) -> None:
        """Drop a published interval."""
        at = f"{self.prefix}:{member}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(f"{at}:counts", f"{at}:items", f"{at}:harmful")
        pipe.zrem(f"{self.prefix}:open", member)
        await pipe.execute()

    async def take_turn(self, owner: str, seconds: float) -> bool:
        """Whether ``owner`` publishes this round (one replica per round)."""
        turn = f"{self.prefix}:turn"
        return bool(await self.redis.set(turn, owner, nx=True, px=max(int(seconds * 1000), 1)))


class FlagReporter:
    """Publishes the closed intervals' reports on the metrics topic."""

    def __init__(self, tally: FlagTally, bus: Bus, topic: str) -> None:
        self.tally = tally
        self.bus = bus
        self.topic = topic
        self.owner = uuid.uuid4().hex

    async def publish_closed(self) -> list[FlagReport]:
        """Publish, then forget, every interval that is over; returns the reports."""
        published = []
        for member in await self.tally.closed():
            report = await self.tally.report(member)
            if report.event_count:
                await self.bus.send(self.topic, [(report.key.encode(), REPORTS.encode(report))])
                PUBLISHED.inc()
                published.append(report)
            await self.tally.forget(member)
        return published

    async def run(self, every_seconds: float) -> None:
        """Publish every ``every_seconds`` (one replica per round) until cancelled."""
        while True:
            try:
                if await self.tally.take_turn(self.owner, every_seconds * 0.9):
                    await self.publish_closed()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis or Kafka away: the intervals wait for the next round
                log.exception("publishing flag reports failed; trying again later")
            await asyncio.sleep(every_seconds)


async def start(stack: AsyncExitStack, settings: Settings, catalog: Catalog, bus: Bus) -> FlagTally:
    """Open the tally, and publish its reports in a task until ``stack`` closes."""
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    stack.push_async_callback(redis.aclose)
    tally = FlagTally(redis, settings.feedback_review_redis_prefix, catalog, settings)
    reporter = FlagReporter(tally, bus, settings.feedback_flag_report_topic)
    every = min(max(settings.feedback_flag_report_seconds / 6, 1.0), 10.0)
    task = asyncio.create_task(reporter.run(every), name="flag-reports")

    async def cancel() -> None:
        await stop_tasks([task])

    stack.push_async_callback(cancel)
    return tally
