"""Sequential drift detection: one river ADWIN per feature watching its per-window PSI, with a
plain state (a dict of float lists) to keep between runs."""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping

from river.drift import ADWIN

__all__ = ["HISTORY", "SequentialDetectors"]

HISTORY = 10_000  # inputs kept per feature to restore its detector from


class SequentialDetectors:
    """One river ADWIN detector per feature, fed each closed window's PSI.

    A window PSI that creeps up a little every window never crosses the threshold but shifts
    the mean of the PSI stream; ADWIN finds the cut where the recent mean differs from the
    older one. ADWIN's bound is made for values of about unit size, while a window's PSI under
    no drift is about (bins - 1) / window size (0.009 for 1,000 events and 10 bins): each
    feature's PSI is divided by its own baseline, the mean PSI of its first ``grace_period``
    windows, so that the stream fed to ADWIN is about 1 while nothing changes. Only rises are
    reported (a PSI falling back is no drift). ``clock=1`` checks after every window;
    ``delta`` is ADWIN's confidence (smaller: fewer false alarms, later detection).

    :meth:`state` and :meth:`restore` keep the detectors without pickle: ADWIN is
    deterministic, so replaying a detector's inputs into a fresh one rebuilds it. ADWIN starts
    afresh after each detection, so only the inputs since the last one are kept, at most
    ``HISTORY`` per feature (beyond that a restored detector's window starts at the oldest
    kept input).
    """

    def __init__(self, delta: float = 0.002, grace_period: int = 10) -> None:
        self.delta = delta
        self.grace_period = grace_period
        self.detectors: dict[str, ADWIN] = {}
        self.baselines: dict[str, list[float]] = {}
        self._inputs: dict[str, array[float]] = {}

    def _detector(self, name: str) -> ADWIN:
        detector = self.detectors.get(name)
        if detector is None:
            detector = self.detectors[name] = ADWIN(  # type: ignore[no-untyped-call]
                delta=self.delta, clock=1, grace_period=self.grace_period
            )
            self._inputs[name] = array("d")
        return detector

    def _feed(self, name: str, detector: ADWIN, x: float) -> None:
        inputs = self._inputs[name]
        if detector.drift_detected:  # this update resets the detector: older inputs are moot
            del inputs[:]
        elif len(inputs) >= 2 * HISTORY:
            del inputs[:-HISTORY]
        inputs.append(x)
        detector.update(x)  # type: ignore[no-untyped-call]

    def update(self, psi: Mapping[str, float]) -> set[str]:
        """Feed one window's PSI per feature; the features whose detector saw a rise."""
        fired: set[str] = set()
        for name, value in psi.items():
            if not math.isfinite(value):
                continue
            baseline = self.baselines.setdefault(name, [0.0, 0.0])  # sum, count
            if baseline[1] < self.grace_period:
                baseline[0] += value
                baseline[1] += 1
            scale = max(baseline[0] / baseline[1], 1e-9)
            detector = self._detector(name)
            before = float(detector.estimation)
            self._feed(name, detector, value / scale)
            if detector.drift_detected and float(detector.estimation) > before:
                fired.add(name)
        return fired

    def state(self) -> dict[str, list[float]]:
        """Per feature: its baseline's sum and count, then the inputs its detector was fed
        since its last detection (the last ``HISTORY`` at most), oldest first."""
        return {
            name: [*baseline, *self._inputs[name][-HISTORY:]]
            for name, baseline in self.baselines.items()
        }

    @classmethod
    def restore(
        cls, state: dict[str, list[float]], delta: float = 0.002, grace_period: int = 10
    ) -> SequentialDetectors:
        """Detectors rebuilt from :meth:`state`; ValueError if a feature's entry is too short."""
        detectors = cls(delta, grace_period)
        for name, values in state.items():
            if len(values) < 2:
                raise ValueError(f"sequential state of {name!r}: {len(values)} values, want >= 2")
            detectors.baselines[name] = [float(values[0]), float(values[1])]
            detector = detectors._detector(name)
            for x in values[2:]:
                detectors._feed(name, detector, float(x))
        return detectors
