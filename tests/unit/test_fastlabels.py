"""Labels joined from their bytes (``feedback_joiner.fastlabels``) do exactly what the join one
record at a time does: the same outcomes, dead letters, changelog entries and counts, byte for
byte, on random traffic; and the byte-level readers and writers agree with the codecs."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedback_joiner import fastlabels
from feedback_joiner.entries import ENTRIES, FEEDBACK, PREDICTIONS, avro_bytes, entry_prefix
from feedback_joiner.handlers import Joining, Topics
from feedback_joiner.rawlabels import fresh_entry, joined_entry, read_label
from tests.samples import FEEDBACK as SAMPLE_FEEDBACK
from tests.samples import MODEL, PREDICTION, T0
from tests.unit.fakes import FakeCatalog
from tests.unit.test_feedback_joiner import DictStore
from vigil.adapters.stage_logic import Assigned, Incoming, Message, Output
from vigil.performance import WindowPerformance
from vigil.wire.joins import JoinEntry, OrphanMark
from vigil.wire.records import FeedbackEvent, ModelVersion, PerformanceConfig
from vigil.wire.segments import SegmentSpec

TOPICS = Topics("predictions", "feedback", "outcomes", "changelog")
LABELS: list[Any] = [True, False, 0, 1, 7, 2**60, 1.0, 0.0, 2.5, -0.0, "yes", "no", "YES", "x"]
PREDICTED: list[Any] = [*LABELS, 2**53 + 1, -(2**62)]
SCORES: list[Any] = [None, 0.0, 1.0, 0.5, 0.123456, 0.999, float("nan")]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OneByOne(Joining):
    """The join with every feedback record taken one at a time (the reference)."""

    def join_run(self, records: Sequence[Incoming], now: datetime) -> None:
        for record in records:
            self.feedback(record, now)


def versions() -> list[ModelVersion]:
    base = MODEL.model_copy(update={"sensitive_attributes": [], "segments": []})
    return [
        base.model_copy(update={"version": "b", "positive_label": None}),
        base.model_copy(update={"version": "y", "positive_label": "yes"}),
        base.model_copy(update={"version": "c", "task": "multiclass", "positive_label": None}),
        base.model_copy(
            update={
                "version": "r",
                "task": "regression",
                "positive_label": None,
                "performance": PerformanceConfig(window_seconds=600.0),
            }
        ),
        base.model_copy(
            update={
                "version": "s",
                "positive_label": None,
                "sensitive_attributes": ["age"],
                "segments": [
                    SegmentSpec(name="income", bins=[100.0, 50_000.0]),
                    SegmentSpec(name="variant", tag=True),
                ],
                "segment_cross": ["income", "age"],
            }
        ),
        base.model_copy(  # segments of features only: its predictions are indexed by the batch
            update={"version": "f", "positive_label": None, "sensitive_attributes": ["region"]}
        ),
    ]


def random_prediction(rng: random.Random, pid: str) -> bytes:
    event = PREDICTION.model_copy(
        update={
            "prediction_id": pid,
            "model_version": rng.choice(["b", "y", "c", "r", "s", "f", "unknown"]),
            "timestamp": T0 + timedelta(seconds=rng.randint(-7200, 7200)),
            "features": {
                "income": rng.choice([52_000.5, 10.0, 99, None, "n/a"]),
                "age": rng.choice([41, 30, None]),
                "region": rng.choice(["eu", "us", None]),
            },
            "prediction": rng.choice(PREDICTED),
            "score": rng.choice(SCORES),
            "tags": rng.choice([{}, {"variant": "champion"}, {"variant": "shadow", "x": "é"}]),
        }
    )
    return PREDICTIONS.encode(event)


def random_feedback(rng: random.Random, pid: str, fid: str) -> bytes:
    flagged = rng.random() < 0.1
    event = SAMPLE_FEEDBACK.model_copy(
        update={
            "prediction_id": pid,
            "feedback_id": fid,
            "model_id": rng.choice([MODEL.model_id, None]),
            "actual": None if flagged else rng.choice(LABELS),
            "flag": "harmful" if flagged else rng.choice([None, "ok"]),
            "comment": rng.choice([None, "", "é" * 70]),
            "reviewer": rng.choice([None, "ana"]),
            "source": rng.choice(["sme", "ground_truth", "system"]),
            # Some at the very time of the prediction window's events, some the same (ties).
            "timestamp": T0 + timedelta(seconds=rng.choice([-9000, 0, 0, 1, 60, 86_400])),
        }
    )
    value = FEEDBACK.encode(event)
    if rng.random() < 0.05:
        return event.model_dump_json().encode()  # JSON: the codec's
    return value


def random_traffic(rng: random.Random, n: int) -> list[list[Message]]:
    """Batches of interleaved predictions and feedback over a few ids: resends, corrections,
    early labels, flags, ties."""
    ids = [f"id-{i}" for i in range(n // 3)]
    records: list[Message] = []
    for i in range(n):
        pid = rng.choice(ids)
        partition = int(pid.split("-")[1]) % 2
        if rng.random() < 0.4:
            records.append(Message("predictions", partition, i, None, random_prediction(rng, pid)))
        else:
            fid = f"f-{rng.randint(0, n // 2)}"  # some resent
            value = random_feedback(rng, pid, fid)
            records.append(Message("feedback", partition, i, None, value))
    batches, at = [], 0
    while at < len(records):
        size = rng.randint(1, 40)
        batches.append(records[at : at + size])
        at += size
    return batches


async def run(logic: Joining, batches: list[list[Message]], flush_every: int) -> list[Output]:
    await logic.on_assigned(Assigned([("predictions", 0), ("predictions", 1)], {}, {}))
    outputs = []
    for i, batch in enumerate(batches):
        await logic.absorb(batch)
        if i % flush_every == flush_every - 1:
            outputs.append(await logic.flush())
            logic.committed(outputs[-1])
    outputs.append(await logic.flush())
    logic.committed(outputs[-1])
    return outputs


def seen(outputs: list[Output]) -> list[Any]:
    return [
        (
            [(r.topic, r.key, r.value, r.partition) for r in o.records],
            [(d.record.topic, d.record.value, d.reason) for d in o.dead_letters],
        )
        for o in outputs
    ]


def both_ways(batches: Any, flush_every: int) -> list[tuple[Any, dict[str, int]]]:
    """What the joiner and the one-by-one reference write and count on the same traffic."""
    results = []
    for kind in (Joining, OneByOne):
        logic = kind(
            DictStore(),
            TOPICS,
            timedelta(days=30),
            clock=lambda: T0,
            versions=FakeCatalog(versions()),
        )
        outputs = asyncio.run(run(logic, batches, flush_every=flush_every))
        results.append((seen(outputs), vars(logic.counts)))
    return results


@pytest.mark.parametrize("seed", range(12))
def test_joined_from_bytes_as_one_by_one(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastlabels, "MIN_GATHERED", 1 + seed % 3)
    monkeypatch.setattr(fastlabels, "MAX_GATHERED", 3 + seed)
    rng = random.Random(seed)
    batches = random_traffic(rng, 400)
    fast, reference = both_ways(batches, flush_every=1 + seed % 4)
    assert fast == reference
    assert reference[1]["joined"] > 20 and reference[1]["corrections"] > 0


def test_a_run_of_fresh_labels_is_joined_from_bytes_as_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The usual traffic: every prediction, then a label for each, in one long run."""
    rng = random.Random(5)
    preds = [random_prediction(rng, f"p{i}") for i in range(300)]
    labels = [random_feedback(rng, f"p{i}", f"f{i}") for i in range(300)]
    batches = [
        [Message("predictions", i % 2, i, None, v) for i, v in enumerate(preds)],
        [Message("feedback", i % 2, i, None, v) for i, v in enumerate(labels)],
    ]
    calls: list[int] = []
    monkeypatch.setattr(fastlabels, "MAX_GATHERED", 50)
    original = fastlabels._lights
    monkeypatch.setattr(fastlabels, "_lights", lambda j, g: calls.append(len(g)) or original(j, g))
    fast, reference = both_ways(batches, flush_every=1)
    assert fast == reference
    assert sum(calls) > 150  # most went the fast way


