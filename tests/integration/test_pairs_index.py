"""The registry's pairs index on the real broker and Redis: a champion's and a shadow's
predictions on shared requests, labels for the champion's only, give a paired comparison
(McNemar) that statsmodels agrees with; the newest requests are kept within the bound."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from redis.asyncio import Redis
from statsmodels.stats.contingency_tables import mcnemar

from registry.comparison import compare
from registry.pairs_index import RedisPairsIndex, SharedRequest, index_pairs
from tests.comparison_data import CHAMPION, SHADOW, UNLABELLED, shared_traffic
from tests.kafka_tools import private_copy
from vigil.adapters.bus import new_producer
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import Outcome, PredictionEvent
from vigil.wire.topics import OUTCOMES, PREDICTIONS

pytestmark = pytest.mark.integration
BOUND = 50


async def _produce(settings: VigilSettings, predictions: str, outcomes: str, tag: str) -> int:
    events, joined, _ = shared_traffic(tag)
    untagged = events[0].model_copy(update={"prediction_id": f"{tag}-untagged", "tags": {}})
    producer = new_producer(settings.kafka_bootstrap, "test")
    await producer.start()
    try:
        for event in [*events, untagged]:
            value = Codec(PredictionEvent).encode(event)
            await producer.send_and_wait(predictions, value, key=event.prediction_id.encode())
        await producer.send_and_wait(predictions, b"not a record", key=b"x")
        for outcome in joined:
            value = Codec(Outcome).encode(outcome)
            key = outcome.prediction.prediction_id.encode()
            await producer.send_and_wait(outcomes, value, key=key)
    finally:
        await producer.stop()
    return len(events) // 2


async def _run(
    settings: VigilSettings, predictions: str, outcomes: str, tag: str
) -> tuple[list[SharedRequest], list[SharedRequest], int]:
    requests = await _produce(settings, predictions, outcomes, tag)
    labelled = requests - UNLABELLED
    redis = Redis.from_url(settings.redis_url)
    full = RedisPairsIndex(redis, f"test:pairs:{tag}:full:")
    bounded = RedisPairsIndex(redis, f"test:pairs:{tag}:bounded:", max_requests=BOUND)
    tasks = [
        asyncio.create_task(
            index_pairs(settings.kafka, predictions, outcomes, f"test-pairs-{tag}-{i}", index)
        )
        for i, index in enumerate((full, bounded))
    ]
    try:
        for _ in range(300):
            found = await full.requests(CHAMPION.model_id, None, None)
            done = [r for r in found if len(r.predictions) == 2]
            if len(done) == requests and sum(r.actual is not None for r in found) == labelled:
                await asyncio.sleep(1)  # the bounded index has read as far
                kept = await bounded.requests(CHAMPION.model_id, None, None)
                hashes = [k async for k in redis.scan_iter(f"test:pairs:{tag}:bounded:*/request/*")]
                return found, kept, len(hashes)
            await asyncio.sleep(0.1)
        raise AssertionError(f"the index holds {len(found)} requests")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pattern in (f"test:pairs:{tag}:*",):
            keys = [k async for k in redis.scan_iter(pattern)]
            if keys:
                await redis.delete(*keys)
        await redis.aclose()


def test_a_shadow_and_its_champion_are_compared_paired_on_shared_requests(
    infra: VigilSettings,
) -> None:
    tag = uuid.uuid4().hex[:8]
    predictions = private_copy(infra.kafka_bootstrap, PREDICTIONS, tag).name
    outcomes = private_copy(infra.kafka_bootstrap, OUTCOMES, tag).name
    found, kept, hashes = asyncio.run(_run(infra, predictions, outcomes, tag))

    comparison = compare(CHAMPION, SHADOW, [], [], found)
    both, champion_only, shadow_only, neither = shared_traffic(tag)[2]
    expected = mcnemar([[both, champion_only], [shadow_only, neither]], exact=True)
    accuracy = comparison["accuracy"]
    assert comparison["test"] == "paired: mcnemar"
    assert (accuracy["first_only"], accuracy["second_only"]) == (champion_only, shadow_only)
    assert accuracy["p_value"] == pytest.approx(expected.pvalue)
    assert comparison["verdict"] == "better"
    assert comparison["shared"]["requests"] == len(found)
    # The label joined to the champion's prediction is the shadow's too: every shared
    # labelled request counts, though no shadow prediction was ever labelled.
    assert comparison["shared"]["labelled"] == both + champion_only + shadow_only + neither

    # Bounded: the newest requests only, and nothing left of the others.
    assert len(kept) == BOUND == hashes
    assert [r.request_id for r in kept] == [r.request_id for r in found[-BOUND:]]
