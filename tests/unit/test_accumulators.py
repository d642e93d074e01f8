"""One contract for every accumulator of ``vigil.drift``: merge, serialise, add nothing.

Accumulators are found through ``Accumulator.__subclasses__()`` after importing every module
of the package, so a new one fails here until it has a factory below and keeps the contract.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable

import numpy as np
import pytest

import vigil.drift
from tests.drift_data import SPEC, T0, events
from vigil.drift.accumulators import Accumulator, State
from vigil.drift.counts import CategoricalCounts, NumericCounts
from vigil.drift.errors import ErrorCounts
from vigil.drift.reference import build_reference_from_batch
from vigil.drift.window import WindowProfile
from vigil.wire.columns import Batch, batch_from_rows, concat_batches
from vigil.wire.records import ReferenceProfile

Factory = Callable[[ReferenceProfile], Accumulator]


def _mv(reference: ReferenceProfile) -> ErrorCounts:
    assert reference.multivariate is not None
    return ErrorCounts(reference.multivariate)


def _label(reference: ReferenceProfile) -> CategoricalCounts:
    assert reference.prediction is not None
    return CategoricalCounts(reference.prediction, None, "label", "prediction")


def _score(reference: ReferenceProfile) -> NumericCounts:
    assert reference.score is not None
    return NumericCounts(reference.score, None, None, "score")


# Per class, the ways it is built from a reference (feature, output, ...).
FACTORIES: dict[type[Accumulator], dict[str, Factory]] = {
    NumericCounts: {
        "normal": lambda r: NumericCounts(r.features[0], SPEC[0]),
        "student_t": lambda r: NumericCounts(r.features[9], SPEC[9]),
        "poisson": lambda r: NumericCounts(r.features[11], SPEC[11]),
        "score": _score,
    },
    CategoricalCounts: {
        "zipf": lambda r: CategoricalCounts(r.features[22]),
        "prediction": _label,
    },
    ErrorCounts: {"pca": _mv},
    WindowProfile: {"window": lambda r: WindowProfile(r, SPEC)},
}


def _concrete_accumulators() -> list[type[Accumulator]]:
    for module in pkgutil.iter_modules(vigil.drift.__path__, "vigil.drift."):
        importlib.import_module(module.name)
    found: list[type[Accumulator]] = []
    pending = list(Accumulator.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if not inspect.isabstract(cls):
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


CLASSES = _concrete_accumulators()
CASES = [
    pytest.param(cls, name, id=f"{cls.__name__}-{name}")
    for cls in CLASSES
    for name in FACTORIES.get(cls, {"no factory": _mv})
]


def _messy(n: int) -> Batch:
    """Events with missing values, values of the wrong type and unseen categories."""
    names = [f.name for f in SPEC]
    values: list[object] = [None, "text", True, float("inf"), float("nan"), 1e9, -3, "v1"]
    rows = [{name: values[(i + j) % len(values)] for j, name in enumerate(names)} for i in range(n)]
    predictions: list[object] = [None, True, 1, "yes", 2.5, False][: n % 6] + [True] * (n - n % 6)
    scores = [None if i % 3 == 0 else i / (n + 1) for i in range(n)]
    return batch_from_rows("m", "1", rows, names, predictions=predictions, scores=scores)


@pytest.fixture(scope="module")
def reference() -> ReferenceProfile:
    return build_reference_from_batch(SPEC, events(np.random.default_rng(1), 3_000), "uploaded", T0)


@pytest.fixture(scope="module")
def batch() -> Batch:
    return concat_batches([events(np.random.default_rng(2), 2_000, shift=0.3), _messy(50)])


def _build(cls: type[Accumulator], case: str, reference: ReferenceProfile) -> Accumulator:
    factories = FACTORIES.get(cls)
    assert factories is not None, f"{cls.__name__} has no factory in FACTORIES: add one"
    accumulator = factories[case](reference)
    assert type(accumulator) is cls
    return accumulator


def _assert_same(a: State, b: State, exact: bool = True) -> None:
    assert np.array_equal(a.ints, b.ints)
    if exact:
        assert np.array_equal(a.floats, b.floats)
    else:
        assert np.allclose(a.floats, b.floats, rtol=1e-10, atol=1e-9)
    assert np.array_equal(a.mins, b.mins) and np.array_equal(a.maxs, b.maxs)


def _halves(batch: Batch) -> tuple[Batch, Batch]:
    order = np.random.default_rng(3).permutation(len(batch))
    return batch.take(order[: len(batch) // 3]), batch.take(order[len(batch) // 3 :])


@pytest.mark.parametrize(("cls", "case"), CASES)
def test_merging_two_parts_equals_adding_the_whole(
    cls: type[Accumulator], case: str, reference: ReferenceProfile, batch: Batch
) -> None:
    whole, part, rest = (_build(cls, case, reference) for _ in range(3))
    first, second = _halves(batch)
    whole.add(batch)
    part.add(first)
    rest.add(second)
    part.merge(rest)
    _assert_same(part.to_state(), whole.to_state(), exact=False)
    assert whole.to_state().ints.any()  # the batch was counted


@pytest.mark.parametrize(("cls", "case"), CASES)
def test_state_round_trips_to_equal_statistics(
    cls: type[Accumulator], case: str, reference: ReferenceProfile, batch: Batch
) -> None:
    original = _build(cls, case, reference)
    original.add(batch)
    restored = _build(cls, case, reference)
    assert restored.profile() != original.profile()
    restored.load_state(original.to_state())
    assert restored.profile() == original.profile()
    _assert_same(restored.to_state(), original.to_state())


@pytest.mark.parametrize(("cls", "case"), CASES)
def test_merge_is_commutative(
    cls: type[Accumulator], case: str, reference: ReferenceProfile, batch: Batch
) -> None:
    first, second = _halves(batch)
    a, b, c, d = (_build(cls, case, reference) for _ in range(4))
    a.add(first)
    b.add(second)
    c.add(second)
    d.add(first)
    a.merge(b)
    c.merge(d)
    assert a.profile() == c.profile()
    _assert_same(a.to_state(), c.to_state())


@pytest.mark.parametrize(("cls", "case"), CASES)
def test_adding_an_empty_batch_changes_nothing(
    cls: type[Accumulator], case: str, reference: ReferenceProfile, batch: Batch
) -> None:
    accumulator = _build(cls, case, reference)
    accumulator.add(batch)
    before = accumulator.to_state()
    accumulator.add(batch.take(np.arange(0, dtype=np.intp)))
    accumulator.add(batch_from_rows("m", "1", [], [f.name for f in SPEC]))
    _assert_same(accumulator.to_state(), before)


@pytest.mark.parametrize(("cls", "case"), CASES)
def test_accumulators_of_other_bins_do_not_merge_or_load(
    cls: type[Accumulator], case: str, reference: ReferenceProfile, batch: Batch
) -> None:
    mine = _build(cls, case, reference)
    others = [c for c in FACTORIES[cls] if c != case]
    if others:  # another feature (or output) of the same kind
        other = _build(cls, others[0], reference)
    else:
        shifted = events(np.random.default_rng(4), 500, shift=2.0)
        other = _build(cls, case, build_reference_from_batch(SPEC, shifted, "uploaded", T0))
    with pytest.raises(ValueError):
        mine.merge(other)
    if mine.to_state().sizes != other.to_state().sizes:
        with pytest.raises(ValueError):
            mine.load_state(other.to_state())