def test_a_joined_entry_is_what_the_codec_writes() -> None:
    rng = random.Random(3)
    for i in range(300):
        prediction = random_prediction(rng, f"p-{i}" * rng.randint(1, 30))
        event = PREDICTIONS.decode(prediction)
        feedback = random_feedback(rng, event.prediction_id, f"f-{i}" * rng.randint(1, 40))
        first = T0 + timedelta(microseconds=rng.randint(-(10**15), 10**15))
        raw = entry_prefix(first) + avro_bytes(prediction)
        label = read_label(feedback)
        decoded = FEEDBACK.decode(feedback)
        if decoded.actual is None or feedback[:1] == b"{":
            assert label is None
            continue
        assert label is not None
        assert (label.prediction_id, label.actual, label.micros) == (
            decoded.prediction_id,
            decoded.actual,
            (decoded.timestamp - EPOCH) // timedelta(microseconds=1),
        )
        assert type(label.actual) is type(decoded.actual)
        entry = fresh_entry(raw, label.encoded_id)
        assert entry is not None
        expected = JoinEntry(
            label=decoded,
            label_joined=True,
            seen_feedback=[decoded.feedback_id],
            first_seen=first,
            prediction_event=prediction,
        )
        assert joined_entry(entry, label) == ENTRIES.encode(expected)
        assert ENTRIES.decode(joined_entry(entry, label)) == expected


