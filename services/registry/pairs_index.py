"""Predictions of several versions of a model on the same request, and the request's label, for
the paired comparison of a shadow with its champion (``registry.comparison``).

Production apps tag each prediction with a ``request_id`` shared by every version that scored
that request (the champion's event and the shadow's). An indexer in each registry process
(consumer group ``VIGIL_REGISTRY_PAIRS_GROUP``) reads ``vigil.predictions.v1`` and
``vigil.outcomes.v1`` and keeps, per model and request id, each version's predicted label (for
the disagreement rate, before any label) and the request's true label from the newest outcome
of any of its predictions: labels usually come for the champion's prediction id only, and the
truth is about the request, so a label joined for one version applies to every version's
prediction of it. A request's time is its earliest prediction's event time.

Redis holds per model a sorted set of request ids by time and a hash per request
(``v:<version>`` → predicted label, ``actual``, ``at`` = the label's time), only the newest
``VIGIL_REGISTRY_PAIRS_MAX_REQUESTS`` (100,000) requests per model: older ones are dropped as
newer ones come. Writes are idempotent (a label only over an older one), so replays and several
replicas are harmless; flushed, it is rebuilt by resetting the group's offsets.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from registry.config import Settings
from registry.metrics_feed import indexer
from vigil.adapters.kafka_security import Kafka
from vigil.adapters.tasks import stop_tasks
from vigil.performance.labels import label_text
from vigil.wire.base import as_utc
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import Outcome, PredictionEvent

__all__ = [
    "REQUEST_TAG",
    "MemoryPairsIndex",
    "PairedPrediction",
    "PairsIndex",
    "RedisPairsIndex",
    "RequestLabel",
    "SharedRequest",
    "index_pairs",
    "micros",
    "open_pairs",
    "pairs_of",
]

log = logging.getLogger(__name__)
REQUEST_TAG = "request_id"
MAX_REQUEST_ID = 256  # characters; a longer tag is not indexed
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PREDICTIONS, _OUTCOMES = Codec(PredictionEvent), Codec(Outcome)


def micros(at: datetime) -> int:
    """Microseconds since the epoch."""
    return (as_utc(at) - _EPOCH) // _MICROSECOND


@dataclass(frozen=True)
class PairedPrediction:
    """One version's predicted label for a tagged request."""

    model_id: str
    request_id: str
    version: str
    label: str
    at: int  # the prediction's event time, in microseconds


@dataclass(frozen=True)
class RequestLabel:
    """The true label of a tagged request, from the outcome of one of its predictions."""

    model_id: str
    request_id: str
    actual: str
    at: int  # the feedback's time, in microseconds: the newest label wins
    predicted_at: int


@dataclass
class SharedRequest:
    """What the index holds of one request: each version's label, and the true one."""

    request_id: str
    at: int
    predictions: dict[str, str] = field(default_factory=dict)
    actual: str | None = None
    actual_at: int = -1


def pairs_of(
    record: PredictionEvent | Outcome,
) -> tuple[PairedPrediction | None, RequestLabel | None]:
    """What a prediction or an outcome tells of its request; nothing without a request id."""
    event = record.prediction if isinstance(record, Outcome) else record
    request_id = event.tags.get(REQUEST_TAG)
    if not request_id or len(request_id) > MAX_REQUEST_ID:
        return None, None
    at = micros(event.timestamp)
    predicted = PairedPrediction(
        event.model_id, request_id, event.model_version, label_text(event.prediction), at
    )
    if not isinstance(record, Outcome) or record.feedback.actual is None:
        return predicted, None
    actual = label_text(record.feedback.actual)
    return predicted, RequestLabel(
        event.model_id, request_id, actual, micros(record.feedback.timestamp), at
    )


class PairsIndex(ABC):
    """Tagged requests per model: each version's predicted label, and the true label."""

    @abstractmethod
    async def put(
        self, predictions: Sequence[PairedPrediction], labels: Sequence[RequestLabel]
    ) -> None:
        """Keep these predictions and labels (a label only over an older one)."""

    @abstractmethod
    async def requests(
        self, model_id: str, since: int | None, until: int | None
    ) -> list[SharedRequest]:
        """The model's requests of time in [since, until) (microseconds), oldest first."""


