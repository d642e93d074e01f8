"""Performance and fairness per segment group, through the joiner and the reporter on the
in-memory stage harness: the batch reader and the one-by-one path count the same groups, and a
report's fairness equals Fairlearn's on the same outcomes."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    selection_rate,
)

from feedback_joiner.handlers import PARTIALS, Joining, Topics
from feedback_joiner.reporting import REPORTS, Reporting
from registry.handlers import reference_from_rows
from tests.samples import FEEDBACK, MODEL, PREDICTION, T0
from tests.unit.fakes import FakeCatalog
from tests.unit.test_feedback_joiner import DictStore
from vigil.adapters.stage_testing import StageHarness
from vigil.wire.codec import Codec
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import FeatureSpec, FeedbackEvent, ModelVersion, PredictionEvent
from vigil.wire.segments import SegmentSpec

TOPICS = Topics("predictions", "feedback", "outcomes", "changelog", "partials")
HOURS = timedelta(hours=1)
VERSION = MODEL.model_copy(
    update={
        "positive_label": None,
        "sensitive_attributes": ["region"],
        "segments": [SegmentSpec(name="age", bins=[30, 50])],
        "segment_cross": ["age", "region"],
        "fairness": MODEL.fairness.model_copy(update={"min_group_size": 50}),
    }
)


def events(n: int, seed: int = 3) -> tuple[list[PredictionEvent], list[FeedbackEvent]]:
    """Predictions that select region "b" less often, and a label for most of them."""
    rng = np.random.default_rng(seed)
    predictions, labels = [], []
    for i in range(n):
        region = ["a", "b", "c"][i % 3] if i % 41 else None
        actual = bool(rng.random() < 0.5)
        bias = 0.35 if region == "b" else 0.0
        predicted = bool(rng.random() < (0.8 if actual else 0.25) - bias)
        score = float(np.clip(rng.normal(0.7 if predicted else 0.3, 0.15), 0, 1))
        predictions.append(
            PREDICTION.model_copy(
                update={
                    "prediction_id": f"p{i}",
                    "prediction": predicted,
                    "score": score,
                    "timestamp": T0 + timedelta(milliseconds=400 * i),
                    "features": {"age": float(rng.integers(18, 80)), "region": region},
                }
            )
        )
        if i % 5:
            labels.append(
                FEEDBACK.model_copy(
                    update={
                        "prediction_id": f"p{i}",
                        "feedback_id": f"f{i}",
                        "actual": actual,
                        "flag": None,
                        "timestamp": T0 + timedelta(hours=2),
                    }
                )
            )
    return predictions, labels


async def joined(version: ModelVersion, encode: object, n: int) -> list[PerformanceReport]:
    predictions, labels = events(n)
    joiner = Joining(DictStore(), TOPICS, timedelta(days=30), versions=FakeCatalog([version]))
    join = StageHarness(joiner, {"predictions": 1, "feedback": 1}, changelog="changelog")
    await join.assign([("predictions", 0), ("feedback", 0)])
    await join.put("predictions", 0, [encode(p) for p in predictions])  # type: ignore[operator]
    await join.put("feedback", 0, [Codec(FeedbackEvent).encode(f) for f in labels])
    await join.flush()
    partials = [r.value for r in join.sent if r.topic == "partials"]
    reporter = Reporting("metrics", "windows", versions=FakeCatalog([version]))
    report = StageHarness(reporter, {"partials": 1}, changelog="windows")
    await report.assign([("partials", 0)])
    await report.put("partials", 0, partials)
    await report.flush()
    assert [PARTIALS.decode(p).segments for p in partials]  # the groups travel
    return [REPORTS.decode(r.value) for r in report.sent if r.topic == "metrics"]


async def test_groups_and_fairness_agree_with_fairlearn() -> None:
    (batch,) = await joined(VERSION, Codec(PredictionEvent).encode, 3000)
    (one_by_one,) = await joined(VERSION, lambda e: e.model_dump_json().encode(), 3000)
    assert batch.segments == one_by_one.segments
    assert batch.fairness == one_by_one.fairness
    groups = {(s.segment, s.group): s for s in batch.segments}
    assert {g for s, g in groups if s == "age"} == {"<30", "30..50", ">=50"}
    assert ("region", "_missing") in groups and ("age x region", ">=50 x b") in groups
    assert sum(s.predictions for s in batch.segments if s.segment == "region") == 3000

    predictions, labels = events(3000)
    truth = {f.prediction_id: f.actual for f in labels}
    region = [p.features["region"] or "_missing" for p in predictions]
    predicted = np.array([p.prediction for p in predictions])
    labelled = np.array([p.prediction_id in truth for p in predictions])
    actual = np.array([bool(truth.get(p.prediction_id)) for p in predictions])
    groups_labelled = np.array(region)[labelled]
    (fairness,) = batch.fairness
    assert fairness.attribute == "region"
    rates = {g.group: g for g in fairness.groups}
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate},
        y_true=predicted,
        y_pred=predicted,
        sensitive_features=region,
    )
    assert set(rates) == {"a", "b", "c"}  # events without a region are in no group
    for group, value in frame.by_group["selection_rate"].items():
        if group != "_missing":
            assert rates[group].rates["selection_rate"] == pytest.approx(value, abs=1e-9)
    regions = np.array(region)
    judged = labelled & (regions != "_missing")
    kept = regions != "_missing"
    measures = fairness.measures
    assert measures["disparate_impact"].value == pytest.approx(
        demographic_parity_ratio(
            predicted[kept], predicted[kept], sensitive_features=regions[kept]
        ),
        abs=0.005,
    )
    assert measures["demographic_parity_difference"].value == pytest.approx(
        demographic_parity_difference(
            predicted[kept], predicted[kept], sensitive_features=regions[kept]
        ),
        abs=0.005,
    )
    assert measures["equalized_odds_difference"].value == pytest.approx(
        equalized_odds_difference(
            actual[judged], predicted[judged], sensitive_features=regions[judged]
        ),
        abs=0.005,
    )
    assert "disparate_impact" in fairness.violations
    assert len(groups_labelled) == len(truth)


async def test_a_small_group_is_reported_but_never_judged() -> None:
    version = VERSION.model_copy(
        update={"fairness": VERSION.fairness.model_copy(update={"min_group_size": 5000})}
    )
    (report,) = await joined(version, Codec(PredictionEvent).encode, 600)
    (fairness,) = report.fairness
    assert {g.group for g in fairness.groups} >= {"a", "b", "c"}
    assert fairness.measures == {} and fairness.violations == []
    assert not any(s.judged for s in report.segments)


async def test_the_first_full_window_gives_the_reference_fairness() -> None:
    """Two windows: the first, ended and labelled, becomes the reference; the second's report
    carries the reference's fairness beside its own."""
    predictions, labels = events(1200)
    later = [
        p.model_copy(
            update={"prediction_id": f"n{p.prediction_id}", "timestamp": p.timestamp + HOURS}
        )
        for p in predictions
    ]
    later_labels = [f.model_copy(update={"prediction_id": f"n{f.prediction_id}"}) for f in labels]
    joiner = Joining(DictStore(), TOPICS, timedelta(days=30), versions=FakeCatalog([VERSION]))
    join = StageHarness(joiner, {"predictions": 1, "feedback": 1}, changelog="changelog")
    await join.assign([("predictions", 0), ("feedback", 0)])
    encode = Codec(PredictionEvent).encode
    await join.put("predictions", 0, [encode(p) for p in [*predictions, *later]])
    await join.put(
        "feedback", 0, [Codec(FeedbackEvent).encode(f) for f in [*labels, *later_labels]]
    )
    await join.flush()
    partials = [r.value for r in join.sent if r.topic == "partials"]
    reporter = Reporting(
        "metrics", "windows", versions=FakeCatalog([VERSION]), clock=lambda: T0 + 3 * HOURS
    )
    report = StageHarness(reporter, {"partials": 1}, changelog="windows")
    await report.assign([("partials", 0)])
    await report.put("partials", 0, partials)
    await report.flush()
    found = {
        r.window_start: r
        for r in (REPORTS.decode(m.value) for m in report.sent if m.topic == "metrics")
    }
    first, second = (found[k] for k in sorted(found))
    assert second.reference_window_start == first.window_start
    (reference,) = second.reference_fairness
    assert reference.attribute == "region"
    assert reference.groups == first.fairness[0].groups


