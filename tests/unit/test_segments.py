"""Segments: which group an event falls in, and which declarations the registry refuses."""

from __future__ import annotations

import math

from registry.segments import segment_errors
from vigil.wire.segments import MISSING_GROUP, SegmentSpec, bin_labels, effective_segments, group_of

AGE = SegmentSpec(name="age", bins=[25, 40, 60], sensitive=True)
FEATURES = {"age": "numeric", "gender": "categorical", "vip": "boolean"}


def test_numeric_values_fall_in_their_bins() -> None:
    assert bin_labels([25, 40, 60]) == ["<25", "25..40", "40..60", ">=60"]
    assert [group_of(AGE, v) for v in (18, 25, 39.9, 40, 61, None, math.nan, "old", True)] == [
        "<25",
        "25..40",
        "25..40",
        "40..60",
        ">=60",
        *[MISSING_GROUP] * 4,
    ]


def test_categories_are_groups_as_they_are() -> None:
    gender = SegmentSpec(name="gender")
    assert [group_of(gender, v) for v in ("f", 2, 2.0, True, None)] == [
        "f",
        "2",
        "2",
        "true",
        MISSING_GROUP,
    ]


def test_sensitive_attributes_are_sensitive_segments() -> None:
    found = effective_segments([AGE], ["age", "gender"])
    assert [(s.name, s.sensitive, s.bins) for s in found] == [
        ("age", True, [25, 40, 60]),
        ("gender", True, None),
    ]


def test_bad_declarations_name_the_field() -> None:
    errors = segment_errors(
        [
            SegmentSpec(name="age", bins=[40, 25]),
            SegmentSpec(name="gender", bins=[1.0]),
            SegmentSpec(name="height"),
            SegmentSpec(name="channel", tag=True),
        ],
        ["age", "zip"],
        ["ethnicity", "channel"],
        FEATURES,
    )
    assert [e.field for e in errors] == [
        "segments[0].bins",
        "segments[1].bins",
        "segments[2].name",
        "sensitive_attributes[0]",
        "segment_cross",
    ]
    assert segment_errors([AGE, SegmentSpec(name="gender")], ["age", "gender"], [], FEATURES) == []
