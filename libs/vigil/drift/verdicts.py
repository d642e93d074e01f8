"""Drift verdicts: a window profile judged against its reference profile. No I/O.

Per feature (and per model output: "prediction", "score"), a window drifted when all of:

- it has at least ``min_events`` usable values (DriftConfig.min_events, default 1,000);
- its PSI exceeds the threshold — DriftConfig.feature_thresholds[name], else
  DriftConfig.threshold, else the model's risk tier (``TIER_THRESHOLDS``) — plus the PSI that
  chance alone gives two samples of that size over that many bins (``noise_psi``);
- the difference is significant: the two-sample test p-value (KS for numeric features,
  chi-square homogeneity for categorical and boolean ones) is below ``ALPHA`` = 1e-3 (for a
  numeric feature of a reference profiled before fine slots existed, the PSI alone decides).

The PSI threshold guards against flagging tiny but significant differences of large windows,
the p-value against flagging noise of small ones. The dataset drifted when the share of drifted
features (among those with a verdict) reaches DriftConfig.drift_share (default 0.5), or when the
multivariate check drifted: the window's mean PCA reconstruction error exceeds the reference's
by the tier's margin (``TIER_MARGINS``) and by ``Z_MIN`` standard errors. Optionally,
``vigil.drift.sequential.SequentialDetectors`` watches each feature's per-window PSI for slow
drifts that never cross the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vigil.drift.accumulators import FeatureCounts
from vigil.drift.counts import CategoricalCounts, NumericCounts
from vigil.drift.errors import ErrorCounts
from vigil.drift.sequential import SequentialDetectors
from vigil.drift.stats import chi2, js, ks, psi, wasserstein
from vigil.drift.window import WindowProfile
from vigil.wire.records import (
    FeatureDrift,
    FeatureProfile,
    ModelVersion,
    MultivariateDrift,
    ReferenceProfile,
    Severity,
)

__all__ = [
    "ALPHA",
    "DRIFT_SHARE",
    "MIN_EVENTS",
    "MULTIVARIATE_METHOD",
    "OUTPUTS",
    "OUTPUT_THRESHOLD_SHARE",
    "TIER_MARGINS",
    "TIER_THRESHOLDS",
    "Z_MIN",
    "Verdict",
    "drift_share_threshold",
    "judge",
    "min_events",
    "multivariate_margin",
    "noise_psi",
    "threshold",
]

# PSI above which a feature drifted, by the model's risk tier: riskier models alert earlier.
TIER_THRESHOLDS: dict[Severity, float] = {
    "low": 0.25,
    "medium": 0.2,
    "high": 0.15,
    "critical": 0.1,
}
# Relative increase of the mean reconstruction error at which the multivariate check fires.
TIER_MARGINS: dict[Severity, float] = {"low": 0.5, "medium": 0.35, "high": 0.25, "critical": 0.2}
MIN_EVENTS = 1000  # fewer usable values in a window: statistics, but no verdict
ALPHA = 1e-3  # significance level of the KS and chi-square tests
DRIFT_SHARE = 0.5  # share of drifted features at which the dataset drifted
Z_MIN = 5.0  # standard errors by which the window's mean error must exceed the reference's
MULTIVARIATE_METHOD = "pca_reconstruction"


# Model outputs have few bins (a binary label: two), where a real change gives a small PSI:
# their default threshold is this share of the tier's.
OUTPUT_THRESHOLD_SHARE = 0.5
OUTPUTS = ("prediction", "score")


def threshold(version: ModelVersion, feature: str, output: bool = False) -> float:
    """The PSI threshold of ``feature`` (or output): per-name override, model override, or risk
    tier (halved for the outputs ``prediction`` and ``score``)."""
    config = version.drift
    if feature in config.feature_thresholds:
        return config.feature_thresholds[feature]
    if config.threshold is not None:
        return config.threshold
    share = OUTPUT_THRESHOLD_SHARE if output else 1.0
    return TIER_THRESHOLDS[version.risk.severity] * share


def min_events(version: ModelVersion) -> int:
    return version.drift.min_events if version.drift.min_events is not None else MIN_EVENTS


def drift_share_threshold(version: ModelVersion) -> float:
    share = version.drift.drift_share
    return share if share is not None else DRIFT_SHARE


def multivariate_margin(version: ModelVersion) -> float:
    return TIER_MARGINS[version.risk.severity]


@dataclass
class Verdict:
    """The judgement of one window: per feature, per output, multivariate, and overall."""

    features: list[FeatureDrift]
    outputs: list[FeatureDrift]
    multivariate: MultivariateDrift | None
    drift_share: float
    dataset_drift: bool

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _numeric_statistics(reference: FeatureProfile, counts: NumericCounts) -> dict[str, float]:
    derived = counts.derived
    bins = counts.bins
    statistics = {
        "psi": psi(derived.reference_bins, bins),
        "js": js(derived.reference_bins, bins),
    }
    if counts.has_fine:
        statistic, pvalue = ks(derived.reference_counts, counts.fine_counts)
        statistics["ks"], statistics["ks_pvalue"] = statistic, pvalue
        if reference.std and counts.valid:
            distance = wasserstein(
                counts.edges,
                derived.reference_counts,
                derived.reference_sums,
                counts.fine_counts,
                counts.fine_sums,
                counts.known_extremes,
            )
            statistics["wasserstein"] = distance / reference.std
    statistics["out_of_range_rate"] = _rate(counts.out_of_range, counts.valid)
    if counts.mean is not None and counts.std is not None:
        statistics["mean"], statistics["std"] = counts.mean, counts.std
    return statistics


def _categorical_statistics(
    reference: FeatureProfile, counts: CategoricalCounts
) -> dict[str, float]:
    ref_counts = counts.derived.reference_bins
    statistic, pvalue = chi2(ref_counts, counts.bins)
    return {
        "psi": psi(ref_counts, counts.bins),
        "js": js(ref_counts, counts.bins),
        "chi2": statistic,
        "chi2_pvalue": pvalue,
        "unseen_rate": _rate(counts.unseen, counts.valid),
    }


def _feature_drift(name: str, counts: FeatureCounts, limit: float, needed: int) -> FeatureDrift:
    """The statistics and verdict of one feature (or output) of a window."""
    reference = counts.reference
    if isinstance(counts, NumericCounts):
        statistics = _numeric_statistics(reference, counts)
        pvalue = statistics.get("ks_pvalue", 0.0)  # no fine slots: PSI alone decides
    else:
        assert isinstance(counts, CategoricalCounts)
        statistics = _categorical_statistics(reference, counts)
        pvalue = statistics["chi2_pvalue"]
    statistics["missing_rate"] = _rate(counts.missing, counts.count)
    statistics["type_violation_rate"] = _rate(counts.type_violations, counts.count)
    value = statistics["psi"]
    assert isinstance(counts, NumericCounts | CategoricalCounts)
    limit = limit + noise_psi(counts.derived.reference_bins, counts.valid)
    drifted = counts.valid >= needed and value > limit and pvalue < ALPHA
    # Per window, not per event: the console draws them beside the reference's counts.
    window_bins = counts.bins.tolist()
    numeric = isinstance(counts, NumericCounts)
    return FeatureDrift(
        feature=name,
        type=reference.type,
        count=counts.count,
        missing=counts.missing,
        out_of_range=counts.out_of_range,
        unseen_categories=counts.unseen,
        statistics=statistics,
        drift_statistic="psi",
        threshold=limit,
        drifted=drifted,
        type_violations=counts.type_violations,
        bin_counts=window_bins if numeric else [],
        category_counts=[] if numeric else window_bins,
    )


def noise_psi(reference_bins: npt.ArrayLike, n_window: int) -> float:
    """The PSI two samples of one distribution show on average: (bins - 1)(1/n_win + 1/n_ref),
    over the bins the reference fills.

    Added to the threshold, so that small windows of many bins do not drift by chance.
    """
    counts = np.asarray(reference_bins)
    bins = int(np.count_nonzero(counts))
    n_ref = int(counts.sum())
    if bins < 2 or n_window <= 0 or n_ref <= 0:
        return 0.0
    return (bins - 1) * (1.0 / n_window + 1.0 / n_ref)


def _multivariate_drift(
    version: ModelVersion, errors: ErrorCounts, needed: int
) -> MultivariateDrift:
    reference = errors.reference
    limit = reference.error_mean * (1.0 + multivariate_margin(version))
    value = errors.mean if errors.mean is not None else 0.0
    n = errors.count
    if reference.error_std > 0:
        z = (value - reference.error_mean) / (reference.error_std / math.sqrt(max(n, 1)))
    else:
        z = math.inf if value > reference.error_mean else 0.0
    return MultivariateDrift(
        method=MULTIVARIATE_METHOD,
        value=value,
        reference=reference.error_mean,
        threshold=limit,
        drifted=n >= needed and value > limit and z > Z_MIN,
    )


def _usable(f: FeatureDrift) -> int:
    return f.count - f.missing - f.type_violations


def _watch_key(f: FeatureDrift, outputs: list[FeatureDrift]) -> str:
    """Outputs are watched apart from any feature of the same name."""
    return f"output:{f.feature}" if any(f is o for o in outputs) else f.feature


def judge(
    version: ModelVersion,
    reference: ReferenceProfile,
    window: WindowProfile,
    sequential: SequentialDetectors | None = None,
) -> Verdict:
    """Judge a window (counted against ``reference``) by ``version``'s drift settings.

    With ``sequential``, the PSI of every feature with enough values for a verdict is fed to
    its detector, and a firing detector sets that feature's ``sequential_drift`` (it does not
    count as drift by itself).
    """
    if window.reference is not reference and (
        window.reference.version != reference.version
        or window.reference.created_at != reference.created_at
    ):
        raise ValueError("the window was counted against another reference")
    needed = min_events(version)
    features = [
        _feature_drift(name, counts, threshold(version, name), needed)
        for name, counts in window.features.items()
    ]
    outputs = [
        _feature_drift(name, counts, threshold(version, name, output=True), needed)
        for name, counts in zip(OUTPUTS, (window.prediction, window.score), strict=True)
        if counts is not None
    ]
    judged = [f for f in features if _usable(f) >= needed]
    if sequential is not None:
        watched = judged + [f for f in outputs if _usable(f) >= needed]
        fired = sequential.update({_watch_key(f, outputs): f.statistics["psi"] for f in watched})
        for f in features + outputs:
            f.sequential_drift = _watch_key(f, outputs) in fired
    multivariate = (
        _multivariate_drift(version, window.multivariate, needed)
        if window.multivariate is not None
        else None
    )
    share = float(np.mean([f.drifted for f in judged])) if judged else 0.0
    dataset = (bool(judged) and share >= drift_share_threshold(version)) or bool(
        multivariate and multivariate.drifted
    )
    return Verdict(features, outputs, multivariate, share, dataset)