async def test_a_crossed_pair_of_sensitive_segments_is_judged_on_intersecting_groups() -> None:
    """Age bands and regions both sensitive and crossed: a third fairness report over
    "age x region" whose groups and measures equal Fairlearn's over the two columns (events
    missing either attribute left out)."""
    version = VERSION.model_copy(
        update={"segments": [SegmentSpec(name="age", bins=[30, 50], sensitive=True)]}
    )
    (report,) = await joined(version, Codec(PredictionEvent).encode, 3000)
    by_attribute = {f.attribute: f for f in report.fairness}
    assert set(by_attribute) == {"age", "region", "age x region"}
    crossed = by_attribute["age x region"]
    assert {g.group for g in crossed.groups} == {
        f"{a} x {r}" for a in ("<30", "30..50", ">=50") for r in "abc"
    }

    predictions, _ = events(3000)
    kept = [p for p in predictions if p.features["region"] is not None]
    ages = np.array(
        [
            "<30" if p.features["age"] < 30 else "30..50" if p.features["age"] < 50 else ">=50"  # type: ignore[operator]
            for p in kept
        ]
    )
    regions = np.array([p.features["region"] for p in kept])
    predicted = np.array([p.prediction for p in kept])
    features = np.stack([ages, regions], axis=1)
    assert crossed.measures["disparate_impact"].value == pytest.approx(
        demographic_parity_ratio(predicted, predicted, sensitive_features=features), abs=0.005
    )
    assert crossed.measures["demographic_parity_difference"].value == pytest.approx(
        demographic_parity_difference(predicted, predicted, sensitive_features=features),
        abs=0.005,
    )