class MemoryPairsIndex(PairsIndex):
    """In this process only (a registry run without Redis, e.g. on test adapters)."""

    def __init__(self, max_requests: int = 100_000) -> None:
        self.max_requests = max_requests
        self.models: dict[str, dict[str, SharedRequest]] = {}

    def _request(self, model_id: str, request_id: str, at: int) -> SharedRequest:
        kept = self.models.setdefault(model_id, {})
        found = kept.setdefault(request_id, SharedRequest(request_id, at))
        found.at = min(found.at, at)
        return found

    def _trim(self, model_id: str) -> None:
        kept = self.models.get(model_id, {})
        if len(kept) > self.max_requests:
            oldest = sorted(kept.values(), key=lambda r: (r.at, r.request_id))
            for request in oldest[: len(kept) - self.max_requests]:
                del kept[request.request_id]

    async def put(
        self, predictions: Sequence[PairedPrediction], labels: Sequence[RequestLabel]
    ) -> None:
        for p in predictions:
            self._request(p.model_id, p.request_id, p.at).predictions[p.version] = p.label
            self._trim(p.model_id)
        for label in labels:
            request = self._request(label.model_id, label.request_id, label.predicted_at)
            if label.at >= request.actual_at:
                request.actual, request.actual_at = label.actual, label.at
            self._trim(label.model_id)

    async def requests(
        self, model_id: str, since: int | None, until: int | None
    ) -> list[SharedRequest]:
        found = [
            r
            for r in self.models.get(model_id, {}).values()
            if (since is None or r.at >= since) and (until is None or r.at < until)
        ]
        return sorted(found, key=lambda r: (r.at, r.request_id))


# KEYS[1] the model's sorted set, KEYS[2] the request's hash; ARGV: request id, time, bound,
# the prefix of the model's request hashes, then "v:<version>", label (a prediction) or
# "actual", label, its time (a label, kept only over an older one).
_PUT = """
if ARGV[5] == 'actual' then
  local at = redis.call('HGET', KEYS[2], 'at')
  if at and tonumber(at) > tonumber(ARGV[7]) then return 0 end
  redis.call('HSET', KEYS[2], 'actual', ARGV[6], 'at', ARGV[7])
else
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[6])
end
redis.call('ZADD', KEYS[1], 'LT', ARGV[2], ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
local bound = tonumber(ARGV[3])
if n > bound then
  local old = redis.call('ZPOPMIN', KEYS[1], n - bound)
  for i = 1, #old, 2 do redis.call('DEL', ARGV[4] .. old[i]) end
end
return 1
"""


# KEYS[1] the model's sorted set; ARGV: lowest and highest time, offset, count, the prefix of
# the model's request hashes. JSON [[request id, time, [field, value, …]], …]: one string to
# parse, where a reply of nested arrays would take seconds for 100,000 requests.
_READ = """
local ids = redis.call(
  'ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', ARGV[3], ARGV[4])
local out = {}
for i = 1, #ids, 2 do
  out[#out + 1] = {ids[i], ids[i + 1], redis.call('HGETALL', ARGV[5] .. ids[i])}
end
if #out == 0 then return '[]' end
return cjson.encode(out)
"""
_READ_CHUNK = 5000


