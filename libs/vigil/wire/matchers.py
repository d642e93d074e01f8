"""Label matchers with Alertmanager's semantics, shared by silences and subscriptions. No I/O.

``=`` and ``!=`` compare a label's value; ``=~`` and ``!~`` test it against a regular expression
anchored at both ends. A label an alert does not have has the value ``""``, so
``severity=""`` matches alerts without one. Patterns are compiled once and length-capped, so a
matcher sent to the API cannot make matching expensive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from vigil.wire.alert_events import LabelMatcher
from vigil.wire.records import Alert

__all__ = [
    "MAX_MATCHERS",
    "MAX_VALUE_LENGTH",
    "MatchOp",
    "Matcher",
    "alert_labels",
    "matches",
    "matches_all",
]

MatchOp = Literal["=", "!=", "=~", "!~"]
MAX_VALUE_LENGTH = 256  # of a value or a pattern
MAX_MATCHERS = 32  # in one silence or subscription
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _label_name(value: str) -> str:
    if not _LABEL_NAME.fullmatch(value):
        raise ValueError(
            "a label name (1 to 128 characters of A-Z a-z 0-9 _, not starting with a digit)"
        )
    return value


class Matcher(LabelMatcher):
    """A validated matcher: a label name, an operator, and a value or an anchored pattern."""

    name: Annotated[str, AfterValidator(_label_name)]
    value: str = Field(max_length=MAX_VALUE_LENGTH)
    op: MatchOp = "="

    @model_validator(mode="after")
    def _pattern_compiles(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                _compiled(self.value)
            except re.error as exc:
                raise ValueError(f"value is not a valid regular expression: {exc}") from exc
        return self


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matches(matcher: LabelMatcher, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy one matcher (a missing label counts as ``""``)."""
    value = labels.get(matcher.name, "")
    if matcher.op == "=":
        return value == matcher.value
    if matcher.op == "!=":
        return value != matcher.value
    found = _compiled(matcher.value).fullmatch(value) is not None
    if matcher.op == "=~":
        return found
    if matcher.op == "!~":
        return not found
    raise ValueError(f"unknown matcher operator {matcher.op!r}")


def matches_all(matchers: Sequence[LabelMatcher], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy every matcher (an empty list matches nothing)."""
    return bool(matchers) and all(matches(m, labels) for m in matchers)


def alert_labels(alert: Alert) -> dict[str, str]:
    """What matchers test on an alert: its labels, and what it is about, which they cannot
    override (``model_id``, ``model_version``, ``rule``, ``feature``, ``severity``,
    ``fingerprint``)."""
    about = {
        "model_id": alert.model_id,
        "model_version": alert.model_version,
        "rule": alert.rule,
        "feature": alert.feature or "",
        "severity": alert.severity,
        "fingerprint": alert.fingerprint,
    }
    return {**alert.labels, **about}
