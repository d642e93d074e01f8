"""Which segments a model version may declare (the registry's check; see
``vigil.wire.segments``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from vigil.wire.segments import SegmentSpec
from vigil.wire.validation import FieldError, describe

__all__ = ["segment_errors"]


def segment_errors(
    segments: Sequence[SegmentSpec],
    cross: Sequence[str],
    sensitive_attributes: Sequence[str],
    features: Mapping[str, str],
) -> list[FieldError]:
    """Why segments cannot be a model's: a name neither a feature nor a tag, bins that are not
    increasing or on a feature that is not numeric, a name twice, a cross that is not two
    declared segments. ``features`` maps the model's feature names to their types."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, s in enumerate(segments):
        if not s.tag and s.name not in features:
            expected = "a feature of the model (or tag: true for a tag of its events)"
            errors.append(FieldError(f"segments[{i}].name", expected, describe(s.name)))
        if s.bins is not None:
            if (
                not s.bins
                or any(not math.isfinite(b) for b in s.bins)
                or any(b >= c for b, c in zip(s.bins, s.bins[1:], strict=False))
            ):
                errors.append(
                    FieldError(
                        f"segments[{i}].bins",
                        "finite, strictly increasing numbers",
                        describe(s.bins),
                    )
                )
            elif not s.tag and features.get(s.name) not in (None, "numeric"):
                expected = "no bins: the feature is not numeric"
                errors.append(FieldError(f"segments[{i}].bins", expected, describe(s.bins)))
        if s.name in seen:
            errors.append(FieldError(f"segments[{i}].name", "a name not used twice", s.name))
        seen.add(s.name)
    for i, name in enumerate(sensitive_attributes):
        if name not in features and name not in seen:
            expected = "a feature of the model, or a segment declared with tag: true"
            errors.append(FieldError(f"sensitive_attributes[{i}]", expected, describe(name)))
    if cross and (len(cross) != 2 or len(set(cross)) != 2 or not set(cross) <= seen):
        expected = "two different names of declared segments"
        errors.append(FieldError("segment_cross", expected, describe(list(cross))))
    return errors
