"""The feedback join on the in-memory stage harness: labels before or after their prediction,
corrections, resends, flags, the horizon, and state restored from the changelog."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from feedback_joiner.entries import ENTRIES, OUTCOMES, avro_bytes, entry_prefix
from feedback_joiner.handlers import PARTIALS, Joining, Topics
from feedback_joiner.ports import JoinStore
from tests.samples import FEEDBACK, MODEL, PREDICTION, T0
from tests.unit.fakes import FakeCatalog
from vigil.adapters.stage_testing import StageHarness
from vigil.performance import WindowPerformance, realised_metrics
from vigil.wire.codec import Codec
from vigil.wire.joins import JoinEntry
from vigil.wire.records import (
    FeedbackEvent,
    ModelVersion,
    Outcome,
    PerformanceConfig,
    PredictionEvent,
)

TOPICS = Topics("predictions", "feedback", "outcomes", "changelog")
PARTITIONS = {"predictions": 2, "feedback": 2}


class DictStore(JoinStore):
    def __init__(self) -> None:
        self.data: dict[int, dict[str, bytes]] = {}

    def get(self, partition: int, key: str) -> bytes | None:
        return self.data.get(partition, {}).get(key)

    def write(self, partition: int, changes: Mapping[str, bytes | None]) -> None:
        kept = self.data.setdefault(partition, {})
        for key, value in changes.items():
            if value is None:
                kept.pop(key, None)
            else:
                kept[key] = value

    def entries(self, partition: int) -> Iterator[tuple[str, bytes]]:
        return iter(list(self.data.get(partition, {}).items()))

    def reset(self, partition: int, entries: Iterable[tuple[str, bytes]]) -> None:
        self.data[partition] = dict(entries)

    def drop(self, partition: int) -> None:
        self.data.pop(partition, None)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def prediction(pid: str) -> bytes:
    event = PREDICTION.model_copy(update={"prediction_id": pid})
    return Codec(PredictionEvent).encode(event)


def label(pid: str, fid: str, actual: bool, minute: int = 0) -> bytes:
    event = FEEDBACK.model_copy(
        update={
            "prediction_id": pid,
            "feedback_id": fid,
            "actual": actual,
            "flag": None,
            "timestamp": T0 + timedelta(minutes=minute),
        }
    )
    return Codec(FeedbackEvent).encode(event)


def flag(pid: str, fid: str) -> bytes:
    event = FEEDBACK.model_copy(
        update={"prediction_id": pid, "feedback_id": fid, "actual": None, "flag": "harmful"}
    )
    return Codec(FeedbackEvent).encode(event)


def outcomes(harness: StageHarness) -> list[Outcome]:
    return [OUTCOMES.decode(r.value) for r in harness.sent if r.topic == "outcomes"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def harness(clock: Clock) -> StageHarness:
    logic = Joining(DictStore(), TOPICS, timedelta(days=30), clock=clock)
    found = StageHarness(logic, PARTITIONS, changelog="changelog")
    await found.assign([("predictions", 0), ("feedback", 0)])
    return found


async def test_a_label_joins_its_prediction_whichever_comes_first(harness: StageHarness) -> None:
    await harness.put("predictions", 0, [prediction("a")])
    await harness.put("feedback", 0, [label("a", "fa", True), label("b", "fb", False)])
    await harness.flush()
    assert [(o.prediction.prediction_id, o.feedback.actual) for o in outcomes(harness)] == [
        ("a", True)
    ]
    await harness.put("predictions", 0, [prediction("b")])  # the label was waiting
    await harness.flush()
    assert [o.prediction.prediction_id for o in outcomes(harness)] == ["a", "b"]


async def test_a_correction_names_what_it_replaces_and_an_older_label_is_ignored(
    harness: StageHarness,
) -> None:
    await harness.put("predictions", 0, [prediction("a")])
    await harness.put("feedback", 0, [label("a", "first", True, minute=1)])
    await harness.put("feedback", 0, [label("a", "second", False, minute=2)])
    await harness.put("feedback", 0, [label("a", "stale", True, minute=0)])
    await harness.flush()
    joined = outcomes(harness)
    assert [(o.feedback.feedback_id, o.replaces and o.replaces.feedback_id) for o in joined] == [
        ("first", None),
        ("second", "first"),
    ]


async def test_resent_predictions_and_feedback_are_joined_once(harness: StageHarness) -> None:
    await harness.put("predictions", 0, [prediction("a"), prediction("a")])
    await harness.put("feedback", 0, [label("a", "f", True), label("a", "f", True)])
    await harness.flush()
    await harness.put("feedback", 0, [label("a", "f", True)])  # after the flush too
    await harness.flush()
    assert len(outcomes(harness)) == 1


async def test_flags_join_without_replacing_the_label(harness: StageHarness) -> None:
    await harness.put("feedback", 0, [flag("a", "x"), label("a", "l", True)])
    await harness.put("predictions", 0, [prediction("a")])
    await harness.flush()
    joined = outcomes(harness)
    assert sorted((o.feedback.feedback_id, o.replaces is None) for o in joined) == [
        ("l", True),
        ("x", True),
    ]


async def test_state_comes_back_from_the_changelog_after_a_restart(clock: Clock) -> None:
    first = Joining(DictStore(), TOPICS, timedelta(days=30), clock=clock)
    harness = StageHarness(first, PARTITIONS, changelog="changelog")
    await harness.assign([("predictions", 0), ("feedback", 0)])
    await harness.put("predictions", 0, [prediction("a")])
    await harness.put("feedback", 0, [label("b", "fb", True)])
    await harness.flush()
    # A new worker on a fresh machine: an empty store, the same changelog and offsets.
    harness.logic = Joining(DictStore(), TOPICS, timedelta(days=30), clock=clock)
    await harness.assign([("predictions", 0), ("feedback", 0)])
    await harness.put("feedback", 0, [label("a", "fa", False)])
    await harness.put("predictions", 0, [prediction("b")])
    await harness.flush()
    assert sorted(o.prediction.prediction_id for o in outcomes(harness)) == ["a", "b"]


async def test_past_the_horizon_ids_are_forgotten_and_lonely_feedback_is_orphaned(
    clock: Clock,
) -> None:
    logic = Joining(DictStore(), TOPICS, timedelta(days=30), sweep_seconds=0.0, clock=clock)
    harness = StageHarness(logic, PARTITIONS, changelog="changelog")
    await harness.assign([("predictions", 0), ("feedback", 0)])
    await harness.put("predictions", 0, [prediction("a")])
    await harness.put("feedback", 0, [label("never", "f", True)])
    await harness.flush()
    clock.now = T0 + timedelta(days=31)
    await harness.flush()  # the sweep
    assert logic.counts.orphaned == 1 and logic.counts.expired == 2
    tombstones = [r.key for r in harness.sent if r.topic == "changelog" and r.value is None]
    assert sorted(tombstones) == [b"a", b"never"]
    await harness.put("feedback", 0, [label("a", "late", True)])
    await harness.flush()
    assert outcomes(harness) == []  # its prediction is forgotten: it waits on its own


async def test_an_undecodable_record_is_dead_lettered(harness: StageHarness) -> None:
    await harness.put("feedback", 0, [b"garbage"])
    await harness.flush()
    ((letter),) = harness.dead_letters
    assert letter.record.value == b"garbage"
    assert [r for r in harness.sent if r.topic == "changelog"] == []


async def test_predictions_and_labels_become_performance_deltas(clock: Clock) -> None:
    model = MODEL.model_copy(update={"positive_label": None})
    logic = Joining(
        DictStore(), TOPICS, timedelta(days=30), clock=clock, versions=FakeCatalog([model])
    )
    harness = StageHarness(logic, PARTITIONS, changelog="changelog")
    await harness.assign([("predictions", 0), ("feedback", 0)])
    await harness.put("predictions", 0, [prediction("a"), prediction("b")])
    await harness.put("feedback", 0, [label("a", "1", False, minute=1)])
    await harness.put("feedback", 0, [label("a", "2", True, minute=2)])  # a correction
    await harness.flush()
    partials = [PARTIALS.decode(r.value) for r in harness.sent if r.topic == TOPICS.partials]
    (partial,) = partials
    window = WindowPerformance.from_bytes(partial.state)
    # Two predictions; one label, the corrected one (the first was taken out again).
    assert (window.predictions, window.labelled) == (2, 1)
    assert realised_metrics(window)["accuracy"] == 1.0


def orphaned(harness: StageHarness) -> dict[datetime, int]:
    """Orphaned labels per window start, summed over every partial sent."""
    found: dict[datetime, int] = {}
    for r in harness.sent:
        if r.topic == TOPICS.partials:
            partial = PARTIALS.decode(r.value)
            found[partial.window_start] = found.get(partial.window_start, 0) + partial.orphaned
    return found


async def versioned(clock: Clock, *models: ModelVersion, store: JoinStore | None = None) -> Any:
    logic = Joining(
        store or DictStore(), TOPICS, timedelta(days=30), clock=clock, versions=FakeCatalog(models)
    )
    harness = StageHarness(logic, PARTITIONS, changelog="changelog")
    await harness.assign([("predictions", 0), ("feedback", 0)])
    return logic, harness


async def test_labels_without_their_prediction_are_orphans_until_it_comes(clock: Clock) -> None:
    model = MODEL.model_copy(update={"positive_label": None})
    _, harness = await versioned(clock, model)
    hour = datetime(2026, 5, 1, 12, tzinfo=T0.tzinfo)
    await harness.put("predictions", 0, [prediction("a")])
    # Labelled days later: counted in the newest window with predictions, not the label's.
    late = FEEDBACK.model_copy(
        update={"prediction_id": "never", "feedback_id": "n", "actual": True, "flag": None}
    )
    late = late.model_copy(update={"timestamp": T0 + timedelta(days=2)})
    await harness.put("feedback", 0, [Codec(FeedbackEvent).encode(late)])
    await harness.put("feedback", 0, [label("early", "e", True)])
    await harness.put("feedback", 0, [label("early", "e2", False, minute=5)])  # a correction
    await harness.flush()
    assert orphaned(harness) == {hour: 2}
    await harness.put("predictions", 0, [prediction("early")])
    await harness.flush()
    assert orphaned(harness) == {hour: 1}  # "never" is still without its prediction
    (joined,) = outcomes(harness)
    assert joined.feedback.feedback_id == "e2"


async def test_an_orphan_is_taken_back_after_a_restart_where_it_was_counted(
    clock: Clock,
) -> None:
    model = MODEL.model_copy(update={"positive_label": None})
    _, harness = await versioned(clock, model)
    await harness.put("predictions", 0, [prediction("a")])
    await harness.put("feedback", 0, [label("early", "e", True)])
    await harness.flush()
    # A new worker, state from the changelog only: the mark and the newest window come back.
    sent = len(harness.sent)
    harness.logic = Joining(
        DictStore(), TOPICS, timedelta(days=30), clock=clock, versions=FakeCatalog([model])
    )
    await harness.assign([("predictions", 0), ("feedback", 0)])
    await harness.put("feedback", 0, [label("never", "n", True)])
    await harness.put("predictions", 0, [prediction("early")])
    await harness.flush()
    hour = datetime(2026, 5, 1, 12, tzinfo=T0.tzinfo)
    assert orphaned(harness) == {hour: 1}
    after = [PARTIALS.decode(r.value) for r in harness.sent[sent:] if r.topic == TOPICS.partials]
    assert sum(p.orphaned for p in after) == 0  # "early" taken back, "never" counted


async def test_a_label_the_model_cannot_read_is_dead_lettered_with_its_reason(
    clock: Clock,
) -> None:
    model = MODEL.model_copy(update={"task": "regression", "positive_label": None})
    logic, harness = await versioned(clock, model)
    event = PREDICTION.model_copy(update={"prediction_id": "r", "prediction": 3.5, "score": None})
    await harness.put("predictions", 0, [Codec(PredictionEvent).encode(event)])
    text = FEEDBACK.model_copy(
        update={"prediction_id": "r", "feedback_id": "t", "actual": "high", "flag": None}
    )
    await harness.put("feedback", 0, [Codec(FeedbackEvent).encode(text)])
    await harness.flush()
    (letter,) = harness.dead_letters
    assert "not judged" in letter.reason and letter.record.topic == "outcomes"
    assert OUTCOMES.decode(letter.record.value).feedback.feedback_id == "t"
    assert outcomes(harness) == [] and logic.counts.unjudged == 1
    # A readable correction replaces it and is counted once.
    fixed = text.model_copy(
        update={"feedback_id": "u", "actual": 4.0, "timestamp": T0 + timedelta(minutes=1)}
    )
    await harness.put("feedback", 0, [Codec(FeedbackEvent).encode(fixed)])
    await harness.flush()
    window = WindowPerformance("regression")
    for r in harness.sent:
        if r.topic == TOPICS.partials:
            window.merge(WindowPerformance.from_bytes(PARTIALS.decode(r.value).state))
    assert (window.predictions, window.labelled) == (1, 1)
    assert realised_metrics(window)["mae"] == 0.5


async def test_windows_and_horizon_are_the_models_own(clock: Clock) -> None:
    model = MODEL.model_copy(
        update={
            "positive_label": None,
            "label_horizon": 3600.0,
            "performance": PerformanceConfig(window_seconds=600.0),
        }
    )
    logic, harness = await versioned(clock, model)
    logic.sweep_seconds = 0.0
    await harness.put("predictions", 0, [prediction("a")])
    await harness.flush()
    (partial,) = [PARTIALS.decode(r.value) for r in harness.sent if r.topic == TOPICS.partials]
    assert partial.window_start == datetime(2026, 5, 1, 12, 30, tzinfo=T0.tzinfo)
    assert partial.window_end - partial.window_start == timedelta(minutes=10)
    clock.now = T0 + timedelta(hours=2)  # past this model's horizon, not the default's
    await harness.flush()
    assert logic.counts.expired == 1


def test_a_new_entry_is_written_byte_for_byte_as_the_codec_would() -> None:
    value = prediction("a")
    written = entry_prefix(T0) + avro_bytes(value)
    expected = JoinEntry(first_seen=T0, prediction_event=value)
    assert written == ENTRIES.encode(expected)
    assert ENTRIES.decode(written) == expected


async def test_predictions_indexed_by_the_batch_count_as_one_by_one(clock: Clock) -> None:
    """The batch path (new ids) and the one-by-one path (JSON, resends) count the same."""
    model = MODEL.model_copy(update={"positive_label": "yes"})
    events = [
        PREDICTION.model_copy(
            update={
                "prediction_id": f"p{i}",
                "prediction": ["yes", "no", True, 1, "YES"][i % 5],
                "score": None if i % 7 == 0 else (i % 11) / 10,
                "timestamp": T0 + timedelta(minutes=13 * i),
            }
        )
        for i in range(60)
    ]
    counted: list[WindowPerformance] = []
    for encode in (Codec(PredictionEvent).encode, lambda e: e.model_dump_json().encode()):
        logic, harness = await versioned(clock, model)
        await harness.put("predictions", 0, [encode(e) for e in events])
        await harness.flush()
        window = WindowPerformance("binary", "yes")
        for r in harness.sent:
            if r.topic == TOPICS.partials:
                window.merge(WindowPerformance.from_bytes(PARTIALS.decode(r.value).state))
        assert logic.counts.indexed == 60
        counted.append(window)
    batch, one_by_one = counted
    assert batch.to_bytes() == one_by_one.to_bytes()
    assert batch.predictions == 60


async def test_in_one_batch_a_label_and_a_resent_prediction_join_once(
    clock: Clock,
) -> None:
    model = MODEL.model_copy(update={"positive_label": None})
    logic, harness = await versioned(clock, model)
    harness.append("feedback", 0, [label("a", "fa", True)])
    harness.append("predictions", 0, [prediction("a"), prediction("b"), prediction("a")])
    await harness.poll()
    await harness.flush()
    assert [o.prediction.prediction_id for o in outcomes(harness)] == ["a"]
    assert (logic.counts.indexed, logic.counts.duplicates) == (2, 1)
    assert orphaned(harness) == {datetime(2026, 5, 1, 12, tzinfo=T0.tzinfo): 0}
