"""Drift verdicts: quiet on stationary traffic, loud on real changes, tuned by risk tier."""

from __future__ import annotations

import json
import pickle
from typing import get_args

import numpy as np
import pytest

from tests.drift_data import (
    SPEC,
    T0,
    events,
    make_batch,
    model_version,
    numeric_column,
    string_column,
)
from vigil.drift.reference import build_reference_from_batch
from vigil.drift.sequential import HISTORY, SequentialDetectors
from vigil.drift.verdicts import (
    ALPHA,
    MIN_EVENTS,
    TIER_MARGINS,
    TIER_THRESHOLDS,
    Verdict,
    judge,
)
from vigil.drift.window import WindowProfile
from vigil.wire.columns import BOOLEAN, Batch
from vigil.wire.records import DriftConfig, FeatureSpec, ModelVersion, ReferenceProfile, Severity

TIERS: list[Severity] = list(get_args(Severity))  # low, medium, high, critical
X = [FeatureSpec(name="x", type="numeric")]


def _judge(
    version: ModelVersion,
    reference: ReferenceProfile,
    batch: Batch,
    sequential: SequentialDetectors | None = None,
) -> Verdict:
    window = WindowProfile(reference, version.features)
    window.add(batch)
    return judge(version, reference, window, sequential)


def _x(values: np.ndarray) -> Batch:
    return make_batch({"x": numeric_column(values)})


def _quiet(verdict: Verdict) -> bool:
    return (
        not verdict.dataset_drift
        and not any(f.drifted for f in verdict.features + verdict.outputs)
        and not (verdict.multivariate and verdict.multivariate.drifted)
    )


def test_tiers_are_ordered() -> None:
    """Critical is the most sensitive tier in every respect."""
    assert [TIER_THRESHOLDS[t] for t in TIERS] == sorted(TIER_THRESHOLDS.values(), reverse=True)
    assert [TIER_MARGINS[t] for t in TIERS] == sorted(TIER_MARGINS.values(), reverse=True)
    assert (MIN_EVENTS, ALPHA) == (1000, 1e-3)


def test_no_verdict_on_a_million_and_a_half_stationary_events() -> None:
    """500 windows of 1,000 events and 100 of 10,000, 1,500,000 events: no drift at all.

    The critical tier judges every window: it is the most sensitive one (lowest thresholds and
    margin, the same tests and minimum), so a window it does not flag no tier flags; the other
    tiers judge every tenth window of 10,000 too.
    """
    rng = np.random.default_rng(2026)
    reference = build_reference_from_batch(SPEC, events(rng, 20_000), "uploaded", T0)
    versions = {tier: model_version(tier) for tier in TIERS}
    worst = 0.0
    for size, count in ((1_000, 500), (10_000, 100)):
        for i in range(count):
            window = WindowProfile(reference, SPEC)
            window.add(events(rng, size))
            for tier in TIERS if size == 10_000 and i % 10 == 0 else ["critical"]:
                verdict = judge(versions[tier], reference, window)
                assert _quiet(verdict), verdict
                assert len(verdict.features) == 25 and len(verdict.outputs) == 2
                worst = max(worst, *(f.statistics["psi"] / f.threshold for f in verdict.features))
    assert worst < 1.0


def test_a_clear_shift_is_flagged_by_every_tier() -> None:
    rng = np.random.default_rng(1)
    reference = build_reference_from_batch(SPEC, events(rng, 20_000), "uploaded", T0)
    shifted = events(rng, 5_000, shift=1.0)
    for tier in TIERS:
        verdict = _judge(model_version(tier), reference, shifted)
        drifted = set(verdict.drifted_features)
        assert {f"num_{i}" for i in range(20)} <= drifted
        assert not drifted & {f"cat_{i}" for i in range(5)}
        assert verdict.drift_share == pytest.approx(len(drifted) / 25)
        assert verdict.dataset_drift
        by_name = {f.feature: f for f in verdict.features}
        num = by_name["num_0"]
        # The tier's threshold plus the PSI chance gives 5,000 vs 20,000 events over 10 bins.
        noise = 9 * (1 / 5_000 + 1 / 20_000)
        assert num.drift_statistic == "psi"
        assert num.threshold == pytest.approx(TIER_THRESHOLDS[tier] + noise)
        assert num.statistics["ks_pvalue"] < ALPHA and num.statistics["wasserstein"] > 0.5
        assert set(num.statistics) >= {
            "psi", "ks", "ks_pvalue", "wasserstein", "js", "missing_rate",
            "out_of_range_rate", "type_violation_rate", "mean", "std",
        }  # fmt: skip
        assert set(by_name["cat_0"].statistics) >= {
            "psi", "chi2", "chi2_pvalue", "js", "missing_rate", "unseen_rate",
            "type_violation_rate",
        }  # fmt: skip


