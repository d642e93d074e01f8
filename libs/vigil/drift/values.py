"""Feature values as the profiles read them from columns: usable numbers, or categories with
their counts, plus how many values were missing or of the wrong type."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from vigil.wire.columns import BOOLEAN, DOUBLE, LONG, MISSING, STRING, Column

__all__ = [
    "BOOLEAN_CATEGORIES",
    "Floats",
    "Ints",
    "Mask",
    "Mode",
    "numeric_values",
    "tally",
]

BOOLEAN_CATEGORIES = ["false", "true"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
# How a categorical accumulator reads values: "categorical" takes strings, longs (as decimal
# text) and booleans ("true"/"false"); "boolean" only booleans; "label" (predictions of a
# classifier) also takes doubles, integral ones written like longs.
Mode = Literal["categorical", "boolean", "label"]


def _kind_counts(kinds: npt.NDArray[np.int8]) -> Ints:
    return np.bincount(kinds.view(np.uint8), minlength=STRING + 1).astype(np.int64)


def numeric_values(
    numbers: Floats, kinds: npt.NDArray[np.int8] | None
) -> tuple[Floats, Mask | None, int, int]:
    """The usable values of a numeric column, their mask, and the missing and bad counts.

    Longs and finite doubles are values; null, absent and NaN are missing; booleans, strings
    and infinite doubles are type violations. The mask is None when every value is usable.
    ``kinds`` None means a plain float array (NaN: missing), e.g. scores.
    """
    n = numbers.size
    finite = np.isfinite(numbers)
    n_finite = int(np.count_nonzero(finite))
    n_boolean = 0 if kinds is None else int(np.count_nonzero(kinds == BOOLEAN))
    if n_finite == n and n_boolean == 0:
        return numbers, None, 0, 0
    nan = int(np.count_nonzero(np.isnan(numbers)))
    if kinds is None:
        valid = finite
        missing = nan
    else:
        valid = finite & (kinds != BOOLEAN) if n_boolean else finite
        # NaN numbers are the missing values, the strings and the NaN doubles.
        missing = nan - int(np.count_nonzero(kinds == STRING))
    n_valid = int(np.count_nonzero(valid))
    return numbers[valid], valid, missing, n - n_valid - missing


def _label(value: float) -> str:
    """A double as a category: integral values like longs ("1"), others as Python writes them."""
    return str(int(value)) if value.is_integer() else repr(value)


def tally(column: Column, mode: Mode) -> tuple[list[str], Ints, int, int]:
    """The category values of a column with their counts, plus missing and bad counts.

    Labels may repeat (e.g. the string "7" and the long 7); counts are per label occurrence.
    """
    kinds = column.kinds
    n = kinds.size
    per_kind = _kind_counts(kinds)
    labels: list[str] = []
    counts: list[npt.NDArray[np.int64]] = []
    accepted = 0
    if per_kind[STRING] and mode != "boolean":
        codes = column.codes if per_kind[STRING] == n else column.codes[kinds == STRING]
        by_code = np.bincount(codes, minlength=len(column.vocab))
        used = np.flatnonzero(by_code)
        labels.extend(column.vocab[i] for i in used.tolist())
        counts.append(by_code[used].astype(np.int64))
        accepted += int(per_kind[STRING])
    numeric_kinds = {"categorical": (LONG,), "boolean": (), "label": (LONG, DOUBLE)}[mode]
    for kind in numeric_kinds:
        if not per_kind[kind]:
            continue
        values, how_many = np.unique(column.numbers[kinds == kind], return_counts=True)
        finite = np.isfinite(values)
        labels.extend(_label(float(v)) for v in values[finite].tolist())
        counts.append(how_many[finite].astype(np.int64))
        accepted += int(how_many[finite].sum())
    if per_kind[BOOLEAN]:
        true = int(np.count_nonzero(column.numbers[kinds == BOOLEAN]))
        labels.extend(BOOLEAN_CATEGORIES)
        counts.append(np.array([per_kind[BOOLEAN] - true, true], dtype=np.int64))
        accepted += int(per_kind[BOOLEAN])
    missing = int(per_kind[MISSING])
    merged = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    return labels, merged, missing, n - missing - accepted
