"""Prometheus labels whose values come from users, kept to a bounded number of series.

Every distinct label value is a time series kept by this process and by Prometheus for as
long as they run. A label taken from input (a model id) is bounded: the first values seen
keep their own label, any later one is counted under ``"_other"``.
"""

from __future__ import annotations

import logging

__all__ = ["OTHER", "BoundedLabels"]

log = logging.getLogger(__name__)

# Not a valid identifier (those start with a letter or a digit), so no model is named so.
OTHER = "_other"


class BoundedLabels:
    """The label value to count under: the value itself for the first ``limit`` distinct
    values, ``"_other"`` for any later one.

    >>> models = BoundedLabels(2, "model_id")
    >>> [models(m) for m in ["a", "b", "a", "c"]]
    ['a', 'b', 'a', '_other']
    """

    def __init__(self, limit: int, name: str = "label") -> None:
        if limit < 1:
            raise ValueError(f"a label needs room for at least one value, not {limit}")
        self.limit = limit
        self.name = name
        self._kept: set[str] = set()
        self._warned = False

    def __call__(self, value: str) -> str:
        if value in self._kept:
            return value
        if len(self._kept) < self.limit:
            self._kept.add(value)
            return value
        if not self._warned:
            self._warned = True
            log.warning(
                "%d distinct %s values seen: later ones are counted as %r",
                self.limit,
                self.name,
                OTHER,
            )
        return OTHER

    def __len__(self) -> int:
        """How many values keep their own label."""
        return len(self._kept)
