"""Production references the merger builds, published under the registry's revision rule:
the version's lock, the latest record, the registry's upload winning. Through ``StageHarness``."""

from __future__ import annotations

from datetime import timedelta

from drift_detector.merging import Merging
from drift_detector.partials import WindowPolicy
from drift_detector.references import ReferencePublisher, published_record
from tests.unit.fakes import FakeCatalog, FakeRevisionLocks
from tests.unit.test_stages import (
    PARTIALS,
    STATE,
    T0,
    Clock,
    _catalog,
    _keys,
    _partials,
    _reports,
)
from vigil.adapters.stage_testing import StageHarness
from vigil.drift.reference import build_reference
from vigil.wire.codec import Codec
from vigil.wire.records import DriftConfig, ModelVersion, ReferenceChange
from vigil.wire.topics import MODELS

VERSIONS = Codec(ModelVersion)
POLICY = WindowPolicy(size_seconds=60, lateness_seconds=0, reference_size=200)


def _unreferenced() -> ModelVersion:
    version = _catalog().get("m", "1")
    assert version is not None
    return version.model_copy(update={"reference": None})


def _merger(catalog: FakeCatalog, locks: FakeRevisionLocks, clock: Clock) -> StageHarness:
    return StageHarness(Merging(catalog, locks, POLICY, STATE, clock), {PARTIALS: 2}, STATE)


def _logic(harness: StageHarness) -> Merging:
    assert isinstance(harness.logic, Merging)
    return harness.logic


def _published(harness: StageHarness) -> list[ModelVersion]:
    return [VERSIONS.decode(r.value or b"") for r in harness.sent if r.topic == MODELS.name]


async def _built(
    catalog: FakeCatalog, locks: FakeRevisionLocks, clock: Clock
) -> tuple[StageHarness, list[bytes | None]]:
    """A merger that has absorbed enough events to build a reference (not flushed yet)."""
    partials = await _partials(catalog, range(2), 300)
    harness = _merger(catalog, locks, clock)
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, partials[:1], _keys(1))
    assert _logic(harness).models[("m", "1")].built_reference is not None
    return harness, partials[1:]


async def test_a_registry_change_made_while_the_reference_was_built_survives() -> None:
    unreferenced = _unreferenced()
    catalog, locks = FakeCatalog([unreferenced]), FakeRevisionLocks()
    harness, _ = await _built(catalog, locks, Clock())
    # Drift settings changed through the registry: published, not seen here yet.
    changed = unreferenced.model_copy(
        update={"drift": DriftConfig(threshold=0.3), "updated_at": T0 + timedelta(hours=1)}
    )
    catalog.elsewhere.append(changed)
    await harness.flush()
    (published,) = _published(harness)
    assert published.drift.threshold == 0.3  # the registry's change is kept
    assert published.reference is not None and published.reference.source == "production"
    assert published.reference.version == 1
    assert [(h.version, h.source) for h in published.reference_history] == [(1, "production")]
    assert published.updated_at > changed.updated_at  # a new revision, after the registry's
    assert catalog.get("m", "1") == published  # read-your-writes
    assert _logic(harness).models[("m", "1")].version == published
    assert (locks.taken, catalog.catch_ups) == (1, 1)


async def test_a_reference_uploaded_meanwhile_wins_and_the_merger_adopts_it() -> None:
    unreferenced = _unreferenced()
    catalog, locks = FakeCatalog([unreferenced]), FakeRevisionLocks()
    harness, _ = await _built(catalog, locks, Clock())
    uploaded = _catalog().get("m", "1")
    assert uploaded is not None and uploaded.reference is not None
    uploaded = uploaded.model_copy(update={"updated_at": T0 + timedelta(hours=1)})
    catalog.elsewhere.append(uploaded)
    await harness.flush()
    assert _published(harness) == []  # the upload is not overwritten
    logic = _logic(harness)
    windows = logic.models[("m", "1")]
    assert windows.built_reference is None and windows.reference == uploaded.reference
    assert logic.publisher.counts["adopted"] == 1
    assert locks.holders == {}  # nothing to publish: given back at once
    # A restart resumes with the upload, not with the reference built here.
    again = _merger(catalog, FakeRevisionLocks(), Clock())
    again.changelog = harness.changelog
    await again.assign([(PARTIALS, 0)])
    restored = _logic(again).models[("m", "1")]
    assert restored.built_reference is None and restored.reference == uploaded.reference