def test_only_fresh_entries_and_shortest_labels_are_read_in_place() -> None:
    prediction = PREDICTIONS.encode(PREDICTION)
    label = FEEDBACK.encode(SAMPLE_FEEDBACK.model_copy(update={"flag": None}))
    read = read_label(label)
    assert read is not None
    fresh = entry_prefix(T0) + avro_bytes(prediction)
    assert fresh_entry(fresh, read.encoded_id) is not None
    other_id = read_label(
        FEEDBACK.encode(SAMPLE_FEEDBACK.model_copy(update={"prediction_id": "q"}))
    )
    assert other_id is not None and fresh_entry(fresh, other_id.encoded_id) is None
    entry = ENTRIES.decode(fresh)
    not_fresh = [
        entry.model_copy(update={"seen_feedback": ["x"]}),
        entry.model_copy(update={"label": SAMPLE_FEEDBACK}),
        entry.model_copy(update={"waiting": [SAMPLE_FEEDBACK]}),
        entry.model_copy(update={"prediction": PREDICTION, "prediction_event": None}),
        entry.model_copy(
            update={
                "orphan": OrphanMark(
                    model_id="m", model_version="1", window_start=T0, window_end=T0
                )
            }
        ),
    ]
    for changed in not_fresh:
        assert fresh_entry(ENTRIES.encode(changed), read.encoded_id) is None
    # First seen at times whose varints take 9 bytes or more: left to the codec.
    for far in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)):
        assert fresh_entry(entry_prefix(far) + avro_bytes(prediction), read.encoded_id) is None
    assert fresh_entry(fresh + b"\x00", read.encoded_id) is None  # trailing bytes
    assert fresh_entry(fresh[:-1], read.encoded_id) is None
    # The same label with a padded varint (a length of 3 in two bytes): the codec reads it,
    # but would write it otherwise.
    padded = label[:10] + b"\x86\x00" + label[11:]
    assert FEEDBACK.decode(padded).feedback_id == "f-1"
    assert read_label(padded) is None
    assert read_label(label[:-1]) is None and read_label(label + b"\x00") is None
    flag = FEEDBACK.encode(SAMPLE_FEEDBACK.model_copy(update={"actual": None}))
    assert read_label(flag) is None
    bad_utf8 = label.replace(b"ana", b"\xff\xfen")
    assert read_label(bad_utf8) is None


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_outcomes_counted_at_once_as_one_by_one(task: str) -> None:
    rng = random.Random(task)
    for positive in (None, "yes", "0"):
        rows = []
        for _ in range(500):
            row = (
                rng.choice(PREDICTED),
                rng.choice([*SCORES, 1.5, -0.1]),
                rng.choice(LABELS),
                rng.choice([None, 0.0, 1e-4, 3.5, 1e9, float("nan")]),
            )
            window = WindowPerformance(task, positive)
            if window.outcome_error(row[0], row[1], row[2]) is None:
                rows.append(row)
            else:
                with pytest.raises(ValueError):
                    window.add_outcome(*row)
        one, many = WindowPerformance(task, positive), WindowPerformance(task, positive)
        for row in rows:
            one.add_outcome(*row)
        predictions, scores, actuals, latencies = (list(c) for c in zip(*rows, strict=True))
        many.add_outcomes(predictions, scores, actuals, latencies)
        assert many.to_bytes() == one.to_bytes()
        assert many.labelled == len(rows) > 100


def test_counting_at_once_counts_nothing_if_one_cannot_be_counted() -> None:
    window = WindowPerformance("binary")
    with pytest.raises(ValueError, match="probability"):
        window.add_outcomes([True, False], [0.5, 1.5], [True, True], [1.0, 1.0])
    assert window.to_bytes() == WindowPerformance("binary").to_bytes()


def test_an_event_written_with_this_trees_schema_is_read_by_both_paths() -> None:
    """What the fast path relies on: the codec and the reader see the same label."""
    event = FeedbackEvent(
        feedback_id="f", prediction_id="p", actual=2**62, timestamp=T0, source="system"
    )
    label = read_label(FEEDBACK.encode(event))
    assert label is not None and label.actual == 2**62
