"""Drift-detection quality of Vigil's default verdicts on streams with drifts at known events.

Target: every drift that changes a monitored distribution is flagged within a few windows of
1,000 events, with no false alarm before it, and a stationary stream of 1,000,000 events gives
no drift verdict at any risk tier. No Kafka: reference profile, window profiles and ``judge``
(default settings, risk tier "medium" unless stated, with ``SequentialDetectors``), as the drift
worker runs them.

Each stream's reference is its first 5,000 events; the windows follow it back to back (1,000
and 5,000 events). Per change point: the first window that contains events after it is window
1, and the delay is the number of the first window whose verdict flags the watched feature or
output (``drifted``, or ``sequential_drift``), ``dataset_drift`` or the multivariate check; the
signal column says which fired. False alarms: windows before the first change point with any
flag (any feature or output drifted or sequential, dataset drift, multivariate).

Streams: river's ``Agrawal`` with a concept drift (``ConceptDriftStream``; the features keep
their distribution, the label is fed as the prediction), ``FriedmanDrift`` ("lea", "gra"; y is
fed as the regression prediction), 10 Gaussian features one of which shifts by 0.5 sd at once
or creeps by 0.02 sd per 1,000 events, and a stationary stream of 1,000,000 events.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from river.datasets import synth

from benchmarks.common import machine
from vigil.drift.reference import build_reference_from_batch
from vigil.drift.sequential import SequentialDetectors
from vigil.drift.verdicts import ALPHA, Verdict, judge
from vigil.drift.window import WindowProfile
from vigil.wire.columns import DOUBLE, LONG, MISSING, STRING, Batch, Column
from vigil.wire.records import (
    DriftConfig,
    FeatureDrift,
    FeatureSpec,
    ModelVersion,
    ReferenceProfile,
    RiskAssessment,
    Severity,
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Task = Literal["binary", "multiclass", "regression"]

REFERENCE = 5_000  # the first events of every stream
WINDOWS = (1_000, 5_000)
AFTER = 50_000  # events generated after the last change point
DRIFT_AT = 50_000
STATIONARY = 1_000_000
TIERS: tuple[Severity, ...] = ("low", "medium", "high", "critical")
T0 = datetime(2026, 5, 1, tzinfo=UTC)

# -- columns --------------------------------------------------------------------------------------


def _numbers(values: Floats, kind: int = DOUBLE) -> Column:
    n = values.size
    kinds = np.full(n, kind, dtype=np.int8)
    kinds[np.isnan(values)] = MISSING
    return Column(kinds, values, np.full(n, -1, dtype=np.int32), [])


def _strings(codes: Ints, vocab: list[str]) -> Column:
    n = codes.size
    return Column(
        np.full(n, STRING, dtype=np.int8), np.full(n, np.nan), codes.astype(np.int32), vocab
    )


def _batch(features: Mapping[str, Column], prediction: Column, score: Floats | None) -> Batch:
    n = len(prediction)
    return Batch(
        "bench",
        "1",
        np.arange(n, dtype=np.intp),
        np.zeros(n, dtype=np.int64),
        dict(features),
        prediction,
        score if score is not None else np.full(n, np.nan),
    )


def _slice(batch: Batch, start: int, stop: int) -> Batch:
    """Events start..stop-1 as views (no copy)."""

    def cut(c: Column) -> Column:
        return Column(c.kinds[start:stop], c.numbers[start:stop], c.codes[start:stop], c.vocab)

    return Batch(
        batch.model_id,
        batch.model_version,
        batch.rows[start:stop],
        batch.timestamps[start:stop],
        {name: cut(c) for name, c in batch.features.items()},
        cut(batch.prediction),
        batch.score[start:stop],
    )


def _version(
    spec: list[FeatureSpec], task: Task, tier: Severity, config: DriftConfig | None = None
) -> ModelVersion:
    return ModelVersion(
        model_id="bench",
        version="1",
        task=task,
        features=spec,
        owner="bench",
        risk=RiskAssessment(probability=3, impact=3, severity=tier),
        drift=config or DriftConfig(),
        created_at=T0,
        updated_at=T0,
    )


# -- streams --------------------------------------------------------------------------------------


@dataclass
class Stream:
    """A generated stream: all its events as one batch, and where it changes."""

    name: str
    task: Task
    spec: list[FeatureSpec]
    batch: Batch
    drifts: list[int]  # event indices of the change points
    watch: str  # the feature (or "prediction") the drift changes
    config: DriftConfig = field(default_factory=DriftConfig)


def _take(
    stream: Iterable[tuple[dict[Any, Any], Any]], n: int
) -> tuple[list[list[Any]], list[Any]]:
    rows: list[list[Any]] = []
    labels: list[Any] = []
    for x, y in itertools.islice(stream, n):
        rows.append(list(x.values()))
        labels.append(y)
    return rows, labels


# Codes (education level, car make, zip code): categorical features fed as longs.
AGRAWAL_CATEGORICAL = ["elevel", "car", "zipcode"]


def agrawal(after: int) -> Stream:
    """Agrawal function 0 -> ``after`` at DRIFT_AT: same features, different label."""
    n = DRIFT_AT + AFTER
    source = synth.ConceptDriftStream(
        stream=synth.Agrawal(classification_function=0, seed=1),
        drift_stream=synth.Agrawal(classification_function=after, seed=2),
        position=DRIFT_AT,
        # Half the transition within 250 events of DRIFT_AT; river's sigmoid overflows
        # (math.exp) for width < position / 177.
        width=500,
        seed=3,
    )
    rows, labels = _take(source, n)
    names = list(synth.Agrawal().feature_names)
    table = np.asarray(rows, dtype=np.float64)
    features = {
        f: _numbers(np.ascontiguousarray(table[:, i]), LONG if f in AGRAWAL_CATEGORICAL else DOUBLE)
        for i, f in enumerate(names)
    }
    spec = [
        FeatureSpec(name=f, type="categorical" if f in AGRAWAL_CATEGORICAL else "numeric")
        for f in names
    ]
    prediction = _numbers(np.asarray(labels, dtype=np.float64), LONG)
    return Stream(
        f"Agrawal f0 -> f{after}",
        "binary",
        spec,
        _batch(features, prediction, None),
        [DRIFT_AT],
        "prediction",
    )


def friedman(drift_type: Literal["lea", "gra"], y_as_feature: bool = False) -> Stream:
    positions = (DRIFT_AT, 100_000, 150_000) if drift_type == "lea" else (DRIFT_AT, 100_000)
    # "gra" returns to the first concept at its second position: stop there.
    n = positions[-1] + AFTER if drift_type == "lea" else positions[1]
    rows, labels = _take(synth.FriedmanDrift(drift_type=drift_type, position=positions, seed=1), n)
    table = np.asarray(rows, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    names = [f"x{i}" for i in range(table.shape[1])]
    features = {f: _numbers(np.ascontiguousarray(table[:, i])) for i, f in enumerate(names)}
    if y_as_feature:
        names.append("y")
        features["y"] = _numbers(y.copy())
    spec = [FeatureSpec(name=f, type="numeric") for f in names]
    drifts = list(positions) if drift_type == "lea" else [positions[0]]
    label = f"FriedmanDrift {drift_type}" + (" (y also a feature)" if y_as_feature else "")
    return Stream(
        label, "regression", spec, _batch(features, _numbers(y), None), drifts, "prediction"
    )


def gaussian(kind: Literal["shift", "creep"]) -> Stream:
    """10 independent N(0, 1) features; g3 shifts by 0.5 at DRIFT_AT, or creeps 0.02 per 1,000."""
    n = DRIFT_AT + AFTER
    rng = np.random.default_rng(11 if kind == "shift" else 12)
    table = rng.normal(size=(10, n))
    after = np.arange(n - DRIFT_AT, dtype=np.float64)
    table[3, DRIFT_AT:] += 0.5 if kind == "shift" else 0.02 * after / 1_000
    names = [f"g{i}" for i in range(10)]
    features = {f: _numbers(table[i]) for i, f in enumerate(names)}
    spec = [FeatureSpec(name=f, type="numeric") for f in names]
    score = 1.0 / (1.0 + np.exp(-(table[0] + table[1])))
    prediction = _numbers((score > 0.5).astype(np.float64), LONG)
    name = "Gaussian g3 +0.5 sd" if kind == "shift" else "Gaussian g3 +0.02 sd/1k"
    return Stream(name, "binary", spec, _batch(features, prediction, score), [DRIFT_AT], "g3")


def stationary(n: int, seed: int = 0) -> Stream:
    """20 numeric features of assorted shapes + 5 categorical ones, a label and a score."""
    rng = np.random.default_rng(seed)
    numeric: dict[str, Floats] = {}
    for i in range(6):
        numeric[f"n{i}"] = rng.normal(10.0 * i, 1.0 + i, n)
    numeric["n6"] = 0.8 * numeric["n0"] + 0.6 * rng.normal(size=n)  # correlated with n0
    numeric["n7"] = rng.lognormal(0.0, 1.0, n)
    numeric["n8"] = rng.lognormal(3.0, 2.0, n)
    numeric["n9"] = rng.uniform(-1.0, 1.0, n)
    numeric["n10"] = rng.exponential(2.0, n)
    numeric["n11"] = rng.standard_t(2, n)  # no variance
    numeric["n12"] = rng.pareto(1.5, n)
    numeric["n13"] = rng.poisson(3.0, n).astype(np.float64)  # few distinct values
    numeric["n14"] = rng.binomial(1, 0.1, n).astype(np.float64)  # two values, one rare
    numeric["n15"] = np.where(rng.random(n) < 0.3, rng.normal(-3, 0.5, n), rng.normal(2, 1, n))
    numeric["n16"] = np.round(rng.normal(0.0, 1.0, n), 1)  # many ties
    numeric["n17"] = np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n))  # 5 % missing
    numeric["n18"] = np.where(rng.random(n) < 0.4, 0.0, rng.gamma(2.0, 1.0, n))  # zero spike
    numeric["n19"] = rng.beta(0.5, 0.5, n)
    features: dict[str, Column] = {
        f: _numbers(v, LONG if f in ("n13", "n14") else DOUBLE) for f, v in numeric.items()
    }
    shapes = {
        "c0": np.full(3, 1 / 3),
        "c1": np.full(12, 1 / 12),
        "c2": 1.0 / np.arange(1, 51),  # Zipf over 50 categories: 30 share "other"
        "c3": np.array([0.95, 0.04, 0.01]),
        "c4": np.array([0.4, 0.3, 0.2, 0.07, 0.02, 0.01]),
    }
    for f, p in shapes.items():
        vocab = [f"{f}_{j}" for j in range(p.size)]
        features[f] = _strings(rng.choice(p.size, n, p=p / p.sum()), vocab)
    spec = [FeatureSpec(name=f, type="numeric") for f in numeric]
    spec += [FeatureSpec(name=f, type="categorical") for f in shapes]
    score = rng.beta(2.0, 5.0, n)
    prediction = _numbers((score > 0.4).astype(np.float64), LONG)
    return Stream(
        "stationary", "binary", spec, _batch(features, prediction, score), [], "prediction"
    )


# -- judging --------------------------------------------------------------------------------------


def _reference(stream: Stream) -> ReferenceProfile:
    return build_reference_from_batch(
        stream.spec, _slice(stream.batch, 0, REFERENCE), "uploaded", T0, task=stream.task
    )


def _windows(stream: Stream, size: int) -> Iterator[tuple[int, Batch]]:
    for start in range(REFERENCE, len(stream.batch) - size + 1, size):
        yield start, _slice(stream.batch, start, start + size)


def verdicts(stream: Stream, size: int, tier: Severity = "medium") -> list[tuple[int, Verdict]]:
    """(window start, verdict) of every full window after the reference."""
    reference = _reference(stream)
    version = _version(stream.spec, stream.task, tier, stream.config)
    detectors = SequentialDetectors()
    judged: list[tuple[int, Verdict]] = []
    for start, window in _windows(stream, size):
        profile = WindowProfile(reference, stream.spec)
        profile.add(window)
        judged.append((start, judge(version, reference, profile, detectors)))
    return judged


def _entry(verdict: Verdict, name: str) -> FeatureDrift:
    return next(f for f in [*verdict.features, *verdict.outputs] if f.feature == name)


def _pvalue(entry: FeatureDrift) -> float:
    statistics = entry.statistics
    return statistics.get("ks_pvalue", statistics.get("chi2_pvalue", 1.0))


def signals(verdict: Verdict, watch: str) -> list[str]:
    """The signals of a verdict that flag the watched feature or output."""
    fired: list[str] = []
    entry = _entry(verdict, watch)
    if entry.drifted:
        fired.append(f"{watch} drifted")
    if entry.sequential_drift:
        fired.append(f"{watch} sequential")
    if verdict.dataset_drift:
        fired.append("dataset_drift")
    if verdict.multivariate is not None and verdict.multivariate.drifted:
        fired.append("multivariate")
    return fired


def flags(verdict: Verdict) -> tuple[bool, bool]:
    """(any drift verdict, any sequential firing) of a window."""
    entries = [*verdict.features, *verdict.outputs]
    drift = (
        any(f.drifted for f in entries)
        or verdict.dataset_drift
        or bool(verdict.multivariate and verdict.multivariate.drifted)
    )
    return drift, any(f.sequential_drift for f in entries)


def _false_alarms(judged: list[tuple[int, Verdict]], size: int, until: float) -> str:
    before = [v for start, v in judged if start + size <= until]
    drift = sum(flags(v)[0] for v in before)
    sequential = sum(flags(v)[1] and not flags(v)[0] for v in before)
    text = f"{drift}/{len(before)}"
    return text + (f" (+{sequential} sequential only)" if sequential else "")


Row = tuple[str, str, str, str, str, str, str]


def rows(stream: Stream, size: int) -> list[Row]:
    judged = verdicts(stream, size)
    out: list[Row] = []
    bounds = [*stream.drifts, len(stream.batch)]
    for k, at in enumerate(stream.drifts):
        # Windows with events after this change point and none after the next one.
        after = [(s, v) for s, v in judged if s + size > at and s < bounds[k + 1]]
        first: dict[str, int] = {}
        for number, (_, verdict) in enumerate(after, start=1):
            for signal in signals(verdict, stream.watch):
                first.setdefault(signal, number)
        alarms = _false_alarms(judged, size, at) if k == 0 else "-"
        name = stream.name + (f" #{k + 1}" if len(stream.drifts) > 1 else "")
        if not first:
            # How close it came: the watched statistic's highest PSI and how many windows
            # had a significant test (KS or chi-square p-value below ALPHA).
            entries = [_entry(v, stream.watch) for _, v in after]
            top = max(e.statistics["psi"] for e in entries)
            significant = sum(_pvalue(e) < ALPHA for e in entries)
            missed = f"missed: PSI max {top:.3f}, p<{ALPHA:g} in {significant}/{len(after)}"
            out.append((name, f"{size:,}", f"{at:,}", missed, f"> {len(after)}", "-", alarms))
            continue
        delay = min(first.values())
        fired = "+".join(s for s, d in first.items() if d == delay)
        later = ", ".join(f"{s} {d}" for s, d in sorted(first.items(), key=lambda i: i[1]))
        events = after[delay - 1][0] + size - at
        out.append((name, f"{size:,}", f"{at:,}", fired, str(delay), f"{events:,}", alarms))
        if len(first) > 1:
            out.append(("", "", "", f"  first window per signal: {later}", "", "", ""))
    return out


def stationary_rows(stream: Stream, margins: list[str]) -> list[Row]:
    """Drift verdicts on the stationary stream per window size and tier (sequential: tier-free).

    Appends the highest PSI seen per window size to ``margins``.
    """
    reference = _reference(stream)
    out: list[Row] = []
    for size in WINDOWS:
        versions = {tier: _version(stream.spec, stream.task, tier) for tier in TIERS}
        drifted = dict.fromkeys(TIERS, 0)
        detectors = SequentialDetectors()
        sequential = 0
        count = 0
        top: tuple[float, str] = (0.0, "")
        for _, window in _windows(stream, size):
            profile = WindowProfile(reference, stream.spec)
            profile.add(window)
            count += 1
            for tier, version in versions.items():
                # PSI does not depend on the tier: one set of sequential detectors is enough.
                verdict = judge(version, reference, profile, detectors if tier == "low" else None)
                drift, fired = flags(verdict)
                drifted[tier] += drift
                sequential += fired
            for f in [*verdict.features, *verdict.outputs]:
                top = max(top, (f.statistics["psi"], f.feature))
        margins.append(f"windows of {size:,}: highest PSI {top[0]:.3f} ({top[1]})")
        for tier in TIERS:
            out.append(
                (
                    f"stationary {len(stream.batch) - REFERENCE:,} ({tier})",
                    f"{size:,}",
                    "none",
                    "-",
                    "-",
                    "-",
                    f"{drifted[tier]}/{count:,}"
                    + (f" (+{sequential} sequential only)" if tier == "low" and sequential else ""),
                )
            )
    return out


def _print(table: list[Row]) -> None:
    header: Row = (
        "stream",
        "window",
        "drift at",
        "signal",
        "delay (windows)",
        "delay (events)",
        "false alarms",
    )
    widths = [max(len(r[i]) for r in [header, *table] if r[0] or i != 3) for i in range(7)]
    widths[3] = max(len(r[3]) for r in [header, *table] if r[0])

    def line(row: Row) -> str:
        return "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in table:
        # A row without a stream name continues the one above in the signal column.
        print(line(r) if r[0] else " " * (sum(widths[:3]) + 6) + r[3])


def main() -> None:
    started = time.perf_counter()
    print(f"Vigil drift-detection quality ({machine()})")
    print(
        f"  reference: first {REFERENCE:,} events; windows of {WINDOWS[0]:,} and {WINDOWS[1]:,}; "
        "judge() defaults, tier medium (stationary: every tier), SequentialDetectors()"
    )
    concept = agrawal(2)
    streams = [
        concept,
        dataclasses.replace(
            concept,
            name=f"{concept.name}, prediction threshold 0.05",
            config=DriftConfig(feature_thresholds={"prediction": 0.05}),
        ),
        agrawal(4),
        friedman("lea"),
        friedman("gra"),
        friedman("gra", y_as_feature=True),
        gaussian("shift"),
        gaussian("creep"),
    ]
    generated = time.perf_counter()
    print(f"  streams generated in {generated - started:.1f} s")
    table: list[Row] = []
    for size in WINDOWS:
        for stream in streams:
            table += rows(stream, size)
    margins: list[str] = []
    table += stationary_rows(stationary(REFERENCE + STATIONARY), margins)
    print()
    _print(table)
    print()
    print(
        "  false alarms: windows with a drift verdict (any feature or output drifted, dataset\n"
        "  drift, multivariate) / windows before the drift; '+N sequential only': windows where\n"
        "  only an ADWIN detector fired (none unless shown). Stationary sequential detectors are\n"
        "  counted once, on the low row (PSI, hence ADWIN, does not depend on the tier)."
    )
    print(f"  stationary stream, PSI thresholds low 0.25 ... critical 0.1: {'; '.join(margins)}")
    print(f"  total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
