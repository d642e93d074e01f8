"""The allowed shapes of ids, names, free text, numbers and timestamps, as pydantic types.

Defined once here and used by the records and by every service's input models; the README's
"Allowed input" table says the same. The plain functions (``is_identifier``, ``is_name``,
``is_text``, ``in_int64``) are the same rules for code that checks plain dicts on a hot path.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

__all__ = [
    "EARLIEST",
    "IDENTIFIER_PATTERN",
    "INT64_MAX",
    "INT64_MIN",
    "LATEST",
    "MAX_CLOCK_SKEW_SECONDS",
    "NAME_MAX",
    "TAG_VALUE_MAX",
    "TEXT_MAX",
    "FiniteFloat",
    "FiniteMap",
    "Identifier",
    "InputLabel",
    "InputValue",
    "Long",
    "Name",
    "TagValue",
    "Text",
    "Timestamp",
    "ahead_of",
    "in_int64",
    "is_identifier",
    "is_name",
    "is_text",
    "to_timestamp",
]

# Ids travel in Kafka keys, Redis keys, file paths and URLs: a safe, short alphabet, and never
# "." or ".." (the first character is a letter or digit).
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN[1:-1])
NAME_MAX = 128
TEXT_MAX = 10_000
TAG_VALUE_MAX = 1_024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Event times Avro's timestamp-micros and every consumer's clock arithmetic hold comfortably.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# How far ahead of the server's clock an event time may be (VIGIL_MAX_CLOCK_SKEW_SECONDS).
MAX_CLOCK_SKEW_SECONDS = 300.0


def is_identifier(value: str) -> bool:
    """1-128 characters of ``A-Z a-z 0-9 . _ : -``, starting with a letter or digit."""
    return _IDENTIFIER.fullmatch(value) is not None


def is_name(value: str) -> bool:
    """1-128 printable characters: no control, format or line-separator characters."""
    return 0 < len(value) <= NAME_MAX and value.isprintable()


def is_text(value: str, limit: int = TEXT_MAX) -> bool:
    """At most ``limit`` characters and no NUL."""
    return len(value) <= limit and "\x00" not in value


def in_int64(value: int) -> bool:
    """Whether an integer fits Avro's long."""
    return INT64_MIN <= value <= INT64_MAX


def _name(value: str) -> str:
    if not is_name(value):
        raise ValueError(f"1 to {NAME_MAX} printable characters (no control characters)")
    return value


def _text(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if not is_text(value, limit):
            raise ValueError(f"text of at most {limit} characters without NUL")
        return value

    return AfterValidator(check)


def to_timestamp(value: datetime) -> datetime:
    """The time, read as UTC when it has no timezone; ValueError outside the allowed range.

    Aware times keep their offset: every consumer turns them into UTC microseconds, which
    the range guarantees they have (0001-01-01T00:00+14:00, for one, has none).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError(
            "a time from 1970-01-01T00:00:00Z to before 2100-01-01T00:00:00Z"
            " (without a timezone, UTC)"
        )
    return value


def ahead_of(value: datetime, now: datetime, max_skew_seconds: float) -> bool:
    """Whether an event time is further ahead of the server's clock than the tolerance."""
    return value > now + timedelta(seconds=max_skew_seconds)


def _finite_map(value: dict[str, float]) -> dict[str, float]:
    for key, number in value.items():
        if not is_name(key):
            raise ValueError(f"keys of 1 to {NAME_MAX} printable characters; {key!r} is not")
        if not math.isfinite(number):
            raise ValueError(f"finite numbers; {key!r} is {number}")
    return value


Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
# The lengths are also StringConstraints so that the OpenAPI documents them.
Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX), AfterValidator(_name)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX), _text(TEXT_MAX)]
TagValue = Annotated[str, StringConstraints(max_length=TAG_VALUE_MAX), _text(TAG_VALUE_MAX)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Long = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
# Nested Annotated types would hide the Avro type from the contract test: a map checks itself.
FiniteMap = Annotated[dict[str, float], AfterValidator(_finite_map)]
Timestamp = Annotated[datetime, AfterValidator(to_timestamp)]
# What a sender may give as a feature value or a label: an integer beyond Avro's long is read
# as a double (as JSON parsers in most languages do), never wrapped around.
InputValue = bool | Long | FiniteFloat | str | None
InputLabel = bool | Long | FiniteFloat | str
