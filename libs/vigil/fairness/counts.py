"""A window's binary-classifier counts per group of one sensitive attribute.

``GroupCounts`` keeps, for each group (a value of the attribute, as text), six counts: the
predictions, the predicted positives among them, and of the labelled outcomes the true and
false positives and negatives. A prediction is counted once with ``add_prediction`` whether or
not it is ever labelled, and again with ``add_outcome`` when its label is joined; ``sign=-1``
takes back what was added, so a corrected label moves the counts from the old outcome to the
new exactly once. Windows of the same attribute add up (``merge``), in any order.

Its size is bounded: at most ``MAX_GROUPS`` groups are kept by name; the outcomes of further
groups, and of groups whose name is longer than ``MAX_NAME_BYTES`` bytes of UTF-8, are counted
together under ``OTHER`` ("_other"; a group really called so is counted there too), which the
metrics report but never judge. Which groups keep their names when more than ``MAX_GROUPS``
occur depends on the order they arrive in; the totals never do.

Serialised form (``to_bytes``/``from_bytes``), version ``STATE_FORMAT``: the 4 bytes ``VGC`` +
the version (1 byte), then a zlib-compressed body of little-endian fields: the attribute's
name, the number of groups k (u16), each group's name, then the k x 6 counts (int64, a group's
row in the order predictions, predicted positive, TP, FP, TN, FN). Each name is a u16 byte
length and that many bytes of UTF-8. About 60 bytes plus 10 per group before compression.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_GROUPS",
    "MAX_NAME_BYTES",
    "OTHER",
    "STATE_FORMAT",
    "CorruptCounts",
    "GroupCounts",
]

MAX_GROUPS = 256
MAX_NAME_BYTES = 256
OTHER = "_other"
STATE_FORMAT = 1
_MAGIC = b"VGC"
PREDICTIONS, PREDICTED_POSITIVE, TP, FP, TN, FN = range(6)
_COLUMNS = 6

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


class CorruptCounts(ValueError):
    """Bytes that are no group counts this code can read."""


def _sign(sign: int) -> int:
    if sign not in (1, -1):
        raise ValueError(f"sign: +1 (add) or -1 (take back) was expected, received {sign!r}")
    return sign


def _cell(predicted: Bools, actual: Bools) -> Ints:
    """The confusion column of each outcome."""
    return np.where(predicted, np.where(actual, TP, FP), np.where(actual, FN, TN)).astype(np.int64)


class GroupCounts:
    """Predictions and outcomes of a binary classifier per group of one sensitive attribute."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute
        self.groups: list[str] = []
        self.counts: Ints = np.zeros((0, _COLUMNS), dtype="<i8")
        self._index: dict[str, int] = {}

    @classmethod
    def from_rows(cls, attribute: str, rows: Mapping[str, Sequence[int]]) -> Self:
        """Counts given per group as (predictions, predicted positives, TP, FP, TN, FN)."""
        found = cls(attribute)
        for group, row in rows.items():
            i = found._row(group)  # first: a new group grows the array
            found.counts[i] += np.asarray(row, dtype="<i8")
        return found

    def _row(self, group: str) -> int:
        """The group's row, added if new (or OTHER's, when no more fit or the name is long)."""
        i = self._index.get(group)
        if i is not None:
            return i
        named = len(self.groups) - (OTHER in self._index)
        if group == OTHER or named >= MAX_GROUPS or len(group.encode()) > MAX_NAME_BYTES:
            group = OTHER
            if group in self._index:
                return self._index[group]
        self.counts = np.vstack([self.counts, np.zeros((1, _COLUMNS), dtype="<i8")])
        self.groups.append(group)
        i = self._index[group] = len(self.groups) - 1
        return i

    def _rows(self, groups: Sequence[str], *flags: Bools) -> Ints:
        """Each event's row; ValueError unless every array has one entry per event."""
        sizes = {len(groups), *(np.shape(f)[0] if np.ndim(f) else -1 for f in flags)}
        if len(sizes) > 1:
            raise ValueError(f"one group and one flag per event were expected, of sizes {sizes}")
        names, inverse = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
        rows = np.array([self._row(str(name)) for name in names], dtype=np.int64)
        return rows[inverse.reshape(-1)]

    def add_prediction(self, group: str, positive: bool, sign: int = 1) -> None:
        """Count a prediction for the group, labelled or not (``sign=-1``: take one back)."""
        sign = _sign(sign)
        i = self._row(group)  # first: a new group grows the array
        row = self.counts[i]
        row[PREDICTIONS] += sign
        row[PREDICTED_POSITIVE] += sign * bool(positive)

    def add_outcome(self, group: str, predicted: bool, actual: bool, sign: int = 1) -> None:
        """Count a labelled outcome for the group (``sign=-1``: take one back)."""
        sign = _sign(sign)
        cell = (TP if actual else FP) if predicted else (FN if actual else TN)
        i = self._row(group)
        self.counts[i, cell] += sign

    def add_predictions(self, groups: Sequence[str], positive: Bools, sign: int = 1) -> None:
        """Count many predictions at once, as ``add_prediction`` would one by one."""
        sign = _sign(sign)
        rows = self._rows(groups, positive)
        np.add.at(self.counts[:, PREDICTIONS], rows, sign)
        np.add.at(self.counts[:, PREDICTED_POSITIVE], rows, sign * np.asarray(positive, bool))

    def add_outcomes(
        self, groups: Sequence[str], predicted: Bools, actual: Bools, sign: int = 1
    ) -> None:
        """Count many outcomes at once, as ``add_outcome`` would one by one."""
        sign = _sign(sign)
        rows = self._rows(groups, predicted, actual)
        cells = _cell(np.asarray(predicted, bool), np.asarray(actual, bool))
        np.add.at(self.counts, (rows, cells), sign)

    def row(self, group: str) -> tuple[int, int, int, int, int, int]:
        """The group's predictions, predicted positives, TP, FP, TN and FN (zeros if unseen)."""
        i = self._index.get(group)
        if i is None:
            return 0, 0, 0, 0, 0, 0
        n, pp, tp, fp, tn, fn = self.counts[i].tolist()
        return n, pp, tp, fp, tn, fn

    def merge(self, other: Self) -> None:
        """Add another window's counts of the same attribute; ValueError otherwise."""
        if other.attribute != self.attribute:
            raise ValueError(
                f"counts of attribute {self.attribute!r} cannot merge those of {other.attribute!r}"
            )
        rows = np.array([self._row(group) for group in other.groups], dtype=np.int64)
        if rows.size:
            np.add.at(self.counts, rows, other.counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupCounts):
            return NotImplemented
        mine = dict(zip(self.groups, self.counts.tolist(), strict=True))
        theirs = dict(zip(other.groups, other.counts.tolist(), strict=True))
        return self.attribute == other.attribute and mine == theirs

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"GroupCounts({self.attribute!r}, {len(self.groups)} groups)"

    def to_bytes(self) -> bytes:
        """The counts in the versioned binary form of the module's docstring."""
        parts = [_name(self.attribute), struct.pack("<H", len(self.groups))]
        parts += [_name(group) for group in self.groups]
        parts.append(self.counts.astype("<i8").tobytes())
        return _MAGIC + bytes([STATE_FORMAT]) + zlib.compress(b"".join(parts), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> GroupCounts:
        """Counts from :meth:`to_bytes` output; CorruptCounts if they are none."""
        if data[:3] != _MAGIC or len(data) < 4:
            raise CorruptCounts("corrupt group counts: no VGC header")
        if data[3] != STATE_FORMAT:
            raise CorruptCounts(f"unknown group counts format {data[3]}")
        try:
            body = zlib.decompress(data[4:])
        except zlib.error as e:
            raise CorruptCounts(f"corrupt group counts: {e}") from e
        reader = _Reader(body)
        counts = cls(reader.name())
        k = reader.u16()
        groups = [reader.name() for _ in range(k)]
        if len(set(groups)) != k or k > MAX_GROUPS + 1:
            raise CorruptCounts(f"corrupt group counts: {k} groups, repeated or too many")
        rest = reader.rest()
        if len(rest) != k * _COLUMNS * 8:
            raise CorruptCounts(
                f"corrupt group counts: {len(rest)} bytes of counts for {k} groups"
                f" ({k * _COLUMNS * 8} expected)"
            )
        counts.groups = groups
        counts._index = {group: i for i, group in enumerate(groups)}
        counts.counts = np.frombuffer(rest, "<i8").reshape(k, _COLUMNS).copy()
        return counts


def _name(text: str) -> bytes:
    encoded = text.encode()
    if len(encoded) > 0xFFFF:
        raise ValueError(f"a name of {len(encoded)} bytes is too long (at most 65,535)")
    return struct.pack("<H", len(encoded)) + encoded


class _Reader:
    """Reads the fields of a serialised body in order; CorruptCounts past its end."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.at = 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.body):
            raise CorruptCounts("corrupt group counts: truncated")
        chunk = self.body[self.at : self.at + size]
        self.at += size
        return chunk

    def u16(self) -> int:
        value: int = struct.unpack("<H", self.take(2))[0]
        return value

    def name(self) -> str:
        try:
            return self.take(self.u16()).decode()
        except UnicodeDecodeError as e:
            raise CorruptCounts(f"corrupt group counts: {e}") from e

    def rest(self) -> bytes:
        return self.body[self.at :]