async def test_while_the_registry_holds_the_lock_the_reference_waits_and_is_used_here() -> None:
    unreferenced = _unreferenced()
    catalog, locks, clock = FakeCatalog([unreferenced]), FakeRevisionLocks(), Clock()
    locks.holders["m/1"] = "a registry request"
    harness, later = await _built(catalog, locks, clock)
    await harness.flush()
    assert _published(harness) == []
    windows = _logic(harness).models[("m", "1")]
    assert windows.built_reference is not None and windows.reference == windows.built_reference
    assert locks.busy == 1
    # Not tried again before the retry delay; meanwhile partials are merged as usual.
    await harness.put(PARTIALS, 0, later, _keys(1))
    await harness.flush()
    assert (locks.busy, _published(harness)) == (1, [])
    # The registry's change lands and its lock is free: the next try publishes on top of it.
    changed = unreferenced.model_copy(
        update={"owner": "another team", "updated_at": T0 + timedelta(hours=1)}
    )
    catalog.apply(changed)
    del locks.holders["m/1"]
    clock.now = 10.0
    await harness.flush()
    (published,) = _published(harness)
    assert published.owner == "another team" and published.reference is not None
    assert _logic(harness).publisher.counts == {"postponed": 1, "published": 1}


async def test_the_lock_is_held_until_the_publishing_flush_is_over() -> None:
    catalog, locks = FakeCatalog([_unreferenced()]), FakeRevisionLocks()
    harness, _ = await _built(catalog, locks, Clock())
    await harness.flush()
    assert len(_published(harness)) == 1
    # Committed; given back by the next flush (``committed`` cannot wait for Redis).
    assert list(locks.holders) == ["m/1"]
    await harness.flush()
    assert locks.holders == {}


async def test_an_aborted_flush_gives_its_lock_back() -> None:
    catalog, locks = FakeCatalog([_unreferenced()]), FakeRevisionLocks()
    harness, _ = await _built(catalog, locks, Clock())
    logic = _logic(harness)
    await logic.flush()  # the transaction is never committed: the process dies or Kafka fails
    assert list(locks.holders) == ["m/1"]
    await harness.revoke([(PARTIALS, 0)], settle=False)
    await logic.flush()
    assert locks.holders == {}


async def test_without_redis_the_reference_waits_and_reports_go_on() -> None:
    catalog, locks, clock = FakeCatalog([_unreferenced()]), FakeRevisionLocks(), Clock()
    harness, later = await _built(catalog, locks, clock)
    locks.down = True
    await harness.put(PARTIALS, 0, later, _keys(1))
    await harness.flush()
    assert _published(harness) == []
    assert len(_reports(harness)) == 1
    locks.down = False
    clock.now = 10.0
    await harness.flush()
    assert len(_published(harness)) == 1


async def test_a_catalog_that_cannot_catch_up_postpones_the_reference() -> None:
    catalog, locks, clock = FakeCatalog([_unreferenced()]), FakeRevisionLocks(), Clock()
    publisher = ReferencePublisher(catalog, locks, clock)
    built = build_reference([], [], "production", T0)
    catalog.down = True
    decision = await publisher.decide(("m", "1"), built, T0)
    assert decision.outcome == "later"
    assert locks.holders == {}  # not kept while nothing is decided


def test_the_published_record_numbers_the_reference_after_every_earlier_one() -> None:
    unreferenced = _unreferenced()
    earlier = ReferenceChange(version=4, source="uploaded", row_count=10, created_at=T0)
    latest = unreferenced.model_copy(
        update={"reference_history": [earlier], "updated_at": T0 + timedelta(days=1)}
    )
    built = build_reference([], [], "production", T0)
    record = published_record(latest, built, T0)  # this worker's clock is behind
    assert record.reference is not None and record.reference.version == 5
    assert record.updated_at == latest.updated_at + timedelta(microseconds=1)
    assert [h.version for h in record.reference_history] == [4, 5]
    assert record.reference_history[0].replaced_at == record.updated_at
