"""Drift mathematics: reference profiles, mergeable window accumulators, statistics, verdicts.

Pure computation over numpy arrays and wire records: nothing here opens a connection.
``reference`` builds reference profiles (``multivariate``: their PCA); ``window`` counts a
window's events in their bins (``accumulators``: the contract, ``counts``: per feature,
``errors``: PCA reconstruction errors, ``bins``: what is derived from a reference,
``values``: reading columns); ``stats`` computes the statistics, ``verdicts`` judges a window,
``sequential`` watches PSI over many windows.
"""

__all__ = [
    "accumulators",
    "bins",
    "counts",
    "errors",
    "multivariate",
    "reference",
    "sequential",
    "stats",
    "values",
    "verdicts",
    "window",
]
