"""Champion, shadow and challenger versions of one model, with the predictions of a champion
and a shadow on shared requests and the outcomes of the champion's (the labels come for its
prediction ids only), for the comparison tests."""

from __future__ import annotations

from datetime import timedelta

from tests.samples import MODEL, PERFORMANCE, T0
from vigil.wire.performance import ConfusionMatrix, PerformanceReport
from vigil.wire.records import FeedbackEvent, ModelVersion, Outcome, PredictionEvent

CHAMPION = MODEL.model_copy(update={"version": "1.0.0", "status": "champion"})
SHADOW = MODEL.model_copy(update={"version": "1.1.0", "status": "shadow"})
CHALLENGER = MODEL.model_copy(update={"version": "1.2.0", "status": "challenger"})
RETIRED = MODEL.model_copy(update={"version": "0.9.0", "status": "retired"})
VERSIONS = [CHAMPION, SHADOW, CHALLENGER, RETIRED]
# Labelled shared requests: both right, only the champion, only the shadow, neither; then
# unlabelled ones, of which some the two versions disagree on.
TABLE = (150, 10, 30, 10)
UNLABELLED, UNLABELLED_DISAGREEING = 20, 5
POSITIVE, NEGATIVE = "default", "repaid"  # MODEL's positive label is "default"


def _event(version: ModelVersion, request: int, label: str, tag: str) -> PredictionEvent:
    return PredictionEvent(
        prediction_id=f"{tag}-{version.version}-{request}",
        model_id=version.model_id,
        model_version=version.version,
        timestamp=T0 + timedelta(seconds=request),
        features={"income": 1000.0, "region": "eu"},
        prediction=label,
        tags={"request_id": f"{tag}-r{request}", "variant": version.status},
    )


def shared_traffic(
    tag: str = "t",
) -> tuple[list[PredictionEvent], list[Outcome], tuple[int, int, int, int]]:
    """Champion and shadow predictions on shared requests, and the champion's outcomes, laid
    out as ``TABLE`` (whose discordant pairs McNemar judges); the contingency table too."""
    events: list[PredictionEvent] = []
    outcomes: list[Outcome] = []
    both, champion_only, shadow_only, neither = TABLE
    cells = [(True, True)] * both + [(True, False)] * champion_only
    cells += [(False, True)] * shadow_only + [(False, False)] * neither
    for request, (champion_right, shadow_right) in enumerate(cells):
        actual = POSITIVE if request % 3 else NEGATIVE
        wrong = NEGATIVE if actual == POSITIVE else POSITIVE
        champion = _event(CHAMPION, request, actual if champion_right else wrong, tag)
        shadow = _event(SHADOW, request, actual if shadow_right else wrong, tag)
        events += [champion, shadow]
        feedback = FeedbackEvent(
            feedback_id=f"f-{champion.prediction_id}",
            prediction_id=champion.prediction_id,
            model_id=champion.model_id,
            actual=actual,
            source="ground_truth",
            timestamp=champion.timestamp + timedelta(hours=1),
        )
        outcomes.append(
            Outcome(prediction=champion, feedback=feedback, joined_at=feedback.timestamp)
        )
    for k in range(UNLABELLED):
        request = len(cells) + k
        other = NEGATIVE if k < UNLABELLED_DISAGREEING else POSITIVE
        events += [_event(CHAMPION, request, POSITIVE, tag), _event(SHADOW, request, other, tag)]
    return events, outcomes, TABLE


def window(version: ModelVersion, hours: int, rows: list[list[int]]) -> PerformanceReport:
    """A window's report of ``version`` with this binary confusion matrix ([[tn, fp], [fn, tp]])."""
    start = PERFORMANCE.window_start + timedelta(hours=hours)
    labelled = sum(map(sum, rows))
    return PERFORMANCE.model_copy(
        update={
            "report_id": f"{version.model_id}/{version.version}/performance/{hours}",
            "model_version": version.version,
            "window_start": start,
            "window_end": start + timedelta(hours=1),
            "predictions": labelled + 100,
            "labelled": labelled,
            "confusion_matrix": ConfusionMatrix(labels=["negative", "positive"], rows=rows),
            "value": -1000.0 * (hours + 1),
        }
    )
