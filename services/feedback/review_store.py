"""The review queue's state in Redis: candidates, flags, judgements and leases, per model.

Keys, under the prefix ``P`` (``VIGIL_FEEDBACK_REVIEW_REDIS_PREFIX``) and a model ``m``:

- ``P:m:items`` hash prediction id -> candidate (JSON); ``P:m:time`` zset of the candidates
  not judged yet by event time (the newest ``max_items`` younger than ``max_age``), with its
  subsets ``P:m:low`` (by distance from the threshold) and ``P:m:drifted`` (by event time);
- ``P:m:windows`` hash of the drifted windows, and of the groups of segments drifted in a
  window (``<version>/<start>`` and ``<version>/<start>/<segment>=<group>``; the latest 500);
- ``P:m:flags`` hash feedback id -> flag (JSON) and ``P:m:flag_time`` (the newest
  ``max_flags``); ``P:m:judged`` hash prediction id -> {reviewer: [flag, time]} and
  ``P:m:judged_time``; ``P:m:second`` zset of items wanting another opinion (0 first);
- ``P:m:out`` zset of the items handed out, by time; ``P:where`` hash prediction id -> model
  of every item handed out (``P:where_time``), to attribute a flag that names no model;
- ``P:m:lease:<id>`` (an item leased to one expert) and ``P:m:lease:<id>:<reviewer>`` (a second
  opinion leased to that expert): the reviewer, with a time to live;
- ``P:m:truth`` hash prediction id -> the true outcome (JSON) of a candidate or judged item,
  from a label pipeline's feedback: experts measured against ground truth.

A candidate's body stays while it is a candidate, handed out or judged. Everything but the
leases is rebuilt by reading the topics again (``feedback.review_worker``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from feedback.config import Settings
from feedback.review import REASONS, Candidate, DriftWindow, Mix, Reason, Selection, second_opinion

__all__ = ["Handed", "ReviewLimits", "ReviewStore"]

MAX_WINDOWS = 500
MAX_WHERE = 100_000


@dataclass(frozen=True)
class ReviewLimits:
    max_items: int = 2000
    max_age_us: int = 7 * 86400 * 1_000_000
    max_flags: int = 10_000
    max_opinions: int = 3
    lease_ms: int = 900_000

    @classmethod
    def of(cls, s: Settings) -> ReviewLimits:
        return cls(
            s.feedback_review_max_items,
            int(s.feedback_review_max_age_seconds * 1e6),
            s.feedback_review_max_flags,
            s.feedback_review_max_opinions,
            int(s.feedback_review_lease_seconds * 1000),
        )


@dataclass(frozen=True)
class Handed:
    """An item leased to an expert, why it was chosen, and until when (ms since the epoch);
    for ``drifted``, the drifted window (or segment group) it is from."""

    candidate: Candidate
    reason: Reason
    lease_until_ms: int
    drift: DriftWindow | None = None


def _loads(raw: str | bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)


def _ids(found: Any) -> list[str]:
    """Members or fields as Redis answered them (text: the client decodes responses)."""
    return [str(f) for f in found or []]


class ReviewStore:
    """The review queue's Redis (the state Redis, ``VIGIL_REDIS_URL``)."""

    def __init__(self, redis: Redis, prefix: str, limits: ReviewLimits) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limits = limits

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> ReviewStore:
        redis = Redis.from_url(settings.redis_url, decode_responses=True)
        stack.push_async_callback(redis.aclose)
        return cls(redis, settings.feedback_review_redis_prefix, ReviewLimits.of(settings))

    def key(self, model_id: str, name: str) -> str:
        return f"{self.prefix}:{model_id}:{name}"

    # -- what the candidates consumer writes ----------------------------------------------

    async def add_predictions(
        self, model_id: str, found: Sequence[tuple[Candidate, float | None]], now_us: int
    ) -> None:
        """Keep predictions as candidates (with their distance from the threshold, if low)."""
        k = partial_key(self, model_id)
        young = [(c, m) for c, m in found if c.timestamp > now_us - self.limits.max_age_us]
        newest = sorted(young, key=lambda f: f[0].timestamp)[-self.limits.max_items :]
        if not newest:
            return
        ids = [c.prediction_id for c, _ in newest]
        judged = await self.redis.hmget(k("judged"), ids)
        windows = [DriftWindow(**_loads(w)) for w in await self.redis.hvals(k("windows"))]
        pipe = self.redis.pipeline(transaction=False)
        for (candidate, margin), seen in zip(newest, judged, strict=True):
            if seen is not None:
                continue  # read again after its judgement: it is no first-opinion candidate
            pid = candidate.prediction_id
            pipe.hset(k("items"), pid, orjson.dumps(candidate.as_dict()))
            pipe.zadd(k("time"), {pid: candidate.timestamp})
            if margin is not None:
                pipe.zadd(k("low"), {pid: margin})
            if any(w.holds(candidate) for w in windows):
                pipe.zadd(k("drifted"), {pid: candidate.timestamp})
        await pipe.execute()
        await self._trim_candidates(model_id, now_us)

    async def _trim_candidates(self, model_id: str, now_us: int) -> None:
        k = partial_key(self, model_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrangebyscore(k("time"), "-inf", now_us - self.limits.max_age_us)
        pipe.zrange(k("time"), 0, -(self.limits.max_items + 1))
        old, over = await pipe.execute()
        gone = sorted(set(_ids(old)) | set(_ids(over)))
        if gone:
            await self._drop(model_id, gone, ("time", "low", "drifted"))

    async def _drop(self, model_id: str, ids: Sequence[str], indices: Iterable[str]) -> None:
        """Take ``ids`` out of ``indices``; forget the bodies of those left in none."""
        k = partial_key(self, model_id)
        pipe = self.redis.pipeline(transaction=False)
        for index in indices:
            pipe.zrem(k(index), *ids)
        for pid in ids:
            pipe.zscore(k("time"), pid)
            pipe.zscore(k("out"), pid)
            pipe.hexists(k("judged"), pid)
        held = (await pipe.execute())[-3 * len(ids) :]
        unheld = [pid for i, pid in enumerate(ids) if not any(held[3 * i : 3 * i + 3])]
        if unheld:
            await self.redis.hdel(k("items"), *unheld)
            await self.redis.hdel(k("truth"), *unheld)

    async def add_drift_window(self, window: DriftWindow) -> None:
        """Remember a drifted window; mark the candidates already kept from it."""
        k = partial_key(self, window.model_id)
        await self.redis.hset(k("windows"), window.field, orjson.dumps(asdict(window)))
        if await self.redis.hlen(k("windows")) > MAX_WINDOWS:
            held = await self.redis.hgetall(k("windows"))
            by_start = sorted(held, key=lambda f: (_loads(held[f])["start"], f))
            await self.redis.hdel(k("windows"), *by_start[: len(held) - MAX_WINDOWS])
        ids = _ids(await self.redis.zrangebyscore(k("time"), window.start, f"({window.end}"))
        if not ids:
            return
        bodies = await self.redis.hmget(k("items"), ids)
        marked = {
            pid: Candidate.from_dict(_loads(body)).timestamp
            for pid, body in zip(ids, bodies, strict=True)
            if body is not None and window.holds(Candidate.from_dict(_loads(body)))
        }
        if marked:
            await self.redis.zadd(k("drifted"), marked)

    async def add_flags(self, model_id: str, flags: Sequence[Mapping[str, Any]]) -> None:
        """Record experts' flags: the summary's list, each item's judgements, second opinions."""
        k = partial_key(self, model_id)
        ids = sorted({f["prediction_id"] for f in flags})
        stored = dict(zip(ids, await self.redis.hmget(k("judged"), ids), strict=True))
        judged: dict[str, dict[str, list[Any]]] = {p: _loads(j) or {} for p, j in stored.items()}
        pipe = self.redis.pipeline(transaction=False)
        for flag in flags:
            pid, at = flag["prediction_id"], flag["timestamp"]
            pipe.hset(k("flags"), flag["feedback_id"], orjson.dumps(flag))
            pipe.zadd(k("flag_time"), {flag["feedback_id"]: at})
            before = judged[pid].get(flag["reviewer"])
            if before is None or before[1] <= at:  # an expert's newest flag is their judgement
                judged[pid][flag["reviewer"]] = [flag["flag"], at]
            pipe.zadd(k("judged_time"), {pid: at}, gt=True)
        for pid, by_reviewer in judged.items():
            pipe.hset(k("judged"), pid, orjson.dumps(by_reviewer))
            pipe.delete(k(f"lease:{pid}"))  # judged: its lease is over
            pipe.zrem(k("time"), pid)
            pipe.zrem(k("low"), pid)
            pipe.zrem(k("drifted"), pid)
            given = {r: f for r, (f, _) in by_reviewer.items()}
            urgency = second_opinion(given, self.limits.max_opinions)
            if urgency is None:
                pipe.zrem(k("second"), pid)
            else:
                pipe.zadd(k("second"), {pid: urgency})
        pipe.zrange(k("flag_time"), 0, -(self.limits.max_flags + 1))
        pipe.zrange(k("judged_time"), 0, -(self.limits.max_flags + 1))
        *_, old_flags, old_items = await pipe.execute()
        old_flags, old_items = _ids(old_flags), _ids(old_items)
        if old_flags:
            await self.redis.zrem(k("flag_time"), *old_flags)
            await self.redis.hdel(k("flags"), *old_flags)
        if old_items:
            await self.redis.hdel(k("judged"), *old_items)
            await self._drop(model_id, old_items, ("judged_time", "second"))

    async def add_truths(self, truths: Sequence[tuple[str | None, str, Any]]) -> None:
        """Keep the true outcome of items the queue holds (a candidate, handed out or judged):
        the newest label read wins; labels of other predictions are not kept."""
        unnamed = await self.where([pid for model, pid, _ in truths if model is None])
        placed = [(model or unnamed.get(pid), pid, actual) for model, pid, actual in truths]
        pipe = self.redis.pipeline(transaction=False)
        known = [(m, pid, actual) for m, pid, actual in placed if m is not None]
        for model_id, pid, _ in known:
            pipe.hexists(partial_key(self, model_id)("items"), pid)
        held = await pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for (model_id, pid, actual), kept in zip(known, held, strict=True):
            if kept:
                pipe.hset(partial_key(self, model_id)("truth"), pid, orjson.dumps(actual))
        await pipe.execute()

    async def truths(self, model_id: str) -> dict[str, tuple[Any, Any]]:
        """prediction id -> (its prediction, its true outcome), for the items with both."""
        k = partial_key(self, model_id)
        truth = {str(p): _loads(a) for p, a in (await self.redis.hgetall(k("truth"))).items()}
        if not truth:
            return {}
        ids = list(truth)
        bodies = await self.redis.hmget(k("items"), ids)
        return {
            pid: (_loads(body)["prediction"], truth[pid])
            for pid, body in zip(ids, bodies, strict=True)
            if body is not None
        }

    async def where(self, prediction_ids: Sequence[str]) -> dict[str, str]:
        """The model each of these items was handed out for, when one was."""
        if not prediction_ids:
            return {}
        found = await self.redis.hmget(f"{self.prefix}:where", list(prediction_ids))
        return {p: str(m) for p, m in zip(prediction_ids, found, strict=True) if m is not None}

    # -- what the API reads -----------------------------------------------------------------

    async def flags(self, model_id: str, since_us: int | None) -> list[dict[str, Any]]:
        """The model's flags kept, newest first (not older than ``since_us``)."""
        k = partial_key(self, model_id)
        low = "-inf" if since_us is None else since_us
        ids = _ids(await self.redis.zrevrangebyscore(k("flag_time"), "+inf", low))
        if not ids:
            return []
        return [_loads(f) for f in await self.redis.hmget(k("flags"), ids) if f is not None]

    async def hand_out(
        self, model_id: str, reviewer: str, mix: Mix, limit: int, now_ms: int, rng: random.Random
    ) -> list[Handed]:
        """Lease up to ``limit`` items to ``reviewer`` in the proportions of ``mix``."""
        k = partial_key(self, model_id)
        scan = max(5 * limit, 50)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrandmember(k("time"), scan)
        pipe.zrange(k("low"), 0, scan - 1)
        pipe.zrandmember(k("drifted"), scan)
        pipe.zrange(k("second"), 0, scan - 1)
        found = [_ids(p) for p in await pipe.execute()]
        pools = dict(zip(REASONS, found, strict=True))
        ids = sorted({pid for pool in found for pid in pool})
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(k("items"), ids)
        pipe.hmget(k("judged"), ids)
        pipe.mget([k(f"lease:{pid}") for pid in ids])
        pipe.mget([k(f"lease:{pid}:{reviewer}") for pid in ids])
        bodies, judged, leased, second = await pipe.execute()
        kept = {
            pid: Candidate.from_dict(_loads(body))
            for pid, body in zip(ids, bodies, strict=True)
            if body is not None
        }
        # A first opinion: no one judged it or holds it. Another: judged, not by this expert,
        # who does not hold it already (the first expert's lease ended with their judgement).
        firsts = {p for p, j, lease in zip(ids, judged, leased, strict=True) if not (j or lease)}
        mine = {pid for pid, j, s in zip(ids, judged, second, strict=True) if s or _by(j, reviewer)}
        for reason in REASONS:
            wanted = (
                kept.keys() - mine - firsts if reason == "disagreement" else kept.keys() & firsts
            )
            pools[reason] = [p for p in pools[reason] if p in wanted]
            if reason in ("random", "drifted"):
                rng.shuffle(pools[reason])
        selection = Selection(mix.quotas(limit), pools, limit)
        ms = self.limits.lease_ms
        for pid, reason in selection.candidates():
            lease = k(f"lease:{pid}:{reviewer}" if reason == "disagreement" else f"lease:{pid}")
            if await self.redis.set(lease, reviewer, nx=True, px=ms):
                selection.took(pid, reason)
        await self._handed(model_id, list(selection.taken), now_ms)
        until = now_ms + ms
        windows: list[DriftWindow] = []
        if "drifted" in selection.taken.values():  # the group that drifted first, if any
            held = [DriftWindow(**_loads(w)) for w in await self.redis.hvals(k("windows"))]
            windows = sorted(held, key=lambda w: (w.segment is None, -w.start))
        return [
            Handed(
                kept[pid],
                reason,
                until,
                next((w for w in windows if w.holds(kept[pid])), None)
                if reason == "drifted"
                else None,
            )
            for pid, reason in selection.taken.items()
        ]

    async def _handed(self, model_id: str, ids: list[str], now_ms: int) -> None:
        """Note the items handed out: their bodies stay, and a flag on them can be attributed."""
        if not ids:
            return
        k = partial_key(self, model_id)
        where = f"{self.prefix}:where"
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(k("out"), dict.fromkeys(ids, now_ms))
        pipe.hset(where, mapping=dict.fromkeys(ids, model_id))
        pipe.zadd(f"{where}_time", dict.fromkeys(ids, now_ms))
        pipe.zrangebyscore(k("out"), "-inf", now_ms - self.limits.max_age_us // 1000)
        pipe.zrange(k("out"), 0, -(self.limits.max_items + 1))
        pipe.zrange(f"{where}_time", 0, -(MAX_WHERE + 1))
        *_, old, over, forgotten = await pipe.execute()
        old, over, forgotten = _ids(old), _ids(over), _ids(forgotten)
        if forgotten:
            await self.redis.zrem(f"{where}_time", *forgotten)
            await self.redis.hdel(where, *forgotten)
        gone = sorted(set(old) | set(over))
        if gone:
            await self._drop(model_id, gone, ("out",))


def _by(judged: str | None, reviewer: str) -> bool:
    """Whether ``reviewer`` is among an item's judges (``P:m:judged`` value)."""
    return judged is not None and reviewer in orjson.loads(judged)


def partial_key(store: ReviewStore, model_id: str) -> Callable[[str], str]:
    """``name -> P:model_id:name``."""
    return lambda name: store.key(model_id, name)


def by_model(items: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    """Pairs (model id, thing) grouped by model."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for model_id, thing in items:
        grouped[model_id].append(thing)
    return dict(grouped)