class RedisPairsIndex(PairsIndex):
    def __init__(self, redis: Redis, prefix: str, max_requests: int = 100_000) -> None:
        self.redis = redis
        self.prefix = prefix
        self.max_requests = max_requests
        self._put = redis.register_script(_PUT)
        self._read = redis.register_script(_READ)

    def _keys(self, model_id: str, request_id: str = "") -> tuple[str, str, str]:
        """The model's sorted set, the prefix of its request hashes, the request's hash."""
        hashes = f"{self.prefix}{model_id}/request/"
        return f"{self.prefix}{model_id}/requests", hashes, hashes + request_id

    async def put(
        self, predictions: Sequence[PairedPrediction], labels: Sequence[RequestLabel]
    ) -> None:
        if not predictions and not labels:
            return
        pipe = self.redis.pipeline(transaction=False)
        calls: list[tuple[str, str, int, list[str | int]]] = [
            (p.model_id, p.request_id, p.at, [f"v:{p.version}", p.label]) for p in predictions
        ]
        calls += [
            (x.model_id, x.request_id, x.predicted_at, ["actual", x.actual, x.at]) for x in labels
        ]
        for model_id, request_id, at, args in calls:
            ordered, hashes, key = self._keys(model_id, request_id)
            await self._put(
                keys=[ordered, key],
                args=[request_id, at, self.max_requests, hashes, *args],
                client=pipe,
            )
        await pipe.execute()

    async def requests(
        self, model_id: str, since: int | None, until: int | None
    ) -> list[SharedRequest]:
        ordered, hashes, _ = self._keys(model_id)
        low = "-inf" if since is None else str(since)
        high = "+inf" if until is None else f"({until}"
        out: dict[str, SharedRequest] = {}
        # In chunks: Redis is never held for long. A request trimmed or added meanwhile may
        # shift a chunk's edge: one seen twice is kept once.
        offset = 0
        while True:
            args: list[str | int] = [low, high, offset, _READ_CHUNK, hashes]
            chunk = json.loads(await self._read(keys=[ordered], args=args))
            for request_id, at, flat in chunk:
                out[request_id] = _request(request_id, int(float(at)), flat)
            if len(chunk) < _READ_CHUNK:
                break
            offset += _READ_CHUNK
        return sorted(out.values(), key=lambda r: (r.at, r.request_id))


def _request(request_id: str, at: int, flat: list[str] | dict[str, str]) -> SharedRequest:
    """A request from its hash's fields (``[field, value, …]``; ``{}`` when it has none)."""
    request = SharedRequest(request_id, at)
    items = list(flat) if isinstance(flat, list) else []
    for name, value in zip(items[::2], items[1::2], strict=True):
        if name.startswith("v:"):
            request.predictions[name[2:]] = value
        elif name == "actual":
            request.actual = value
        elif name == "at":
            request.actual_at = int(value)
    return request


def _decoded(
    codec: Codec[PredictionEvent] | Codec[Outcome], value: bytes
) -> PredictionEvent | Outcome | None:
    # Untagged records, the great majority, are skipped without being decoded.
    if REQUEST_TAG.encode() not in value:
        return None
    try:
        return codec.decode(value)
    except DecodeError as exc:
        log.warning("record ignored by the pairs index: %s", exc)
        return None


async def _kept(
    index: PairsIndex, predictions: list[PairedPrediction], labels: list[RequestLabel]
) -> None:
    """Store a batch, retrying while Redis is down (the offsets wait for it)."""
    while True:
        try:
            await index.put(predictions, labels)
            return
        except (RedisError, OSError) as exc:
            log.warning("pairs index: Redis unavailable (%s); retrying", exc)
            await asyncio.sleep(1)


async def index_pairs(
    kafka: Kafka, predictions_topic: str, outcomes_topic: str, group: str, index: PairsIndex
) -> None:
    """Keep ``index`` up to date with the tagged predictions and outcomes, until cancelled."""
    consumer = await indexer(kafka, group, predictions_topic, outcomes_topic)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            predictions: list[PairedPrediction] = []
            labels: list[RequestLabel] = []
            for tp, records in batches.items():
                codec = _OUTCOMES if tp.topic == outcomes_topic else _PREDICTIONS
                for record in records:
                    found = None if record.value is None else _decoded(codec, record.value)
                    if found is None:
                        continue
                    predicted, label = pairs_of(found)
                    predictions += [predicted] if predicted else []
                    labels += [label] if label else []
            await _kept(index, predictions, labels)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


async def open_pairs(stack: AsyncExitStack, settings: Settings) -> PairsIndex:
    """The Redis index, with its indexer running until ``stack`` closes."""
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    stack.push_async_callback(redis.aclose)
    index = RedisPairsIndex(
        redis, settings.registry_pairs_redis_prefix, settings.registry_pairs_max_requests
    )
    task = asyncio.create_task(
        index_pairs(
            settings.kafka,
            settings.registry_predictions_topic,
            settings.registry_outcomes_topic,
            settings.registry_pairs_group,
            index,
        ),
        name="pairs-index",
    )
    stack.push_async_callback(stop_tasks, [task])
    return index
