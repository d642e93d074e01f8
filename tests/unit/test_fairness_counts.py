"""Per-group fairness counts: partitions merge to the whole, a corrected label moves the counts
exactly once, the serialised form round-trips and rejects what it is not, and the number of
groups stays bounded without losing a count."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest

from vigil.fairness import MAX_GROUPS, MAX_NAME_BYTES, OTHER, CorruptCounts, GroupCounts


def _events(seed: int, n: int = 500) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = rng.choice(["a", "b", "c", "dé", "e"], n, p=[0.4, 0.3, 0.2, 0.07, 0.03]).tolist()
    predicted = rng.random(n) < 0.4
    actual = rng.random(n) < 0.3
    labelled = rng.random(n) < 0.7
    return groups, predicted, actual, labelled


def _one_by_one(
    groups: list[str], predicted: np.ndarray, actual: np.ndarray, labelled: np.ndarray
) -> GroupCounts:
    counts = GroupCounts("region")
    for g, p, a, seen in zip(
        groups, predicted.tolist(), actual.tolist(), labelled.tolist(), strict=True
    ):
        counts.add_prediction(g, p)
        if seen:
            counts.add_outcome(g, p, a)
    return counts


def test_counts_are_the_confusion_counts_of_each_group() -> None:
    groups, predicted, actual, labelled = _events(1)
    counts = _one_by_one(groups, predicted, actual, labelled)
    g = np.array(groups)
    for name in ["a", "b", "c", "dé", "e"]:
        mine = g == name
        seen = mine & labelled
        expected = (
            int(mine.sum()),
            int((mine & predicted).sum()),
            int((seen & predicted & actual).sum()),
            int((seen & predicted & ~actual).sum()),
            int((seen & ~predicted & ~actual).sum()),
            int((seen & ~predicted & actual).sum()),
        )
        assert counts.row(name) == expected
    assert counts.row("never seen") == (0, 0, 0, 0, 0, 0)


def test_adding_many_at_once_is_adding_one_by_one() -> None:
    groups, predicted, actual, labelled = _events(2)
    at_once = GroupCounts("region")
    at_once.add_predictions(groups, predicted)
    seen = np.flatnonzero(labelled)
    at_once.add_outcomes([groups[i] for i in seen], predicted[seen], actual[seen])
    assert at_once == _one_by_one(groups, predicted, actual, labelled)
    at_once.add_predictions(groups, predicted, sign=-1)
    at_once.add_outcomes([groups[i] for i in seen], predicted[seen], actual[seen], sign=-1)
    assert not at_once.counts.any()


def test_partitions_merge_to_the_whole_in_any_order() -> None:
    groups, predicted, actual, labelled = _events(3)
    whole = _one_by_one(groups, predicted, actual, labelled)
    parts = [
        _one_by_one(groups[i::3], predicted[i::3], actual[i::3], labelled[i::3]) for i in range(3)
    ]
    for order in ([0, 1, 2], [2, 0, 1]):
        merged = GroupCounts("region")
        for i in order:
            merged.merge(parts[i])
        assert merged == whole
    with pytest.raises(ValueError, match="'sex'"):
        whole.merge(GroupCounts("sex"))


def test_a_corrected_label_moves_the_outcome_exactly_once() -> None:
    counts = GroupCounts("sex")
    counts.add_prediction("f", True)
    counts.add_outcome("f", True, False)  # a false positive...
    counts.add_outcome("f", True, False, sign=-1)  # ...whose label is corrected
    counts.add_outcome("f", True, True)
    assert counts.row("f") == (1, 1, 1, 0, 0, 0)
    # A retraction that reaches a partition before its addition still adds up once merged.
    early = GroupCounts("sex")
    early.add_outcome("m", False, True, sign=-1)
    late = GroupCounts("sex")
    late.add_outcome("m", False, True)
    early.merge(late)
    assert early.row("m") == (0, 0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="sign"):
        counts.add_prediction("f", True, sign=2)


def test_serialised_counts_round_trip() -> None:
    groups, predicted, actual, labelled = _events(4)
    counts = _one_by_one(groups, predicted, actual, labelled)
    counts.add_outcome("zero", False, False, sign=-1)  # negative counts survive too
    data = counts.to_bytes()
    assert data[:4] == b"VGC\x01"
    back = GroupCounts.from_bytes(data)
    assert back == counts and back.groups == counts.groups and back.attribute == "region"
    back.add_prediction("a", True)  # what was read can be added to
    assert back.row("a")[0] == counts.row("a")[0] + 1
    empty = GroupCounts("age band")
    assert GroupCounts.from_bytes(empty.to_bytes()) == empty


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: b"XYZ" + d[3:],
        lambda d: d[:3] + b"\x02" + d[4:],
        lambda d: d[:-5],
        lambda d: d[:4],
        lambda d: d[:4] + zlib.compress(b"\x01\x00a\x01\x00\x01\x00b" + b"\x00" * 7),
        lambda d: d[:4] + zlib.compress(b"\x01\x00a\x02\x00\x01\x00b\x01\x00b"),
    ],
    ids=["magic", "version", "truncated", "empty", "short counts", "repeated group"],
)
def test_damaged_bytes_are_refused(damage: Callable[[bytes], bytes]) -> None:
    counts = GroupCounts("a")
    counts.add_prediction("b", True)
    with pytest.raises(CorruptCounts):
        GroupCounts.from_bytes(damage(counts.to_bytes()))


def test_groups_beyond_the_bound_are_counted_together_as_other() -> None:
    counts = GroupCounts("postcode")
    names = [f"p{i}" for i in range(MAX_GROUPS + 44)]
    counts.add_predictions(names, np.ones(len(names), dtype=bool))
    counts.add_prediction("x" * (MAX_NAME_BYTES + 1), False)
    counts.add_prediction(OTHER, False)
    assert len(counts.groups) == MAX_GROUPS + 1 and counts.groups[-1] == OTHER
    assert counts.row(OTHER)[:2] == (46, 44)
    assert int(counts.counts[:, 0].sum()) == len(names) + 2
    # Merging two full windows keeps the bound and every count.
    other = GroupCounts("postcode")
    other.add_predictions([f"q{i}" for i in range(10)], np.zeros(10, dtype=bool))
    counts.merge(other)
    assert len(counts.groups) == MAX_GROUPS + 1 and counts.row(OTHER)[0] == 56
    assert GroupCounts.from_bytes(counts.to_bytes()) == counts
    assert len(counts.to_bytes()) < 8_000
