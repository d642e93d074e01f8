"""A performance window merges, takes outcomes back, survives its changelog bytes, stays the same
size whatever the traffic, and refuses what it cannot count without counting half of it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.performance_data import Outcomes, binary, fill, multiclass, regression
from vigil.performance import CorruptState, WindowPerformance, confusion_matrix, realised_metrics
from vigil.performance.counts import MAX_CLASSES
from vigil.wire.performance import Task

DATA = {"binary": binary(1, n=2000), "multiclass": multiclass(1), "regression": regression(1)}
TASKS: list[Task] = ["binary", "multiclass", "regression"]


def _part(data: Outcomes, rows: slice) -> Outcomes:
    labelled = len(range(*rows.indices(data.labelled)))
    return Outcomes(
        data.predictions[rows],
        data.scores[rows],
        data.actuals[rows],
        data.latencies[rows],
        labelled,
    )


def _same(a: WindowPerformance, b: WindowPerformance) -> None:
    assert (a.predictions, a.labelled) == (b.predictions, b.labelled)
    assert confusion_matrix(a) == confusion_matrix(b)
    assert np.array_equal(a.latencies, b.latencies)
    mine, theirs = realised_metrics(a), realised_metrics(b)
    assert mine.keys() == theirs.keys()
    for name, value in mine.items():
        assert value == pytest.approx(theirs[name], rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("task", TASKS)
def test_windows_counted_in_parts_merge_into_the_whole(task: Task) -> None:
    data = DATA[task]
    half = data.labelled // 2  # parts of labelled rows only, so that each keeps its labels
    whole = fill(task, _part(data, slice(0, data.labelled)))
    first = fill(task, _part(data, slice(0, half)), seed=1)
    first.merge(fill(task, _part(data, slice(half, data.labelled)), seed=2))
    _same(first, whole)


def test_a_merge_takes_the_other_windows_labels_in_its_own_order() -> None:
    ours, theirs = WindowPerformance("multiclass"), WindowPerformance("multiclass")
    ours.add_outcome("a", None, "b")
    theirs.add_outcome("c", None, "a")
    theirs.add_outcome("b", None, "b")
    ours.merge(theirs)
    assert confusion_matrix(ours).model_dump() == {
        "labels": ["a", "b", "c"],
        "rows": [[0, 0, 1], [1, 1, 0], [0, 0, 0]],
    }


def test_a_correction_taken_back_before_it_was_added_cancels_out_on_merge() -> None:
    """Partials may arrive in any order: one holding only the taking back is negative."""
    earlier, later = WindowPerformance("binary"), WindowPerformance("binary")
    later.add_outcome(True, 0.8, False, 30.0, sign=-1)
    later.add_outcome(True, 0.8, True, 30.0)
    earlier.add_outcome(True, 0.8, False, 30.0)
    later.merge(earlier)
    assert confusion_matrix(later).rows == [[0, 0], [0, 1]]
    assert realised_metrics(later)["log_loss"] == pytest.approx(-np.log(0.8))


def test_regression_windows_with_other_shifts_merge_exactly() -> None:
    a, b, whole = (WindowPerformance("regression") for _ in range(3))
    for y in (1e6, 1e6 + 3, 1e6 - 2):
        a.add_outcome(y + 1, None, y)
        whole.add_outcome(y + 1, None, y)
    for y in (5.0, 7.5):  # b's sums are about 5, a's about 1e6
        b.add_outcome(y - 2, None, y)
        whole.add_outcome(y - 2, None, y)
    empty = WindowPerformance("regression")
    empty.merge(a)
    empty.merge(b)
    _same(empty, whole)


@pytest.mark.parametrize("task", TASKS)
def test_bytes_round_trip(task: Task) -> None:
    window = fill(task, DATA[task])
    data = window.to_bytes()
    assert data[:2] == b"\xc3\x01"  # Avro single-object encoding, like every record
    back = WindowPerformance.from_bytes(data)
    _same(back, window)
    assert back.to_bytes() == data
    back.add_outcome(DATA[task].predictions[0], DATA[task].scores[0], DATA[task].actuals[0])
    assert back.labelled == window.labelled + 1  # restored arrays are writable


@pytest.mark.parametrize("task", TASKS)
def test_size_does_not_grow_with_traffic(task: Task) -> None:
    small = fill(task, _part(DATA[task], slice(0, 200)))
    big = fill(task, DATA[task])
    big.merge(fill(task, DATA[task]))
    assert len(big.to_bytes()) < 20_000  # a binary window: 3,500 numbers, mostly small
    assert len(small.to_bytes()) <= len(big.to_bytes())
    assert WindowPerformance.from_bytes(big.to_bytes())._arrays()[0].size == big._arrays()[0].size


def test_multiclass_labels_beyond_the_vocabulary_are_counted_apart() -> None:
    window = WindowPerformance("multiclass")
    for i in range(MAX_CLASSES + 5):
        window.add_outcome(f"c{i}", None, f"c{i}")
    assert window.classes is not None
    assert len(window.classes.labels) == MAX_CLASSES
    assert window.classes.overflow == 5
    assert window.labelled == MAX_CLASSES + 5
    full = WindowPerformance.from_bytes(window.to_bytes())
    full.merge(window)
    assert full.classes is not None and full.classes.overflow == 10


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc3\x01" + bytes(8), b"not a state at all", b'{"format": 1}'],
)
def test_bytes_that_are_no_state_are_refused(data: bytes) -> None:
    with pytest.raises(CorruptState):
        WindowPerformance.from_bytes(data)


def test_a_state_of_the_wrong_size_is_refused() -> None:
    window = WindowPerformance("binary")
    window.binary.ints = np.zeros(10, dtype="<i8")  # type: ignore[union-attr]
    with pytest.raises(CorruptState, match="counts"):
        WindowPerformance.from_bytes(window.to_bytes())


def test_windows_of_other_tasks_or_positive_labels_do_not_merge() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        WindowPerformance("binary").merge(WindowPerformance("regression"))
    with pytest.raises(ValueError, match="cannot merge"):
        WindowPerformance("binary", "default").merge(WindowPerformance("binary"))


@pytest.mark.parametrize(
    ("task", "prediction", "score", "actual", "error"),
    [
        ("binary", True, 1.5, True, "score"),
        ("binary", True, -0.1, False, "score"),
        ("regression", 1.0, None, "n/a", "actual"),
        ("regression", True, None, 1.0, "prediction"),
        ("regression", 1.0, None, float("inf"), "actual"),
    ],
)
def test_an_outcome_that_cannot_be_counted_is_refused_whole(
    task: Task, prediction: object, score: float | None, actual: object, error: str
) -> None:
    window = WindowPerformance(task)
    before = window.to_bytes()
    with pytest.raises(ValueError, match=error):
        window.add_outcome(prediction, score, actual, 3.0)  # type: ignore[arg-type]
    assert window.to_bytes() == before
    with pytest.raises(ValueError, match="sign"):
        window.add_outcome(1.0, 0.5, 1.0, sign=2)


def test_binary_labels_are_read_with_the_positive_label() -> None:
    named = WindowPerformance("binary", positive_label="default")
    named.add_prediction("default", 0.9)
    named.add_prediction("ok", 0.2)
    named.add_outcome("default", 0.9, "ok")
    assert confusion_matrix(named).rows == [[0, 1], [0, 0]]  # a false positive
    plain = WindowPerformance("binary")
    for label in (True, 1, "1", "true", 1.0):
        plain.add_outcome(label, None, label)
    plain.add_outcome(False, None, 0)
    assert confusion_matrix(plain).rows == [[1, 0], [0, 5]]
    assert realised_metrics(named)["positive_rate"] == 0.5


def test_a_missing_or_nan_score_counts_in_the_confusion_only() -> None:
    window = WindowPerformance("binary")
    window.add_prediction(True, None)
    window.add_outcome(True, float("nan"), True)
    got = realised_metrics(window)
    assert got["accuracy"] == 1.0
    assert "log_loss" not in got
    assert window.binary is not None and not window.binary.scored.any()


@pytest.mark.parametrize("task", TASKS)
def test_corrections_leave_exactly_the_counts_of_the_right_labels(task: Task) -> None:
    corrected = fill(task, DATA[task], corrections=0.5)
    right = fill(task, DATA[task], corrections=0.0)
    ints, floats = corrected._arrays()
    if task == "multiclass":  # the wrong labels stay in the vocabulary, with no counts
        _same(corrected, right)
        assert ints.sum() == right._arrays()[0].sum()
    else:
        assert np.array_equal(ints, right._arrays()[0])
        assert floats == pytest.approx(right._arrays()[1], rel=1e-12, abs=1e-9)


def test_an_unknown_task_or_latency_is_refused_or_skipped() -> None:
    with pytest.raises(ValueError, match="task"):
        WindowPerformance("ranking")  # type: ignore[arg-type]
    window = WindowPerformance("binary")
    window.add_outcome(True, 0.5, True, float("nan"))
    window.add_outcome(True, 0.5, True, None)
    assert window.label_latency(0.5) is None