def test_a_categorical_change_is_flagged() -> None:
    rng = np.random.default_rng(2)
    spec = [FeatureSpec(name="c", type="categorical")]
    vocab = [f"v{i}" for i in range(8)]
    p = np.arange(8, 0, -1) / 36
    reference = build_reference_from_batch(
        spec, make_batch({"c": string_column(rng.choice(8, 20_000, p=p), vocab)}), "uploaded", T0
    )
    version = model_version("medium", spec)
    same = _judge(
        version, reference, make_batch({"c": string_column(rng.choice(8, 3000, p=p), vocab)})
    )
    flipped = make_batch({"c": string_column(rng.choice(8, 3000, p=p[::-1]), vocab)})
    changed = _judge(version, reference, flipped)
    assert not same.features[0].drifted and same.features[0].statistics["chi2_pvalue"] > ALPHA
    assert changed.features[0].drifted and changed.dataset_drift
    assert changed.features[0].statistics["chi2_pvalue"] < 1e-12


def test_critical_models_alert_on_smaller_shifts_than_low_risk_ones() -> None:
    rng = np.random.default_rng(3)
    reference = build_reference_from_batch(X, _x(rng.normal(size=50_000)), "uploaded", T0)
    window = WindowProfile(reference, X)
    window.add(_x(rng.normal(0.42, 1.0, 20_000)))
    verdicts = {tier: judge(model_version(tier, X), reference, window) for tier in TIERS}
    value = verdicts["low"].features[0].statistics["psi"]
    assert 0.15 < value < 0.2
    assert [verdicts[t].features[0].drifted for t in TIERS] == [False, False, True, True]
    assert [verdicts[t].dataset_drift for t in TIERS] == [False, False, True, True]


def test_thresholds_can_be_overridden_per_model_and_per_feature() -> None:
    rng = np.random.default_rng(4)
    spec = [FeatureSpec(name="x", type="numeric"), FeatureSpec(name="y", type="numeric")]
    reference = build_reference_from_batch(
        spec,
        make_batch({"x": numeric_column(rng.normal(size=20_000)),
                    "y": numeric_column(rng.normal(size=20_000))}),
        "uploaded",
        T0,
    )  # fmt: skip
    window = WindowProfile(reference, spec)
    window.add(
        make_batch({"x": numeric_column(rng.normal(1.0, 1.0, 5000)),
                    "y": numeric_column(rng.normal(0.3, 1.0, 5000))})
    )  # fmt: skip
    plain = judge(model_version("low", spec), reference, window)
    assert plain.drifted_features == ["x"]  # y's PSI (about 0.09) is under 0.25
    config = DriftConfig(threshold=0.05, feature_thresholds={"x": 5.0})
    overridden = judge(model_version("low", spec, config), reference, window)
    assert overridden.drifted_features == ["y"]
    limits = [f.threshold for f in overridden.features]
    assert limits == pytest.approx([5.0, 0.05], abs=0.01)  # plus the noise PSI
    strict = judge(model_version("low", spec, DriftConfig(min_events=6000)), reference, window)
    assert strict.drifted_features == [] and strict.drift_share == 0.0
    assert strict.features[0].statistics["psi"] > 0.25  # statistics, but no verdict
    shared = judge(model_version("low", spec, DriftConfig(drift_share=0.6)), reference, window)
    assert shared.drift_share == 0.5 and not shared.dataset_drift


def test_small_windows_report_statistics_but_no_verdict() -> None:
    rng = np.random.default_rng(5)
    reference = build_reference_from_batch(X, _x(rng.normal(size=5000)), "uploaded", T0)
    verdict = _judge(model_version("critical", X), reference, _x(rng.normal(5.0, 1.0, 400)))
    assert verdict.features[0].statistics["psi"] > 1
    assert not verdict.features[0].drifted and not verdict.dataset_drift


