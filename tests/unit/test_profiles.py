"""Profiles and PSI: the numbers drift verdicts rest on."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from vigil.drift.reference import build_reference
from vigil.drift.stats import psi
from vigil.drift.window import WindowProfile
from vigil.wire.codec import Codec
from vigil.wire.drift_state import WindowProfileState
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


def _window(seed: int) -> tuple[WindowProfile, bytes]:
    rng = np.random.default_rng(seed)
    ref = build_reference(SPEC, _rows(rng, 3000), "uploaded", utcnow())
    window = WindowProfile(ref, SPEC)
    window.add_rows(_rows(rng, 500, shift=0.5))
    return window, window.to_bytes()


def test_window_profile_bytes_are_a_window_profile_state_record() -> None:
    window, data = _window(4)
    codec = Codec(WindowProfileState)
    assert data[:10] == b"\xc3\x01" + codec.schema.fingerprint
    state = codec.decode(data)
    assert (state.format, state.fingerprint, state.event_count) == (1, window.fingerprint, 500)
    assert state.ints_size == window._state.ints.size
    assert np.array_equal(np.frombuffer(zlib.decompress(state.ints), "<i8"), window._state.ints)
    # Uncompressed arrays are read too.
    plain = state.model_copy(
        update={
            "compression": "none",
            **{k: getattr(window._state, k).tobytes() for k in ("ints", "floats", "mins", "maxs")},
        }
    )
    again = WindowProfile.from_bytes(codec.encode(plain), window.reference, SPEC)
    assert again.profile() == window.profile()


def test_malformed_window_profile_bytes_raise_value_errors_only() -> None:
    window, data = _window(5)
    codec = Codec(WindowProfileState)
    state = codec.decode(data)
    rng = np.random.default_rng(6)
    bad = [b"", b"\xc3\x01", b"{}", b'{"format": 1}', b"\x00\x00\x00\x00\x01xyz", b"[1, 2]"]
    bad += [data[:n] for n in range(0, len(data), 97)]
    for _ in range(200):
        flipped = bytearray(data)
        flipped[int(rng.integers(10, len(data)))] ^= 1 << int(rng.integers(8))
        bad.append(bytes(flipped))
    for update in (
        {"format": 2},
        {"compression": "lz4"},
        {"ints_size": state.ints_size + 1},
        {"fingerprint": state.fingerprint ^ 1},
        {"floats": zlib.compress(b"\x00" * 12)},
        {"mins": b"not zlib"},
    ):
        bad.append(codec.encode(state.model_copy(update=update)))
    for data in bad:
        try:
            restored = WindowProfile.from_bytes(data, window.reference, SPEC)
        except ValueError:
            continue
        # A flip inside a compressed array may still decode: then it is a profile of the bins.
        assert restored.fingerprint == window.fingerprint
