"""Drift statistics from profiles, checked against scipy on the raw samples."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from tests.drift_data import (
    SPEC,
    T0,
    events,
    make_batch,
    missing_column,
    numeric_column,
    string_column,
)
from vigil.drift.counts import CategoricalCounts, NumericCounts
from vigil.drift.reference import (
    FINE_BINS,
    NUMERIC_BINS,
    build_reference,
    build_reference_from_batch,
)
from vigil.drift.stats import chi2, js, ks, ks_pvalue, psi, wasserstein
from vigil.drift.window import WindowProfile
from vigil.wire.columns import BOOLEAN, DOUBLE, LONG, STRING, Batch, Column, batch_from_rows
from vigil.wire.records import FeatureProfile, FeatureSpec, ReferenceProfile

Sampler = Callable[[np.random.Generator, int, float], np.ndarray]

FAMILIES: dict[str, Sampler] = {
    "normal": lambda rng, n, s: rng.normal(s, 1.0, n),
    "lognormal": lambda rng, n, s: rng.lognormal(s, 1.0, n),
    "student_t2": lambda rng, n, s: rng.standard_t(2, n) + s,
    "integers": lambda rng, n, s: rng.poisson(4 + 3 * s, n).astype(np.float64),
    "mixed": lambda rng, n, s: np.where(rng.random(n) < 0.3, 0.0, rng.normal(5 + s, 1.0, n)),
    "pareto": lambda rng, n, s: rng.pareto(1.5, n) + s,
}
X = [FeatureSpec(name="x", type="numeric")]


def _reference(x: np.ndarray, spec: list[FeatureSpec] = X) -> ReferenceProfile:
    return build_reference_from_batch(spec, make_batch({"x": numeric_column(x)}), "uploaded", T0)


def _window(reference: ReferenceProfile, x: np.ndarray) -> WindowProfile:
    window = WindowProfile(reference, X)
    window.add(make_batch({"x": numeric_column(x)}))
    return window


def _numeric(window: WindowProfile, name: str = "x") -> NumericCounts:
    counts = window.features[name]
    assert isinstance(counts, NumericCounts)
    return counts


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_ks_wasserstein_and_js_agree_with_scipy_on_the_raw_samples(
    family: str, shift: float
) -> None:
    seed = list(FAMILIES).index(family) * 10 + int(shift * 10)
    rng = np.random.default_rng(seed)
    sample = FAMILIES[family]
    ref_x = sample(rng, 20_000, 0.0)
    reference = _reference(ref_x)
    ref = reference.features[0]
    for n in (2_000, 5_000):
        win_x = sample(rng, n, shift)
        counts = _numeric(_window(reference, win_x))

        d, p = ks(ref.fine_counts, counts.fine_counts)
        exact = sps.ks_2samp(ref_x, win_x, method="asymp")
        assert abs(d - exact.statistic) <= 0.01
        # Only ever smaller: the supremum is taken on a subset of the points.
        assert d <= exact.statistic + 1e-12
        assert p == pytest.approx(ks_pvalue(d, ref_x.size, n))

        distance = wasserstein(
            counts.edges,
            ref.fine_counts,
            ref.fine_sums,
            counts.fine_counts,
            counts.fine_sums,
            counts.known_extremes,
        )
        assert ref.std is not None
        expected = sps.wasserstein_distance(ref_x, win_x) / np.std(ref_x)
        assert distance / ref.std == pytest.approx(expected, rel=0.02)

        assert js(ref.bin_counts, counts.bins) == pytest.approx(
            jensenshannon(ref.bin_counts, counts.bins), abs=1e-9
        )


@pytest.mark.parametrize("family", list(FAMILIES))
def test_windows_far_outside_the_reference_range(family: str) -> None:
    rng = np.random.default_rng(99)
    sample = FAMILIES[family]
    ref_x = sample(rng, 10_000, 0.0)
    reference = _reference(ref_x)
    ref = reference.features[0]
    assert ref.max is not None and ref.min is not None and ref.std is not None
    span = ref.max - ref.min
    # Half the window far above the reference, a tenth far below.
    win_x = sample(rng, 3_000, 0.0)
    win_x[:1500] += 3 * span
    win_x[1500:1800] -= 5 * span
    counts = _numeric(_window(reference, win_x))
    assert counts.out_of_range == int(np.count_nonzero((win_x < ref.min) | (win_x > ref.max)))
    d, _ = ks(ref.fine_counts, counts.fine_counts)
    assert d == pytest.approx(sps.ks_2samp(ref_x, win_x, method="asymp").statistic, abs=0.01)
    distance = wasserstein(
        counts.edges, ref.fine_counts, ref.fine_sums, counts.fine_counts, counts.fine_sums
    )
    expected = sps.wasserstein_distance(ref_x, win_x)
    assert distance == pytest.approx(expected, rel=0.02)


def test_integer_data_is_exact_on_every_statistic() -> None:
    """Few distinct values: every value is a fine edge, so KS and Wasserstein are exact."""
    rng = np.random.default_rng(5)
    ref_x = rng.integers(0, 30, 8_000).astype(np.float64)
    win_x = rng.integers(3, 33, 2_500).astype(np.float64)
    reference = _reference(ref_x)
    ref = reference.features[0]
    # Every value is a fine edge (a quantile between two values may add an empty gap).
    assert set(range(30)) <= set(ref.fine_edges)
    assert not any(ref.fine_counts[0::2])
    counts = _numeric(_window(reference, win_x))
    d, p = ks(ref.fine_counts, counts.fine_counts)
    exact = sps.ks_2samp(ref_x, win_x, method="asymp")
    assert d == pytest.approx(exact.statistic, abs=1e-12)
    assert p == pytest.approx(exact.pvalue, rel=1e-9)
    distance = wasserstein(
        counts.edges, ref.fine_counts, ref.fine_sums, counts.fine_counts, counts.fine_sums
    )
    assert distance == pytest.approx(sps.wasserstein_distance(ref_x, win_x), rel=1e-9)


def test_ks_pvalue_is_scipys_asymptotic_one() -> None:
    rng = np.random.default_rng(6)
    for n, m, shift in [(20_000, 1_000, 0.0), (20_000, 5_000, 0.1), (3_000, 700, 0.2)]:
        a, b = rng.normal(size=n), rng.normal(shift, 1.0, m)
        result = sps.ks_2samp(a, b, method="asymp")
        assert ks_pvalue(float(result.statistic), n, m) == pytest.approx(result.pvalue, rel=1e-12)
    # Larger samples: Kolmogorov's limit distribution, within a few percent of scipy.
    a, b = rng.normal(size=200_000), rng.normal(0.012, 1.0, 50_000)
    result = sps.ks_2samp(a, b, method="asymp")
    assert 1e-6 < result.pvalue < 0.1
    assert ks_pvalue(float(result.statistic), 200_000, 50_000) == pytest.approx(
        result.pvalue, rel=0.05
    )


def test_chi2_is_scipys_contingency_test_without_correction() -> None:
    cases = [
        ([500, 300, 200, 0], [40, 35, 25, 0]),  # an all-zero column is dropped
        ([900, 100], [80, 20]),  # 2 x 2: still no Yates correction
        ([10, 0, 5, 7], [0, 3, 4, 9]),
    ]
    for ref, win in cases:
        keep = (np.asarray(ref) + np.asarray(win)) > 0
        table = np.array([ref, win])[:, keep]
        expected = sps.chi2_contingency(table, correction=False)
        statistic, pvalue = chi2(ref, win)
        assert statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert pvalue == pytest.approx(expected.pvalue, rel=1e-9)
    assert chi2([5, 0], [7, 0]) == (0.0, 1.0)  # one column left: nothing to test
    assert chi2([5, 3], [0, 0]) == (0.0, 1.0)


def test_js_equals_scipy_on_categories() -> None:
    ref, win = [50, 30, 20, 0, 1], [10, 40, 0, 5, 1]
    assert js(ref, win) == pytest.approx(jensenshannon(ref, win), abs=1e-12)
    assert js(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_its_formula_with_floored_empty_bins() -> None:
    p, q = np.array([0.5, 0.5, 1e-4]), np.array([0.25, 0.5, 0.25])
    assert psi([50, 50, 0], [25, 50, 25]) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert psi([1, 2], [0, 0]) == 0.0


@pytest.mark.parametrize("family", list(FAMILIES))
def test_reference_bins(family: str) -> None:
    rng = np.random.default_rng(7)
    x = FAMILIES[family](rng, 12_345, 0.0)
    ref = _reference(x).features[0]
    edges = np.asarray(ref.bin_edges)
    fine = np.asarray(ref.fine_edges)
    assert len(edges) <= NUMERIC_BINS - 1 and len(fine) <= FINE_BINS
    assert np.all(np.diff(fine) > 0)
    assert set(edges) <= set(fine) and {x.min(), x.max()} <= set(fine)
    assert np.array_equal(edges, np.unique(np.quantile(x, np.arange(1, 10) / 10)))
    expected = np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)
    assert ref.bin_counts == expected.tolist()
    # Fine slots: 2i strictly between edges, 2i+1 equal to edge i; their sums.
    assert len(ref.fine_counts) == len(ref.fine_sums) == 2 * fine.size + 1
    assert sum(ref.fine_counts) == x.size
    assert ref.fine_counts[0] == ref.fine_counts[-1] == 0  # nothing outside [min, max]
    for i in (0, fine.size // 2, fine.size - 1):
        assert ref.fine_counts[2 * i + 1] == np.count_nonzero(x == fine[i])
        if i:
            inside = (x > fine[i - 1]) & (x < fine[i])
            assert ref.fine_counts[2 * i] == np.count_nonzero(inside)
            assert ref.fine_sums[2 * i] == pytest.approx(x[inside].sum())
    assert (ref.mean, ref.std, ref.min, ref.max) == pytest.approx(
        (x.mean(), x.std(), x.min(), x.max())
    )


def test_rows_and_batches_give_the_same_reference() -> None:
    rng = np.random.default_rng(8)
    spec = [
        FeatureSpec(name="a", type="numeric"),
        FeatureSpec(name="b", type="numeric"),
        FeatureSpec(name="c", type="categorical"),
        FeatureSpec(name="d", type="boolean"),
    ]
    rows: list[dict[str, object]] = [
        {"a": float(a), "b": int(b), "c": str(c), "d": bool(d)}
        for a, b, c, d in zip(
            rng.normal(size=3000),
            rng.integers(0, 50, 3000),
            rng.choice(list("pqrs"), 3000),
            rng.random(3000) < 0.3,
            strict=True,
        )
    ]
    rows[5] = {"a": None, "b": "oops", "c": 7}
    predictions = [bool(r.get("d")) for r in rows]
    scores = [0.5 if i % 7 else None for i in range(3000)]
    by_rows = build_reference(
        spec, rows, "uploaded", T0, predictions=predictions, scores=scores, version=3
    )
    batch = batch_from_rows("m", "1", rows, ["a", "b", "c", "d"], None, predictions, scores)
    by_batch = build_reference_from_batch(spec, batch, "uploaded", T0, version=3)
    assert by_rows == by_batch
    assert by_rows.version == 3
    a, b, c, d = by_rows.features
    assert (a.count, a.missing, a.type_violations) == (3000, 1, 0)
    assert (b.missing, b.type_violations) == (0, 1)
    assert "7" in c.all_categories  # a long in a categorical feature counts as its text
    assert d.categories == ["false", "true"] and d.missing == 1
    assert by_rows.prediction is not None and by_rows.prediction.type == "categorical"
    assert by_rows.score is not None and by_rows.score.missing == len(range(0, 3000, 7))
    assert by_rows.multivariate is not None and by_rows.multivariate.features == ["a", "b"]


def test_categorical_reference_keeps_the_top_categories_ties_by_name() -> None:
    values = ["b"] * 5 + ["a"] * 5 + ["c"] * 3 + [f"z{i:02d}" for i in range(30)]
    spec = [FeatureSpec(name="c", type="categorical")]
    ref = build_reference(spec, [{"c": v} for v in values], "uploaded", T0).features[0]
    assert ref.categories[:3] == ["a", "b", "c"]
    assert len(ref.categories) == 20
    assert ref.category_counts == [5, 5, 3] + [1] * 17 + [13]
    assert len(ref.all_categories) == 33


def _random_batch(rng: np.random.Generator, n: int) -> Batch:
    """Events with every kind of problem: missing, NaN, wrong types, unseen categories."""
    batch = events(rng, n)
    features = dict(batch.features)
    x = features["num_0"].numbers.copy()
    kinds = features["num_0"].kinds.copy()
    x[::17] = np.nan  # NaN doubles: missing
    kinds[::17] = DOUBLE
    kinds[1::23] = BOOLEAN  # booleans in a numeric feature: type violations
    x[1::23] = 1.0
    codes = np.full(n, -1, dtype=np.int32)
    kinds[2::29] = STRING
    x[2::29] = np.nan
    codes[2::29] = 0
    features["num_0"] = Column(kinds, x, codes, ["text"])
    features["cat_1"] = string_column(rng.integers(0, 7, n), [f"v{i}" for i in range(7)])
    del features["num_3"]  # absent: missing
    return Batch(
        batch.model_id,
        batch.model_version,
        batch.rows,
        batch.timestamps,
        features,
        batch.prediction,
        batch.score,
    )


def test_merging_partial_windows_equals_one_window_of_all_events() -> None:
    rng = np.random.default_rng(9)
    reference = build_reference_from_batch(SPEC, events(rng, 10_000), "uploaded", T0)
    batches = [_random_batch(rng, n) for n in (1_000, 2_345, 777, 3_000)]
    whole = WindowProfile(reference, SPEC)
    for batch in batches:
        whole.add(batch)
    first, second = WindowProfile(reference, SPEC), WindowProfile(reference, SPEC)
    for i, batch in enumerate(batches):
        (first if i % 2 else second).add(batch)
    first.merge(second)
    assert first.event_count == whole.event_count == 7_122
    a, b = first._state, whole._state
    assert np.array_equal(a.ints, b.ints)
    assert np.allclose(a.floats, b.floats, rtol=1e-12, atol=1e-9)
    assert np.array_equal(a.mins, b.mins) and np.array_equal(a.maxs, b.maxs)
    for name in ("num_0", "num_3", "cat_1", "prediction", "score"):
        merged, single = first.feature_profile(name), whole.feature_profile(name)
        assert merged.model_dump(exclude={"fine_sums", "mean", "std"}) == single.model_dump(
            exclude={"fine_sums", "mean", "std"}
        )
        assert merged.fine_sums == pytest.approx(single.fine_sums)
    assert first.multivariate is not None and whole.multivariate is not None
    assert first.multivariate.mean == pytest.approx(whole.multivariate.mean)


def test_serialised_windows_round_trip_and_refuse_other_references() -> None:
    rng = np.random.default_rng(10)
    reference = build_reference_from_batch(SPEC, events(rng, 5_000), "uploaded", T0)
    window = WindowProfile(reference, SPEC)
    window.add(_random_batch(rng, 4_000))
    data = window.to_bytes()
    again = WindowProfile.from_bytes(data, reference, SPEC)
    assert again.event_count == 4_000
    for x, y in zip(
        (window._state.ints, window._state.floats, window._state.mins, window._state.maxs),
        (again._state.ints, again._state.floats, again._state.mins, again._state.maxs),
        strict=True,
    ):
        assert np.array_equal(x, y)
    assert again.to_bytes() == data
    assert len(data) < 100_000
    other = build_reference_from_batch(SPEC, events(rng, 5_000), "uploaded", T0)
    with pytest.raises(ValueError):
        WindowProfile.from_bytes(data, other, SPEC)
    with pytest.raises(ValueError):
        WindowProfile.from_bytes(data[:-10], reference, SPEC)
    with pytest.raises(ValueError):
        WindowProfile.from_bytes(b"nonsense" * 10, reference, SPEC)
    with pytest.raises(ValueError):
        window.merge(WindowProfile(other, SPEC))


def test_data_quality_counts() -> None:
    spec = [
        FeatureSpec(name="x", type="numeric", min=-10.0, max=10.0),
        FeatureSpec(name="y", type="numeric"),
        FeatureSpec(name="city", type="categorical"),
        FeatureSpec(name="flag", type="boolean"),
    ]
    rng = np.random.default_rng(11)
    rows = [
        {"x": float(x), "y": float(y), "city": str(c), "flag": bool(f)}
        for x, y, c, f in zip(
            rng.normal(size=2000),
            rng.normal(size=2000),
            rng.choice(["paris", "lyon", "nice"], 2000),
            rng.random(2000) < 0.5,
            strict=True,
        )
    ]
    reference = build_reference(spec, rows, "uploaded", T0)
    window = WindowProfile(reference, spec)
    window.add_rows(
        [
            {"x": 50.0, "y": 50.0, "city": "tokyo", "flag": None},  # x out of both ranges
            {"x": 5.0, "y": 5.0, "city": 75001, "flag": "yes"},  # x within the spec's range
            {"x": None, "y": float("nan"), "city": True, "flag": 1},
            {"x": "text", "y": True, "city": 2.5, "flag": False},
            {"x": float("inf"), "city": "paris", "flag": True},
        ]
    )
    x, y, city, flag = window.features.values()
    assert isinstance(x, NumericCounts) and isinstance(city, CategoricalCounts)
    assert (x.count, x.missing, x.type_violations, x.out_of_range) == (5, 1, 2, 1)
    assert (y.count, y.missing, y.type_violations, y.out_of_range) == (5, 2, 1, 2)
    # 75001 and True are values of a categorical feature ("75001", "true"); 2.5 is not.
    assert (city.count, city.missing, city.type_violations, city.unseen) == (5, 0, 1, 3)
    assert (flag.count, flag.missing, flag.type_violations, flag.unseen) == (5, 1, 2, 0)
    assert city.bins[-1] == 3 and city.bins[city.index["paris"]] == 1
    assert window.event_count == 5
    assert x.min == 5.0 and x.max == 50.0


def test_reference_without_fine_slots_still_counts_coarse_bins() -> None:
    legacy = ReferenceProfile(
        source="uploaded",
        row_count=100,
        created_at=T0,
        features=[
            FeatureProfile(
                name="x",
                type="numeric",
                count=100,
                missing=0,
                bin_edges=[0.0, 1.0],
                bin_counts=[30, 40, 30],
                min=-1.0,
                max=2.0,
            )
        ],
    )
    window = WindowProfile(legacy, X)
    window.add(make_batch({"x": numeric_column([-0.5, 0.0, 0.5, 1.0, 1.5, 3.0])}))
    counts = _numeric(window)
    assert not counts.has_fine
    assert counts.bins.tolist() == [1, 2, 3]
    assert counts.out_of_range == 1


def test_missing_feature_and_empty_window() -> None:
    rng = np.random.default_rng(12)
    reference = _reference(rng.normal(size=1000))
    window = WindowProfile(reference, X)
    window.add(make_batch({"other": missing_column(10)}))
    counts = _numeric(window)
    assert (counts.count, counts.missing, counts.valid) == (10, 10, 0)
    assert counts.mean is None and counts.min is None
    ref = reference.features[0]
    assert ks(ref.fine_counts, counts.fine_counts) == (0.0, 1.0)
    assert (
        wasserstein(
            counts.edges, ref.fine_counts, ref.fine_sums, counts.fine_counts, counts.fine_sums
        )
        == 0.0
    )


def test_numeric_window_moments() -> None:
    rng = np.random.default_rng(13)
    reference = _reference(rng.normal(1e6, 1.0, 5000))
    x = rng.normal(1e6 + 0.5, 2.0, 3000)
    window = _window(reference, x)
    counts = _numeric(window)
    assert counts.mean == pytest.approx(x.mean(), abs=1e-9)
    assert counts.std == pytest.approx(x.std(), rel=1e-9)
    profile = window.feature_profile("x")
    assert profile.bin_counts == counts.bins.tolist() and profile.count == 3000


def test_long_values_in_categorical_and_label_columns() -> None:
    spec = [FeatureSpec(name="zip", type="categorical")]
    rows = [{"zip": z} for z in [75001] * 50 + [69001] * 30 + ["75001"] * 20]
    ref = build_reference(spec, rows, "uploaded", T0, predictions=[1.0, 2, "2"] * 33 + [3.5])
    assert ref.features[0].categories == ["75001", "69001"]
    assert ref.features[0].category_counts == [70, 30, 0]
    assert ref.prediction is not None
    assert ref.prediction.categories == ["2", "1", "3.5"]
    assert ref.prediction.category_counts == [66, 33, 1, 0]
    column = Column(
        np.array([LONG, STRING], dtype=np.int8),
        np.array([75001.0, np.nan]),
        np.array([-1, 0], dtype=np.int32),
        ["69001"],
    )
    window = WindowProfile(ref, spec)
    window.add(make_batch({"zip": column}))
    assert window.features["zip"].bins.tolist() == [1, 1, 0]
