"""Vigil's CBPE estimates side by side with NannyML's CBPE, on the same synthetic data.

A binary classifier scores one feature x: score = sigmoid(2 x), x ~ N(0, 1) in the reference.
Labels are drawn from the true probability of the positive class: the score itself
(``calibrated``), or the score squared (``overconfident``: a model that needs the calibration
both fit on the reference). The analysis chunks shift x (its mean and spread: covariate shift,
p(y | x) unchanged), which moves the realised performance up and down. Both estimators are
fitted on the same reference (scores and labels) and estimate each chunk from its scores
alone. Per chunk the table prints the realised metric (scikit-learn, from the chunk's labels),
Vigil's estimate, NannyML's and both absolute errors; then the mean absolute error of each
estimator over the chunks, and the time each took. Vigil's path is the reporter's: the
reference's outcomes counted in a ``WindowPerformance``, ``calibration_of`` it (isotonic, per
score bin), the chunk's predictions counted one at a time as the joiner counts them
(``add_prediction``), ``estimated_metrics``; its error with ``Calibration.fit`` on the raw
reference scores instead is printed too. NannyML: ``CBPE`` (isotonic calibration) ``fit`` on
the reference frame and ``estimate`` on the chunks' frame, without their labels.

CBPE estimates a metric's expected value: a chunk's realised value scatters around it with the
metric's own sampling noise (sd ≈ 0.006-0.009 for chunks of 5,000), so neither estimator can be
much closer than that on one chunk.

Needs the ``bench`` dependency group (``uv sync --group bench``); NannyML's usage logging is
turned off (``NML_DISABLE_USAGE_LOGGING``).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from benchmarks.common import machine
from vigil.performance import Calibration, WindowPerformance, calibration_of, estimated_metrics

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

Floats = npt.NDArray[np.float64]
Truth = Callable[[Floats], Floats]
# What vigil.performance.cbpe states for windows of 5,000 with a reference of 20,000 outcomes.
TOLERANCE = 0.03
MEAN_TOLERANCE = 0.015
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
TRUTHS: dict[str, Truth] = {"calibrated": lambda s: s, "overconfident": lambda s: s**2}
# The analysis chunks' x: (mean, sd); the reference's is (0, 1).
SHIFTS: list[tuple[float, float]] = [
    (0.0, 1.0),
    (0.0, 1.0),
    (0.25, 1.0),
    (0.5, 1.0),
    (1.0, 1.0),
    (-0.5, 1.0),
    (-1.0, 1.0),
    (0.0, 0.5),
    (0.0, 2.0),
    (0.5, 0.7),
]


@dataclass
class Data:
    scores: Floats
    labels: npt.NDArray[np.int64]

    @property
    def predictions(self) -> npt.NDArray[np.int64]:
        return (self.scores >= 0.5).astype(np.int64)


def _draw(rng: np.random.Generator, n: int, truth: Truth, mean: float, sd: float) -> Data:
    scores = 1.0 / (1.0 + np.exp(-2.0 * rng.normal(mean, sd, n)))
    return Data(scores, (rng.random(n) < truth(scores)).astype(np.int64))


def _realised(chunk: Data) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y, pred = chunk.labels, chunk.predictions
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, chunk.scores)),
    }


def _reference_window(reference: Data) -> WindowPerformance:
    """The reference's outcomes counted as the registry's reference outcomes are."""
    window = WindowPerformance("binary")
    for score, label in zip(reference.scores.tolist(), reference.labels.tolist(), strict=True):
        window.add_outcome(score >= 0.5, score, bool(label))
    return window


def _vigil(
    reference: Data, chunks: list[Data], from_scores: bool = False
) -> tuple[list[dict[str, float]], float, float]:
    """Estimates per chunk; seconds to fit, seconds to count and estimate every chunk. The
    calibration as the reporter makes it (from the reference's outcomes counted per score bin),
    or fitted on the reference's raw scores (``Calibration.fit``)."""
    start = time.perf_counter()
    if from_scores:
        calibration = Calibration.fit(reference.scores, reference.labels)
    else:
        calibration = calibration_of(_reference_window(reference))
    fitted = time.perf_counter()
    estimates = []
    for chunk in chunks:
        window = WindowPerformance("binary")
        for score in chunk.scores.tolist():
            window.add_prediction(score >= 0.5, score)
        estimates.append(estimated_metrics(window, calibration))
    return estimates, fitted - start, time.perf_counter() - fitted


def _nannyml(
    reference: Data, chunks: list[Data], size: int
) -> tuple[list[dict[str, float]], float, float]:
    """NannyML's CBPE estimates per chunk (chunks of ``size``, as the analysis is cut);
    seconds to fit, seconds to estimate."""
    import nannyml as nml
    import pandas as pd

    def frame(data: Data, labelled: bool) -> pd.DataFrame:
        columns = {"score": data.scores, "y_pred": data.predictions}
        return pd.DataFrame(columns | ({"y_true": data.labels} if labelled else {}))

    analysis = frame(
        Data(
            np.concatenate([c.scores for c in chunks]),
            np.concatenate([c.labels for c in chunks]),
        ),
        labelled=False,  # estimated before the labels, as Vigil's
    )
    estimator = nml.CBPE(
        metrics=list(METRICS),
        y_pred_proba="score",
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_binary",
        chunk_size=size,
    )
    start = time.perf_counter()
    estimator.fit(frame(reference, labelled=True))
    fitted = time.perf_counter()
    table = estimator.estimate(analysis).filter(period="analysis").to_df()
    done = time.perf_counter()
    estimates = [
        {m: float(table[(m, "value")].iloc[i]) for m in METRICS} for i in range(len(chunks))
    ]
    return estimates, fitted - start, done - fitted


def _scenario(name: str, reference_rows: int, size: int, seed: int) -> dict[str, float]:
    """Print one scenario's table; returns each estimator's mean absolute error."""
    rng = np.random.default_rng(seed)
    truth = TRUTHS[name]
    reference = _draw(rng, reference_rows, truth, 0.0, 1.0)
    chunks = [_draw(rng, size, truth, mean, sd) for mean, sd in SHIFTS]
    realised = [_realised(c) for c in chunks]
    vigil, vigil_fit, vigil_estimate = _vigil(reference, chunks)
    nanny, nanny_fit, nanny_estimate = _nannyml(reference, chunks, size)
    print(
        f"\n{name} scores: reference {reference_rows:,} scored outcomes, {len(chunks)} chunks of"
        f" {size:,} predictions"
    )
    print(
        f"  {'chunk':<16} {'metric':<9} {'realised':>8} {'Vigil':>7} {'NannyML':>7}"
        f" {'|V-r|':>7} {'|N-r|':>7}"
    )
    errors: dict[str, list[float]] = {"Vigil": [], "NannyML": []}
    between: list[float] = []
    per_metric: dict[str, dict[str, list[float]]] = {
        m: {"Vigil": [], "NannyML": []} for m in METRICS
    }
    for i, (mean, sd) in enumerate(SHIFTS):
        label = f"{i} x~N({mean:+.2g}, {sd:.2g})"
        for metric in METRICS:
            r, v, n = realised[i][metric], vigil[i][metric], nanny[i][metric]
            errors["Vigil"].append(abs(v - r))
            errors["NannyML"].append(abs(n - r))
            between.append(abs(v - n))
            per_metric[metric]["Vigil"].append(abs(v - r))
            per_metric[metric]["NannyML"].append(abs(n - r))
            print(
                f"  {label:<16} {metric:<9} {r:8.4f} {v:7.4f} {n:7.4f} {abs(v - r):7.4f}"
                f" {abs(n - r):7.4f}"
            )
            label = ""
    print("  mean absolute error vs realised:    Vigil  NannyML")
    for metric in METRICS:
        ours, theirs = per_metric[metric]["Vigil"], per_metric[metric]["NannyML"]
        print(f"    {metric:<31} {np.mean(ours):7.4f}  {np.mean(theirs):7.4f}")
    mae = {k: float(np.mean(e)) for k, e in errors.items()}
    worst = {k: float(np.max(e)) for k, e in errors.items()}
    print(f"    {'all metrics':<31} {mae['Vigil']:7.4f}  {mae['NannyML']:7.4f}")
    print(
        f"    {'largest, any chunk and metric':<31} {worst['Vigil']:7.4f}  {worst['NannyML']:7.4f}"
    )
    print(
        f"  Vigil vs NannyML: mean |difference| {np.mean(between):.4f}, largest"
        f" {np.max(between):.4f}"
    )
    raw, _, _ = _vigil(reference, chunks, from_scores=True)
    raw_errors = [abs(raw[i][m] - realised[i][m]) for i in range(len(chunks)) for m in METRICS]
    print(
        f"  Vigil calibrated with Calibration.fit on the raw reference scores instead:"
        f" mean absolute error {np.mean(raw_errors):.4f}, largest {np.max(raw_errors):.4f}"
    )
    met = (
        worst["Vigil"] <= TOLERANCE
        and max(np.mean(per_metric[m]["Vigil"]) for m in METRICS) <= MEAN_TOLERANCE
    )
    print(
        f"  Vigil's stated accuracy (every estimate within {TOLERANCE} of realised, each metric's"
        f" mean within {MEAN_TOLERANCE}): {'met' if met else 'NOT met'}"
    )
    print(
        f"  time: Vigil fit {vigil_fit * 1000:.1f} ms, count + estimate {len(chunks)} chunks"
        f" {vigil_estimate * 1000:.0f} ms; NannyML fit {nanny_fit * 1000:.0f} ms, estimate"
        f" {nanny_estimate * 1000:.0f} ms"
    )
    return mae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reference", type=int, default=50_000, help="reference rows")
    parser.add_argument("--chunk", type=int, default=5_000, help="predictions per chunk")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scenario", choices=[*TRUTHS, "both"], default="both", help="how labels follow scores"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # NannyML warns about few chunks and pandas internals
    import nannyml as nml

    print(
        f"CBPE, Vigil vs NannyML {nml.__version__} ({machine()}): estimated before the labels,"
        " compared with the realised metrics once they are in"
    )
    names = list(TRUTHS) if args.scenario == "both" else [args.scenario]
    for name in names:
        _scenario(name, args.reference, args.chunk, args.seed)


if __name__ == "__main__":
    main()
