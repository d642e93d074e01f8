"""The review queue on the real broker and Redis: experts asking at once get different items,
mixed by reason; a judged item is not handed again to its judge; a disagreement goes to a third
expert for another opinion; the summary lists the flags newest first; a flag on an item of a
model outside the key's scope is refused and nothing is stored."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from random import Random
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from redis import Redis

from feedback.api import create_app
from feedback.config import Settings
from feedback.review import Candidate, Mix
from feedback.review_store import ReviewStore
from feedback.store import FeedbackLog
from registry.api import create_app as registry_app
from tests.access import SESSION, api_key, bearer, publish_keys
from tests.kafka_tools import private_copy, publish_window
from tests.samples import REPORT
from vigil.adapters.settings import VigilSettings
from vigil.wire.records import PredictionEvent, utcnow
from vigil.wire.topics import METRICS, PREDICTIONS

RUN = uuid.uuid4().hex[:8]
MODEL = f"review-{RUN}"
OTHER = f"review-other-{RUN}"
PREFIX = f"test:review:{RUN}"
PREDICTIONS_MADE = 40
DRIFTED = range(20, 30)  # the predictions inside the drifted window
ANA, ANA_RECORD = api_key(f"ana-{RUN}", ["sme"], [MODEL])
BO, BO_RECORD = api_key(f"bo-{RUN}", ["sme"], [MODEL])
CY, CY_RECORD = api_key(f"cy-{RUN}", ["sme"], [MODEL])
DEE, DEE_RECORD = api_key(f"dee-{RUN}", ["sme"], [OTHER])


@dataclass
class Desk:
    client: TestClient
    redis: Redis
    start: Any  # the first prediction's event time

    def key(self, name: str) -> str:
        return f"{PREFIX}:{MODEL}:{name}"


def _until(check: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "did not happen in time"
        time.sleep(0.1)


def _binary(model_id: str) -> dict[str, object]:
    return {
        "model_id": model_id,
        "version": "1",
        "task": "binary",
        "features": [{"name": "x", "type": "numeric"}],
        "risk": {"probability": 1, "impact": 1},
        "owner": "tests",
    }


def _score(i: int) -> float:
    """Every fourth prediction near the threshold; the others confident."""
    return 0.5 + 0.02 * (i % 3) if i % 4 == 0 else 0.93


async def _publish(bootstrap: str, predictions: Any, metrics: Any, start: Any) -> None:
    events = [
        PredictionEvent(
            prediction_id=f"{MODEL}-{i}",
            model_id=MODEL,
            model_version="1",
            timestamp=start + timedelta(seconds=i),
            features={"x": float(i)},
            prediction=_score(i) >= 0.5,
            score=_score(i),
        )
        for i in range(PREDICTIONS_MADE)
    ]
    report = REPORT.model_copy(
        update={
            "report_id": f"{MODEL}/1/drifted",
            "model_id": MODEL,
            "model_version": "1",
            "window_start": start + timedelta(seconds=DRIFTED.start),
            "window_end": start + timedelta(seconds=DRIFTED.stop),
            "drifted_features": [REPORT.features[0].feature],
        }
    )
    await publish_window(bootstrap, predictions, events, metrics, [report])


@pytest.fixture(scope="module")
def desk(infra: VigilSettings) -> Iterator[Desk]:
    with TestClient(registry_app(), headers=SESSION) as registry:
        registry.post("/v1/models", json=_binary(MODEL)).raise_for_status()
    asyncio.run(publish_keys(infra.kafka_bootstrap, ANA_RECORD, BO_RECORD, CY_RECORD, DEE_RECORD))
    predictions = private_copy(infra.kafka_bootstrap, PREDICTIONS, RUN)
    metrics = private_copy(infra.kafka_bootstrap, METRICS, RUN)
    settings = Settings(
        feedback_review_redis_prefix=PREFIX,
        feedback_review_group_id=f"test-review-{RUN}",
        # The feedback topic is the shared one: only what is sent from now on.
        feedback_review_auto_offset_reset="latest",
        feedback_review_predictions_topic=predictions.name,
        feedback_review_metrics_topic=metrics.name,
        feedback_review_flush_seconds=0.2,
    )
    redis = Redis.from_url(infra.redis_url, decode_responses=True)
    with TestClient(create_app(settings)) as client:
        log = client.app.state.adapters  # type: ignore[attr-defined]
        assert isinstance(log, FeedbackLog) and log.review and log.review.stage
        stage = log.review.stage
        _until(lambda: stage.ready)
        _until(lambda: _queue(client, ANA, limit=1).status_code != 401)  # the key is known
        start = utcnow() - timedelta(minutes=10)
        asyncio.run(_publish(infra.kafka_bootstrap, predictions, metrics, start))
        desk = Desk(client, redis, start)
        _until(lambda: redis.zcard(desk.key("time")) == PREDICTIONS_MADE)
        _until(lambda: redis.zcard(desk.key("drifted")) == len(DRIFTED))
        yield desk
    redis.close()


def _queue(client: TestClient, key: str, model_id: str = MODEL, **params: Any) -> Any:
    return client.get(
        "/v1/review-queue", params={"model_id": model_id, **params}, headers=bearer(key)
    )


def _flag(client: TestClient, key: str, pid: str, flag: str, **more: Any) -> Any:
    body = {"prediction_id": pid, "flag": flag, "comment": f"{flag} says {key[:8]}", **more}
    return client.post("/v1/feedback", json=body, headers=bearer(key))


def test_two_experts_asking_at_once_get_different_items_mixed_by_reason(desk: Desk) -> None:
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda key: _queue(desk.client, key, limit=15), [ANA, BO]))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    ana, bo = ({item["prediction_id"]: item for item in a.json()["items"]} for a in answers)
    assert len(ana) == len(bo) == 15
    assert not ana.keys() & bo.keys()
    items = [*ana.values(), *bo.values()]
    reasons = {item["reason"] for item in items}
    assert {"random", "low_confidence", "drifted"} <= reasons
    for item in items:
        i = int(item["prediction_id"].rsplit("-", 1)[1])
        assert item["model_id"] == MODEL and item["model_version"] == "1"
        assert item["features"] == {"x": float(i)} and item["score"] == _score(i)
        assert item["lease_expires_at"] > item["timestamp"]
        if item["reason"] == "low_confidence":
            assert abs(item["score"] - 0.5) <= 0.1
        if item["reason"] == "drifted":
            assert i in DRIFTED
            assert item["drift"]["window_start"] <= item["timestamp"] < item["drift"]["window_end"]
            assert "segment" not in item["drift"]  # the window as a whole
        else:
            assert "drift" not in item


def test_experts_racing_on_the_store_never_share_a_lease(infra: VigilSettings) -> None:
    model_id = f"race-{RUN}"

    async def race() -> list[list[str]]:
        async with AsyncExitStack() as stack:
            store = await ReviewStore.open(
                stack, Settings(feedback_review_redis_prefix=f"{PREFIX}:race")
            )
            now_us = int(time.time() * 1e6)
            found = [
                (Candidate(f"r-{i}", model_id, "1", now_us - i, {}, True, 0.9), None)
                for i in range(20)
            ]
            await store.add_predictions(model_id, found, now_us)
            mix, now_ms = Mix.parse("random=1"), now_us // 1000
            handed = await asyncio.gather(
                *(
                    store.hand_out(model_id, f"expert-{e}", mix, 5, now_ms, Random(e))
                    for e in range(8)
                )
            )
            return [[h.candidate.prediction_id for h in given] for given in handed]

    given = asyncio.run(race())
    every = [pid for ids in given for pid in ids]
    assert len(every) == len(set(every)) == 20  # all handed out, none twice


def test_a_judged_item_is_not_handed_again_and_a_disagreement_goes_to_a_third_expert(
    desk: Desk,
) -> None:
    first = _queue(desk.client, ANA, limit=5).json()["items"]
    pid = first[0]["prediction_id"]
    # Ana names no model: the queue's record of what it handed out attributes the flag.
    judged = _flag(desk.client, ANA, pid, "incorrect")
    assert judged.status_code == 200, judged.text
    other = _flag(desk.client, BO, pid, "ok", model_id=MODEL)
    assert other.status_code == 200, other.text
    _until(lambda: desk.redis.zscore(desk.key("second"), pid) == 0)  # they disagree
    again = _queue(desk.client, ANA, limit=20, mix="random=1,disagreement=1").json()["items"]
    assert pid not in {item["prediction_id"] for item in again}
    third = _queue(desk.client, CY, limit=5, mix="disagreement=1").json()["items"]
    assert [(i["prediction_id"], i["reason"]) for i in third] == [(pid, "disagreement")]


def test_the_summary_lists_the_flags_newest_first_with_agreement(desk: Desk) -> None:
    _until(lambda: desk.redis.zcard(desk.key("flag_time")) >= 2)
    answer = desk.client.get(f"/v1/models/{MODEL}/feedback-summary", headers=bearer(CY))
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    flags = summary["flags"]
    assert [f["flag"] for f in flags] == ["ok", "incorrect"]
    assert [f["reviewer"] for f in flags] == [f"bo-{RUN}", f"ana-{RUN}"]
    assert flags[1]["comment"] == f"incorrect says {ANA[:8]}"
    assert flags[0]["timestamp"] > flags[1]["timestamp"]
    assert (summary["judged_items"], summary["counts"]) == (1, {"incorrect": 1, "ok": 1})
    assert summary["agreement"]["items"] == 1
    assert summary["agreement"]["agreeing_share"] == 0.0
    later = desk.client.get(
        f"/v1/models/{MODEL}/feedback-summary",
        params={"since": "2999-01-01T00:00:00Z"},
        headers=bearer(CY),
    )
    assert later.json()["flags"] == []


def test_a_flag_on_an_item_of_a_model_outside_the_scope_is_refused_naming_it(desk: Desk) -> None:
    pid = desk.redis.zrange(desk.key("out"), 0, 0)[0]  # an item the queue handed out
    kept = desk.redis.zcard(desk.key("flag_time"))
    for extra in ({}, {"model_id": OTHER}):
        refused = _flag(desk.client, DEE, pid, "harmful", **extra)
        assert refused.status_code == 403, refused.text
        assert MODEL in str(refused.json()["errors"])
    denied = _queue(desk.client, DEE)
    assert denied.status_code == 403 and MODEL in denied.json()["detail"]
    unknown = desk.client.get(
        "/v1/review-queue", params={"model_id": f"nobody-{RUN}"}, headers=SESSION
    )
    assert unknown.status_code == 404, unknown.text
    time.sleep(1.0)  # a flag that had been stored would be in the summary by now
    assert desk.redis.zcard(desk.key("flag_time")) == kept


def test_the_mix_the_model_sets_is_the_queues_default(desk: Desk) -> None:
    """A version registered with a review_mix of low-confidence items only: the queue, asked
    without a mix, mixes as it says (a mix in the request still wins); a mix of no weight or
    an unknown reason is refused at registration."""
    with TestClient(registry_app(), headers=SESSION) as registry:
        refused = registry.post(
            "/v1/models", json={**_binary(MODEL), "version": "2", "review_mix": {"random": 0}}
        )
        assert refused.status_code == 422 and "review_mix" in refused.text
        unknown = registry.post(
            "/v1/models", json={**_binary(MODEL), "version": "2", "review_mix": {"hunch": 1}}
        )
        assert unknown.status_code == 422 and "hunch" in unknown.text
        registry.post(
            "/v1/models",
            json={**_binary(MODEL), "version": "2", "review_mix": {"low_confidence": 2}},
        ).raise_for_status()

    def mix() -> Any:
        return _queue(desk.client, CY, limit=1).json()["mix"]

    _until(lambda: mix() == {"low_confidence": 1.0})
    # (The low-confidence items are all leased by now: none of another reason comes instead.)
    items = _queue(desk.client, CY, limit=5).json()["items"]
    assert {i["reason"] for i in items} <= {"low_confidence"}
    asked = _queue(desk.client, CY, limit=1, mix="random=1").json()
    assert asked["mix"] == {"random": 1.0}


def test_experts_are_measured_against_the_ground_truth_that_comes_later(desk: Desk) -> None:
    """A label pipeline's true outcome for items experts judged: every prediction here is
    ``True``, the truth ``False``, so an ``incorrect`` judgement agrees and an ``ok`` one
    does not; labels of predictions the queue does not hold are not kept."""
    judged = {pid: orjson.loads(v) for pid, v in desk.redis.hgetall(desk.key("judged")).items()}
    calls = [
        (pid, reviewer, flag)
        for pid, by in judged.items()
        for reviewer, (flag, _) in by.items()
        if flag in ("incorrect", "ok")
    ]
    assert calls, judged
    labels = [
        {"prediction_id": pid, "model_id": MODEL, "actual": False, "source": "ground_truth"}
        for pid in {pid for pid, _, _ in calls}
    ]
    labels.append({"prediction_id": f"{MODEL}-nowhere", "model_id": MODEL, "actual": True})
    sent = desk.client.post("/v1/feedback", json=labels, headers=SESSION)
    assert sent.status_code == 200, sent.text

    def measured() -> Any:
        summary = desk.client.get(f"/v1/models/{MODEL}/feedback-summary", headers=SESSION)
        return summary.json()["against_truth"]

    _until(lambda: measured()["judgements"] == len(calls))
    found = measured()
    agreeing = sum(flag == "incorrect" for _, _, flag in calls)
    assert found["items"] == len({pid for pid, _, _ in calls})
    assert found["agreeing_share"] == pytest.approx(agreeing / len(calls))
    for reviewer, figures in found["reviewers"].items():
        mine = [flag for _, r, flag in calls if r == reviewer]
        assert figures["agreeing_share"] == pytest.approx(mine.count("incorrect") / len(mine))
    assert desk.redis.hget(desk.key("truth"), f"{MODEL}-nowhere") is None