async def test_an_uploaded_references_labelled_rows_give_its_fairness_per_group() -> None:
    """A reference uploaded with predictions and actuals keeps its outcomes per group; every
    report carries the fairness of those rows beside its own, equal to Fairlearn's on them."""
    predictions, labels = events(1500, seed=9)
    truth = {f.prediction_id: f.actual for f in labels}
    rows = [{"income": 1000.0, **p.features} for p in predictions]
    with_age = VERSION.model_copy(
        update={"features": [*VERSION.features, FeatureSpec(name="age", type="numeric")]}
    )
    reference, errors = reference_from_rows(
        with_age,
        rows,
        T0,
        predictions=[p.prediction for p in predictions],
        scores=[p.score for p in predictions],
        actuals=[truth.get(p.prediction_id) for p in predictions],
    )
    assert errors == [] and reference is not None
    assert {(g.segment, g.group) for g in reference.segments} >= {("region", "b"), ("age", "<30")}
    version = with_age.model_copy(update={"reference": reference})
    (report,) = await joined(version, Codec(PredictionEvent).encode, 600)
    assert report.reference_window_start is None  # the uploaded reference, not a window
    (fairness,) = report.reference_fairness
    assert fairness.attribute == "region"

    labelled = [p for p in predictions if p.prediction_id in truth and p.features["region"]]
    regions = np.array([p.features["region"] for p in labelled])
    predicted = np.array([p.prediction for p in labelled])
    actual = np.array([bool(truth[p.prediction_id]) for p in labelled])
    assert fairness.measures["disparate_impact"].value == pytest.approx(
        demographic_parity_ratio(actual, predicted, sensitive_features=regions), abs=0.005
    )
    assert fairness.measures["equalized_odds_difference"].value == pytest.approx(
        equalized_odds_difference(actual, predicted, sensitive_features=regions), abs=0.005
    )
