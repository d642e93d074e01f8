"""Labels as the performance accumulators read them: class names for classifiers (text, like the
drift profiles' categories), numbers for regression."""

from __future__ import annotations

import contextlib
import math

from vigil.wire.records import Label

__all__ = ["DEFAULT_POSITIVE", "is_positive", "label_number", "label_text", "typed_label"]

# The labels that mean "positive" when a binary model names no positive label (any case).
DEFAULT_POSITIVE = frozenset({"true", "1"})


def label_text(value: Label) -> str:
    """A label as a class name: booleans "true"/"false", integral numbers as longs ("1").

    >>> [label_text(v) for v in (True, 1, 1.0, 0.5, "yes")]
    ['true', '1', '1', '0.5', 'yes']
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def is_positive(value: Label, positive_label: str | None) -> bool:
    """Whether a binary label is the positive class: ``positive_label`` (None, "true" or "1":
    true, 1 or "1"); any other label is negative.

    >>> is_positive(True, None), is_positive("1", "true"), is_positive("ok", "default")
    (True, True, False)
    """
    text = label_text(value)
    if positive_label is None or positive_label.lower() in DEFAULT_POSITIVE:
        return text.lower() in DEFAULT_POSITIVE
    return text == positive_label


def label_number(value: Label, what: str) -> float:
    """A regression label or prediction as a finite number; ValueError, naming ``what``, if it
    is none (booleans are not numbers; numeric text is).

    >>> label_number("2.5", "actual")
    2.5
    """
    number = math.nan
    if not isinstance(value, bool):
        with contextlib.suppress(ValueError, OverflowError):
            number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what}: a finite number was expected, received {value!r}")
    return number


def typed_label(text: str) -> Label | None:
    """A true outcome as a person types it (a form, the command line): true/false in any case,
    an integer, a number, else a class label; None when empty.

    >>> [typed_label(t) for t in ("true", " FALSE ", "3", "0.5", "cat", "  ")]
    [True, False, 3, 0.5, 'cat', None]
    """
    text = text.strip()
    if not text:
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text