def test_multivariate_check_catches_a_correlation_flip_no_feature_shows() -> None:
    """Two features go from correlation +0.9 to -0.9; each keeps its N(0, 1) marginal."""
    rng = np.random.default_rng(6)
    spec = [FeatureSpec(name=f"f{i}", type="numeric") for i in range(6)]

    def batch(n: int, rho: float) -> Batch:
        cov = [[1.0, rho], [rho, 1.0]]
        pair = rng.multivariate_normal([0.0, 0.0], cov, n)
        columns = {"f0": numeric_column(pair[:, 0]), "f1": numeric_column(pair[:, 1])}
        for i in range(2, 6):
            columns[f"f{i}"] = numeric_column(rng.standard_t(3, n))
        return make_batch(columns)

    reference = build_reference_from_batch(spec, batch(20_000, 0.9), "uploaded", T0)
    assert reference.multivariate is not None
    assert len(reference.multivariate.components) <= 5
    for tier in TIERS:
        version = model_version(tier, spec)
        same = _judge(version, reference, batch(2000, 0.9))
        flipped = _judge(version, reference, batch(2000, -0.9))
        assert _quiet(same)
        assert flipped.drifted_features == []
        assert flipped.multivariate is not None and flipped.multivariate.drifted
        assert flipped.multivariate.value > flipped.multivariate.threshold
        assert flipped.dataset_drift


def test_prediction_and_score_drift() -> None:
    rng = np.random.default_rng(7)

    def batch(n: int, positive: float, score_shift: float) -> Batch:
        labels = numeric_column((rng.random(n) < positive).astype(np.float64), BOOLEAN)
        score = np.clip(rng.beta(2, 5, n) + score_shift, 0.0, 1.0)
        return make_batch({"x": numeric_column(rng.normal(size=n))}, labels, score)

    reference = build_reference_from_batch(X, batch(20_000, 0.3, 0.0), "uploaded", T0)
    version = model_version("medium", X)
    assert reference.prediction is not None and reference.prediction.categories == ["false", "true"]
    same = _judge(version, reference, batch(3000, 0.3, 0.0))
    assert [o.feature for o in same.outputs] == ["prediction", "score"]
    assert not any(o.drifted for o in same.outputs)
    labels = _judge(version, reference, batch(3000, 0.7, 0.0))
    assert [o.drifted for o in labels.outputs] == [True, False]
    assert labels.outputs[0].statistics["chi2_pvalue"] < ALPHA
    scores = _judge(version, reference, batch(3000, 0.3, 0.3))
    assert [o.drifted for o in scores.outputs] == [False, True]
    assert scores.outputs[1].statistics["ks_pvalue"] < ALPHA
    assert labels.drifted_features == [] and not labels.dataset_drift  # outputs stand apart


def test_regression_predictions_are_numeric() -> None:
    rng = np.random.default_rng(8)

    def batch(n: int, shift: float) -> Batch:
        x = rng.normal(size=n)
        prediction = numeric_column(3 * x + rng.normal(shift, 1.0, n))
        return make_batch({"x": numeric_column(x)}, prediction)

    reference = build_reference_from_batch(X, batch(20_000, 0.0), "uploaded", T0, task="regression")
    assert reference.prediction is not None and reference.prediction.type == "numeric"
    assert reference.score is None
    version = model_version("medium", X, task="regression")
    verdict = _judge(version, reference, batch(5000, 3.0))
    (prediction,) = verdict.outputs
    assert prediction.drifted and "wasserstein" in prediction.statistics


def _stationary_psi(rng: np.random.Generator, n: int, size: int = 1000) -> np.ndarray:
    """PSI of windows of ``size`` events with 10 bins and no drift: about chi2(9) / size."""
    return rng.chisquare(9, n) / size


def test_sequential_detector_is_quiet_on_stationary_psi() -> None:
    rng = np.random.default_rng(9)
    detectors = SequentialDetectors()
    for size in (500, 1000, 10_000):
        values = _stationary_psi(rng, 1000, size)
        for i in range(values.size):
            assert detectors.update({f"w{size}": float(values[i])}) == set()


