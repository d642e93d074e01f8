"""The stream stages' logic, run in memory by the stage harness: no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from archive.handlers import ArchiveFiles, Archiving
from drift_detector.handlers import Merging, Profiling
from drift_detector.partials import Partial, WindowPolicy
from tests.kafka_tools import is_traffic_report
from tests.samples import PREDICTION
from tests.unit.fakes import FakeRevisionLocks
from vigil.adapters.catalog import ModelCatalog
from vigil.adapters.stage_logic import Message, OffsetBook, Output
from vigil.adapters.stage_testing import StageHarness
from vigil.drift.reference import build_reference
from vigil.wire.codec import Codec
from vigil.wire.records import (
    FeatureSpec,
    ModelVersion,
    PredictionEvent,
    RiskAssessment,
    WindowReport,
)
from vigil.wire.topics import METRICS, PREDICTIONS

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SPEC = [FeatureSpec(name="a", type="numeric"), FeatureSpec(name="c", type="categorical")]
POLICY = WindowPolicy(size_seconds=60, lateness_seconds=0, idle_close_seconds=30)
EVENTS = Codec(PredictionEvent)
PARTIALS, STATE = "app.partials.v1", "app.state.v1"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _catalog() -> ModelCatalog:
    rng = np.random.default_rng(0)
    rows = [
        {"a": float(x), "c": str(c)}
        for x, c in zip(rng.normal(size=2000), "xyz" * 667, strict=False)
    ]
    catalog = ModelCatalog()
    catalog.apply(
        ModelVersion(
            model_id="m",
            version="1",
            task="binary",
            features=SPEC,
            owner="me",
            risk=RiskAssessment(probability=3, impact=3, severity="medium"),
            reference=build_reference(SPEC, rows, "uploaded", T0),
            created_at=T0,
            updated_at=T0,
        )
    )
    return catalog


def _events(first: int, n: int, minute: int = 0, model: str = "m") -> list[bytes | None]:
    rng = np.random.default_rng(first)
    return [
        EVENTS.encode(
            PredictionEvent(
                prediction_id=f"p{first + i}",
                model_id=model,
                model_version="1",
                timestamp=T0 + timedelta(minutes=minute, milliseconds=i),
                features={"a": float(rng.normal()), "c": "xyz"[i % 3]},
                prediction=i % 2 == 0,
                score=0.5,
            )
        )
        for i in range(n)
    ]


def _profiler(catalog: ModelCatalog, clock: Clock) -> StageHarness:
    logic = Profiling(catalog, POLICY, EVENTS, PARTIALS, 10_000, 1.0, clock)
    return StageHarness(logic, {PREDICTIONS.name: 2})


def _counted(harness: StageHarness) -> int:
    partials = [Partial.from_bytes(r.value or b"") for r in harness.sent if r.topic == PARTIALS]
    return sum(p.events for p in partials)


# -- the offset book: what the adapter and the harness share ----------------------------------


def test_records_below_the_next_expected_offset_are_skipped() -> None:
    book = OffsetBook()
    book.assign(("t", 0), 2)
    log = [Message("t", 0, i) for i in range(5)]
    assert [r.offset for r in book.fresh({("t", 0): log})] == [2, 3, 4]
    assert book.fresh({("t", 0): log[3:]}) == []  # fetched again around a rebalance
    assert book.fresh({("t", 1): log}) == []  # not owned
    assert book.to_commit(Output()) == {("t", 0): 5}


# -- profiling ------------------------------------------------------------------------------


async def test_profiling_sends_one_partial_per_version_and_commits_what_it_read() -> None:
    clock = Clock()
    harness = _profiler(_catalog(), clock)
    await harness.assign([(PREDICTIONS.name, 0), (PREDICTIONS.name, 1)])
    await harness.put(PREDICTIONS.name, 0, _events(0, 300))
    await harness.put(PREDICTIONS.name, 1, _events(300, 200))
    assert not await harness.flush_if_due(0.5)  # neither enough events nor a second yet
    clock.now = 1.0
    assert await harness.flush_if_due(1.0)
    (partial,) = [Partial.from_bytes(r.value or b"") for r in harness.sent]
    assert (partial.model_id, partial.events, partial.partitions) == ("m", 500, 2)
    assert set(partial.marks) == {0, 1}
    assert harness.committed == {(PREDICTIONS.name, 0): 300, (PREDICTIONS.name, 1): 200}
    assert harness.logic.flushed_events == 500  # type: ignore[attr-defined]


async def test_profiling_dead_letters_what_it_cannot_read_or_place() -> None:
    harness = _profiler(_catalog(), Clock())
    await harness.assign([(PREDICTIONS.name, 0)])
    await harness.put(PREDICTIONS.name, 0, [b"garbage", *_events(0, 3, model="nobody"), None])
    await harness.put(PREDICTIONS.name, 0, _events(10, 5))
    await harness.flush()
    by_offset = {d.record.offset: d.reason for d in harness.dead_letters}
    assert sorted(by_offset) == [0, 1, 2, 3, 4]
    assert "unknown encoding" in by_offset[0]
    assert by_offset[4] == "empty message"
    assert {by_offset[i] for i in (1, 2, 3)} == {"model 'nobody' version '1' is not registered"}
    (unregistered,) = [d for d in harness.dead_letters if d.record.offset == 1]
    headers = dict(unregistered.headers())
    assert headers["vigil.source.offset"] == b"1"
    assert headers["vigil.source.topic"] == PREDICTIONS.name.encode()
    assert _counted(harness) == 5
    assert harness.committed == {(PREDICTIONS.name, 0): 10}


async def test_a_profiler_killed_before_its_flush_counts_each_event_once_after_restart() -> None:
    catalog = _catalog()
    harness = _profiler(catalog, Clock())
    owned = [(PREDICTIONS.name, 0)]
    await harness.assign(owned)
    await harness.put(PREDICTIONS.name, 0, _events(0, 100))
    await harness.flush()
    await harness.put(PREDICTIONS.name, 0, _events(100, 50))
    await harness.revoke(owned, settle=False)  # kill -9: the 50 were never committed
    await harness.assign(owned)
    await harness.poll()
    await harness.flush()
    assert _counted(harness) == 150
    assert harness.committed == {(PREDICTIONS.name, 0): 150}


# -- merging --------------------------------------------------------------------------------


async def _partials(catalog: ModelCatalog, minutes: range, n: int) -> list[bytes | None]:
    """Profiled partials of ``n`` events in each of ``minutes``, from both partitions."""
    harness = _profiler(catalog, Clock())
    await harness.assign([(PREDICTIONS.name, 0), (PREDICTIONS.name, 1)])
    for m in minutes:
        await harness.put(PREDICTIONS.name, m % 2, _events(m * n, n, minute=m))
        await harness.put(PREDICTIONS.name, 1 - m % 2, _events(m * n + 50_000, 1, minute=m))
        await harness.flush()
    return [r.value for r in harness.sent]


def _keys(n: int) -> list[bytes | None]:
    return [b"m/1"] * n


def _merger(catalog: ModelCatalog, clock: Clock) -> StageHarness:
    logic = Merging(catalog, FakeRevisionLocks(), POLICY, STATE, clock)
    return StageHarness(logic, {PARTIALS: 2}, changelog=STATE)


def _reports(harness: StageHarness) -> list[WindowReport]:
    """The window reports sent (the metrics topic also carries traffic reports)."""
    codec = Codec(WindowReport)
    return [
        codec.decode(r.value)
        for r in harness.sent
        if r.topic == METRICS.name and not is_traffic_report(r.value)
    ]


async def test_merging_reports_each_window_once_and_keeps_state_in_the_changelog() -> None:
    catalog, clock = _catalog(), Clock()
    harness = _merger(catalog, clock)
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, await _partials(catalog, range(3), 500), _keys(3))
    await harness.flush()
    reports = _reports(harness)
    assert [r.event_count for r in reports] == [501, 501]  # the third minute is still open
    assert [r.report_id for r in reports] == [
        f"m/1/{int((T0 + timedelta(minutes=i)).timestamp() * 1e6)}" for i in range(2)
    ]
    assert list(harness.changelog) == [(0, b"m/1")]
    assert harness.logic.reports_published == 2  # type: ignore[attr-defined]


async def test_a_merger_taking_a_partition_over_resumes_from_the_changelog() -> None:
    catalog, clock = _catalog(), Clock()
    partials = await _partials(catalog, range(2), 400)
    first = _merger(catalog, clock)
    await first.assign([(PARTIALS, 1)])
    await first.put(PARTIALS, 1, partials[:1], _keys(1))
    await first.flush()
    assert _reports(first) == []
    # Another worker takes partition 1 over, from the committed offset and the changelog.
    second = _merger(catalog, clock)
    second.log, second.committed, second.changelog = first.log, first.committed, first.changelog
    await first.revoke([(PARTIALS, 1)])
    await second.assign([(PARTIALS, 1)])
    second.append(PARTIALS, 1, partials[1:], _keys(1))
    await second.poll()
    clock.now = 100.0  # idle: the last window closes too
    await second.flush()
    assert [r.event_count for r in _reports(second)] == [401, 401]


async def test_merging_dead_letters_a_malformed_partial_and_a_malformed_state() -> None:
    catalog = _catalog()
    harness = _merger(catalog, Clock())
    harness.changelog[(0, b"m/1")] = Message(STATE, 0, 0, b"m/1", b"\xc3\x01 not a state")
    await harness.assign([(PARTIALS, 0)])
    values = [b"not a partial", *await _partials(catalog, range(1), 10)]
    await harness.put(PARTIALS, 0, values, _keys(2))
    await harness.flush()
    reasons = sorted(d.reason for d in harness.dead_letters)
    assert len(reasons) == 2
    assert reasons[0].startswith("not a drift partial: unknown encoding")
    assert reasons[1].startswith("not a drift state: unknown writer schema fingerprint")
    assert harness.committed == {(PARTIALS, 0): 2}
    assert harness.changelog[(0, b"m/1")].value != b"\xc3\x01 not a state"  # replaced


# -- the archive -----------------------------------------------------------------------------


def _archive(root: Path, clock: Clock) -> StageHarness:
    logic = Archiving(ArchiveFiles(str(root)), max_rows=100, max_seconds=5, clock=clock)
    return StageHarness(logic, {"p": 1})


def _events_for_archive(first: int, n: int) -> list[bytes | None]:
    return [
        EVENTS.encode(PREDICTION.model_copy(update={"prediction_id": f"a{first + i}"}))
        for i in range(n)
    ]


def _files(root: Path, pattern: str) -> list[Path]:
    return list(root.rglob(pattern))


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


@pytest.fixture
def archive_root(tmp_path: Path) -> Path:
    return tmp_path / "archive"


async def test_archive_writes_due_chunks_and_commits_past_them(archive_root: Path) -> None:
    clock = Clock()
    harness = _archive(archive_root, clock)
    await harness.assign([("p", 0)])
    await harness.put("p", 0, [*_events_for_archive(0, 60), b"junk"])
    assert not await harness.flush_if_due(0.0)  # 60 rows, young: not yet
    await harness.put("p", 0, _events_for_archive(61, 60))
    assert await harness.flush_if_due(0.0)  # 120 rows
    assert harness.committed == {("p", 0): 121}
    (junk,) = harness.dead_letters
    assert (junk.record.offset, junk.reason[:16]) == (60, "unknown encoding")
    assert len(_files(archive_root, "*.parquet")) == 1


async def test_a_killed_archive_cuts_its_interrupted_chunk_at_the_same_offset(
    archive_root: Path,
) -> None:
    clock = Clock()
    harness = _archive(archive_root, clock)
    await harness.assign([("p", 0)])
    await harness.put("p", 0, _events_for_archive(0, 10))
    clock.now = 10.0
    files = harness.logic.files  # type: ignore[attr-defined]
    first = files.write_chunk("p", 0, harness.logic.chunks[("p", 0)][0].rows)  # type: ignore[attr-defined]
    _write(Path(first[0] + ".tmp-4242"), b"half")
    await harness.revoke([("p", 0)], settle=False)  # killed after writing, before committing
    await harness.assign([("p", 0)])
    await harness.put("p", 0, _events_for_archive(10, 5))  # more arrived meanwhile
    await harness.flush()
    parquet = sorted(p.name for p in _files(archive_root, "*.parquet"))
    assert parquet[0] == Path(first[0]).name  # rewritten under the same name
    assert harness.committed == {("p", 0): 10}  # the cut; the 5 later ones wait for their turn
    assert not _files(archive_root, "*.tmp-*")
