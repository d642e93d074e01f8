"""Poison for the drift detector's stages: far-future events, failing model versions, a
reference too large to publish, and a flush that keeps failing. All through ``StageHarness``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

import drift_detector.merging
from drift_detector.handlers import Merging
from drift_detector.partials import MICROS, Partial, PartialBuilder, WindowPolicy
from tests.unit.fakes import FakeRevisionLocks
from tests.unit.test_stages import (
    EVENTS,
    PARTIALS,
    STATE,
    Clock,
    _catalog,
    _events,
    _keys,
    _merger,
    _partials,
    _profiler,
    _reports,
)
from vigil.adapters.catalog import ModelCatalog
from vigil.adapters.ports import Unavailable
from vigil.adapters.stage import is_outage
from vigil.adapters.stage_logic import (
    DeadLetter,
    FlushFailures,
    Message,
    Outgoing,
    SendFailed,
    StageLogic,
    StageStuck,
)
from vigil.adapters.stage_testing import StageHarness
from vigil.wire.topics import MODELS, PREDICTIONS

YEAR_2999 = datetime(2999, 1, 1, tzinfo=UTC)


def _future_event() -> bytes:
    event = EVENTS.decode(_events(0, 1)[0] or b"")
    return EVENTS.encode(event.model_copy(update={"prediction_id": "x", "timestamp": YEAR_2999}))


async def test_an_event_from_the_far_future_is_quarantined_and_never_moves_the_clock() -> None:
    catalog = _catalog()
    harness = _profiler(catalog, Clock())
    await harness.assign([(PREDICTIONS.name, 0)])
    await harness.put(PREDICTIONS.name, 0, [*_events(0, 10), _future_event(), *_events(10, 5)])
    await harness.flush()
    (letter,) = harness.dead_letters
    assert letter.record.offset == 10
    assert letter.reason == "event time more than 300 s ahead of the worker's clock"
    assert harness.logic.quarantined == 1  # type: ignore[attr-defined]
    (partial,) = [Partial.from_bytes(r.value or b"") for r in harness.sent]
    assert (partial.events, partial.dead_lettered) == (15, 1)
    assert max(partial.marks.values()) < YEAR_2999.timestamp() * MICROS
    assert harness.committed == {(PREDICTIONS.name, 0): 16}


async def test_a_partial_from_the_far_future_is_dead_lettered_by_the_merger() -> None:
    catalog = _catalog()
    good = await _partials(catalog, range(1), 100)
    poisoned = Partial.from_bytes(good[0] or b"")
    poisoned.marks = {0: int(YEAR_2999.timestamp() * MICROS)}
    harness = _merger(catalog, Clock())
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, [poisoned.to_bytes(), *good], _keys(2))
    await harness.flush()
    (letter,) = harness.dead_letters
    assert letter.reason.startswith("partial not mergeable: event time")
    windows = harness.logic.models[("m", "1")]  # type: ignore[attr-defined]
    assert max(windows.marks.values()) < YEAR_2999.timestamp() * MICROS


def _two_models() -> ModelCatalog:
    catalog = _catalog()
    other = catalog.get("m", "1")
    assert other is not None
    catalog.apply(other.model_copy(update={"model_id": "n"}))
    return catalog


async def test_a_failing_model_version_is_dead_lettered_and_the_others_go_on() -> None:
    catalog, clock = _two_models(), Clock()
    m = await _partials(catalog, range(2), 300)
    profiler = _profiler(catalog, Clock())
    await profiler.assign([(PREDICTIONS.name, 0), (PREDICTIONS.name, 1)])
    for minute in range(2):
        await profiler.put(PREDICTIONS.name, 0, _events(minute * 300, 300, minute, model="n"))
        await profiler.put(PREDICTIONS.name, 1, _events(9_000 + minute, 1, minute, model="n"))
        await profiler.flush()
    n = [r.value for r in profiler.sent]
    harness = _merger(catalog, clock)
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, m[:1] + n[:1], [b"m/1", b"n/1"])
    await harness.flush()

    def broken(now: float) -> list[object]:
        raise RuntimeError("a bug that repeats")

    harness.logic.models[("m", "1")].close_due = broken  # type: ignore[attr-defined]
    await harness.put(PARTIALS, 0, m[1:] + n[1:], [b"m/1", b"n/1"])
    await harness.flush()
    (letter,) = harness.dead_letters
    assert (letter.record.key, letter.record.offset) == (b"m/1", 2)
    assert letter.reason == "model version m/1 failed: RuntimeError: a bug that repeats"
    assert [r.model_id for r in _reports(harness)] == ["n"]
    assert harness.committed == {(PARTIALS, 0): 4}
    restored = harness.logic.models[("m", "1")]  # type: ignore[attr-defined]
    assert sum(w.events for w in restored.windows.values()) == 301  # as last committed


async def test_a_reference_too_large_for_the_models_topic_is_kept_here_not_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(drift_detector.merging, "MODELS_MAX_BYTES", 2_000)
    catalog = _catalog()
    version = catalog.get("m", "1")
    assert version is not None
    catalog.apply(version.model_copy(update={"reference": None}))
    policy = WindowPolicy(size_seconds=60, lateness_seconds=0, reference_size=200)
    logic = Merging(catalog, FakeRevisionLocks(), policy, STATE, Clock())
    harness = StageHarness(logic, {PARTIALS: 2}, STATE)
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, await _partials(catalog, range(1), 300), _keys(1))
    await harness.flush()
    assert [r.topic for r in harness.sent if r.topic == MODELS.name] == []
    assert harness.logic.failed["reference_too_large"] == 1  # type: ignore[attr-defined]
    used = catalog.get("m", "1")
    assert used is not None and used.reference is not None  # used by this worker
    assert used.reference.source == "production"


class Blaming(StageLogic):
    """A logic that blames the records of the output record Kafka refused."""

    def __init__(self, blame: bool) -> None:
        self.blame = blame

    async def absorb(self, records: object) -> None:
        return None

    def due(self, now: float) -> bool:
        return True

    async def flush(self) -> object:  # type: ignore[override]
        return None

    def culprits(self, failed: Outgoing | None, reason: str) -> list[DeadLetter]:
        culprit = Message(PARTIALS, 0, 7, failed.key if failed else None, b"x")
        return [DeadLetter(culprit, reason)] if self.blame else []


def _refused() -> SendFailed:
    return SendFailed(Outgoing(MODELS.name, b"big", b"m/1"), MessageSizeTooLargeError())


def test_a_flush_refused_three_times_dead_letters_the_culprits_when_read_again() -> None:
    failures, logic = FlushFailures(3), Blaming(blame=True)
    for _ in range(5):
        failures.failed(logic, SendFailed(_refused().record, KafkaConnectionError()), True)
    failures.failed(logic, _refused(), False)
    failures.failed(logic, _refused(), False)
    assert failures.quarantine == {}
    failures.failed(logic, _refused(), False)
    records = [Message(PARTIALS, 0, offset, b"m/1", b"x") for offset in (6, 7, 8)]
    keep, dead = failures.screen(records)
    assert [r.offset for r in keep] == [6, 8]
    (letter,) = dead
    assert letter.reason.startswith("flush failed 3 times in a row: MessageSizeTooLargeError")
    failures.succeeded(dead)
    assert failures.quarantine == {} and failures.count == 0


def test_a_flush_failing_with_nobody_to_blame_stops_the_stage() -> None:
    failures = FlushFailures(2)
    failures.failed(Blaming(blame=False), ValueError("bug"), False)
    with pytest.raises(StageStuck):
        failures.failed(Blaming(blame=False), ValueError("bug"), False)


def test_outages_are_told_from_refusals() -> None:
    assert is_outage(KafkaConnectionError())
    assert is_outage(Unavailable("Redis", "ConnectionError"))
    assert is_outage(TimeoutError())
    assert not is_outage(_refused())
    assert not is_outage(ValueError("a bug"))


async def test_the_merger_blames_the_partials_of_the_version_whose_output_is_refused() -> None:
    catalog = _catalog()
    harness = _merger(catalog, Clock())
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, await _partials(catalog, range(1), 10), _keys(1))
    logic = harness.logic
    assert isinstance(logic, Merging)
    await logic.flush()  # in flight: Kafka refuses one of its records
    (culprit,) = logic.culprits(Outgoing(MODELS.name, b"big", b"m/1"), "too large")
    assert (culprit.record.offset, culprit.reason) == (0, "too large")
    assert logic.culprits(Outgoing(MODELS.name, b"big", b"other/1"), "x") == []


async def test_a_state_with_marks_in_the_far_future_is_dead_lettered_on_restore() -> None:
    catalog = _catalog()
    first = _merger(catalog, Clock())
    await first.assign([(PARTIALS, 0)])
    await first.put(PARTIALS, 0, await _partials(catalog, range(1), 10), _keys(1))
    await first.flush()
    windows = first.logic.models[("m", "1")]  # type: ignore[attr-defined]
    windows.marks = {0: int(YEAR_2999.timestamp() * MICROS)}
    second = _merger(catalog, Clock())
    second.changelog[(0, b"m/1")] = Message(STATE, 0, 0, b"m/1", windows.snapshot())
    await second.assign([(PARTIALS, 0)])
    await second.flush()
    (letter,) = second.dead_letters
    assert letter.reason == "not a drift state: its event-time marks are in the future"
    assert ("m", "1") not in second.logic.models  # type: ignore[attr-defined]


async def test_a_model_version_failing_to_profile_is_dead_lettered_and_the_others_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = _two_models()
    harness = _profiler(catalog, Clock())
    await harness.assign([(PREDICTIONS.name, 0)])
    add = PartialBuilder.add

    def failing(self: PartialBuilder, *args: Any) -> None:
        if self.version.model_id == "m":
            raise RuntimeError("a bug that repeats")
        add(self, *args)

    monkeypatch.setattr(PartialBuilder, "add", failing)
    await harness.put(PREDICTIONS.name, 0, [*_events(0, 3), *_events(3, 2, model="n")])
    await harness.flush()
    assert [d.reason for d in harness.dead_letters] == [
        "not profiled: RuntimeError: a bug that repeats"
    ] * 3
    partials = {p.model_id: p for p in (Partial.from_bytes(r.value or b"") for r in harness.sent)}
    assert (partials["n"].events, partials["n"].dead_lettered) == (2, 0)
    # m's partial carries only the count of its dead letters, for its traffic reports.
    failed = partials["m"]
    assert (failed.events, failed.dead_lettered, failed.rejects_only) == (0, 3, True)