def test_sequential_detector_catches_a_slow_drift_below_the_threshold() -> None:
    rng = np.random.default_rng(10)
    detectors = SequentialDetectors()
    noise = _stationary_psi(rng, 400)
    # 100 quiet windows, then the PSI creeps up by 0.0002 a window: at most 0.069 < 0.1.
    drift = np.concatenate([np.zeros(100), np.arange(300) * 0.0002])
    values = noise + drift
    assert values.max() < TIER_THRESHOLDS["critical"]
    fired = [i for i, v in enumerate(values) if detectors.update({"x": float(v), "y": 0.01})]
    assert fired and 100 < fired[0] < 300
    assert all(detectors.update({"y": 0.01}) == set() for _ in range(10))


def test_sequential_detectors_survive_pickling() -> None:
    rng = np.random.default_rng(11)
    values = _stationary_psi(rng, 300) + np.concatenate([np.zeros(150), np.arange(150) * 3e-4])
    first, second = SequentialDetectors(), SequentialDetectors()
    fired_first: list[int] = []
    fired_second: list[int] = []
    for i, v in enumerate(values):
        if first.update({"x": float(v)}):
            fired_first.append(i)
        if i == 120:
            second = pickle.loads(pickle.dumps(first))
        elif i > 120 and second.update({"x": float(v)}):
            fired_second.append(i)
    assert fired_first and fired_first == fired_second


def test_sequential_detectors_restored_from_their_state_decide_the_same() -> None:
    """state() is a plain dict of float lists (an Avro map<array<double>>); restore() replays
    it, and the restored detectors fire on the same future windows as the originals."""
    rng = np.random.default_rng(11)
    x = _stationary_psi(rng, 400) + np.concatenate([np.zeros(150), np.arange(250) * 3e-4])
    x[330:] += 0.05  # a jump after the slow drift: a second detection
    y = _stationary_psi(rng, 400)
    stream = [{"x": float(a), "y": float(b)} for a, b in zip(x, y, strict=True)]
    detections = 0
    for cut in (0, 5, 120, 200, 300, 340):  # around the grace period and the detections
        original = SequentialDetectors()
        for psi in stream[:cut]:
            original.update(psi)
        state = original.state()
        assert all(type(v) is float for values in state.values() for v in values)
        restored = SequentialDetectors.restore(json.loads(json.dumps(state)))
        assert restored.state() == state
        fired = [original.update(psi) for psi in stream[cut:]]
        assert [restored.update(psi) for psi in stream[cut:]] == fired
        assert restored.state() == original.state()
        detections += sum(bool(f) for f in fired)
    assert detections > 0
    with pytest.raises(ValueError):
        SequentialDetectors.restore({"x": [1.0]})


def test_sequential_state_is_bounded() -> None:
    detectors = SequentialDetectors()
    for _ in range(2 * HISTORY + 10):
        detectors.update({"x": 0.01})
    assert len(detectors.state()["x"]) == 2 + HISTORY


def test_judge_feeds_the_sequential_detectors() -> None:
    """Windows of 5,000 events whose mean creeps up: never drifted, but seen by the detector."""
    rng = np.random.default_rng(12)
    reference = build_reference_from_batch(X, _x(rng.normal(size=50_000)), "uploaded", T0)
    version = model_version("medium", X)
    detectors = SequentialDetectors()
    flags = []
    for i in range(160):
        verdict = _judge(version, reference, _x(rng.normal(max(0, i - 60) * 0.002, 1.0, 5000)),
                         detectors)  # fmt: skip
        feature = verdict.features[0]
        assert not feature.drifted
        flags.append(feature.sequential_drift)
    assert not any(flags[:60])
    assert any(flags[60:])


def test_judge_refuses_a_window_of_another_reference() -> None:
    rng = np.random.default_rng(13)
    a = build_reference_from_batch(X, _x(rng.normal(size=1000)), "uploaded", T0)
    b = build_reference_from_batch(X, _x(rng.normal(size=1000)), "uploaded", T0, version=2)
    window = WindowProfile(a, X)
    with pytest.raises(ValueError):
        judge(model_version("low", X), b, window)
