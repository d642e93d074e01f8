"""Drift statistics, each a function of (reference counts, window counts) in the same bins."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["PSI_FLOOR", "psi"]

# Empty bins would make PSI infinite; proportions are floored at this share before the log.
PSI_FLOOR = 1e-4

Counts = npt.ArrayLike


def psi(reference: Counts, window: Counts) -> float:
    """Population stability index: sum over bins of (w - r) * ln(w / r) on floored proportions."""
    r = np.asarray(reference, dtype=np.float64)
    w = np.asarray(window, dtype=np.float64)
    if r.sum() == 0 or w.sum() == 0:
        return 0.0
    p = np.maximum(r / r.sum(), PSI_FLOOR)
    q = np.maximum(w / w.sum(), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))
