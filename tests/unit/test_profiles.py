"""Profiles and PSI: the numbers drift verdicts rest on."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.drift.profiles import WindowProfile, build_reference
from vigil.drift.stats import psi
from vigil.wire.records import FeatureSpec, utcnow

SPEC = [
    FeatureSpec(name="x", type="numeric", max=10.0),
    FeatureSpec(name="city", type="categorical"),
    FeatureSpec(name="flag", type="boolean"),
]


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, object]]:
    cities = rng.choice(["paris", "lyon", "nice"], size=n, p=[0.5, 0.3, 0.2])
    xs = rng.normal(shift, 1.0, size=n)
    return [
        {"x": float(x), "city": str(c), "flag": bool(x > 0)}
        for x, c in zip(xs, cities, strict=True)
    ]


def test_numeric_reference_has_decile_bins_of_equal_mass() -> None:
    rows = _rows(np.random.default_rng(1), 10_000)
    ref = build_reference(SPEC, rows, "uploaded", utcnow())
    x = ref.features[0]
    assert len(x.bin_edges) == 9
    assert x.bin_counts == pytest.approx([1000] * 10, abs=2)
    assert x.mean == pytest.approx(0.0, abs=0.05)


def test_categorical_reference_counts_top_categories_plus_other() -> None:
    ref = build_reference(
        SPEC, [{"city": "a"}, {"city": "a"}, {"city": None}], "uploaded", utcnow()
    )
    city = ref.features[1]
    assert (city.categories, city.category_counts, city.missing) == (["a"], [2, 0], 1)
    assert ref.features[2].categories == ["false", "true"]


def test_window_counts_quality_problems() -> None:
    ref = build_reference(SPEC, _rows(np.random.default_rng(2), 2000), "uploaded", utcnow())
    window = WindowProfile(ref, SPEC)
    window.add_rows([{"x": 50.0, "city": "tokyo", "flag": None}, {"x": None, "city": "paris"}])
    x, city, flag = window.features.values()
    assert (x.count, x.missing, x.out_of_range) == (2, 1, 1)
    assert city.unseen == 1
    assert flag.missing == 2
    assert window.event_count == 2


def test_psi_is_small_on_the_same_distribution_and_large_on_a_shift() -> None:
    rng = np.random.default_rng(3)
    ref = build_reference(SPEC, _rows(rng, 5000), "uploaded", utcnow())
    same, shifted = WindowProfile(ref, SPEC), WindowProfile(ref, SPEC)
    same.add_rows(_rows(rng, 2000))
    shifted.add_rows(_rows(rng, 2000, shift=1.0))
    ref_x = ref.features[0].bin_counts
    assert psi(ref_x, same.features["x"].bins) < 0.02
    assert psi(ref_x, shifted.features["x"].bins) > 0.5
    ref_city = ref.features[1].category_counts
    assert psi(ref_city, shifted.features["city"].bins) < 0.02


def test_psi_matches_its_formula_with_floored_empty_bins() -> None:
    p, q = np.array([0.5, 0.5, 1e-4]), np.array([0.25, 0.5, 0.25])
    expected = float(np.sum((q - p) * np.log(q / p)))
    assert psi([50, 50, 0], [25, 50, 25]) == pytest.approx(expected)
    assert psi([1, 2], [0, 0]) == 0.0
