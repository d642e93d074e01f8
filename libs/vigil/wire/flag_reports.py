"""What experts said about one model version over an interval of wall-clock time: the
``FlagReport`` (pydantic mirror of ``schemas/vigil.FlagReport.avsc``) the feedback service
publishes on ``vigil.metrics.v1``, and the values alert rules read from it. No I/O.

>>> report = FlagReport(
...     report_id="m/1/flags/0", model_id="m", model_version="1", window_start=T0,
...     window_end=T0, event_count=4, judged_items=3, counts={"incorrect": 1, "ok": 3},
...     created_at=T0)
>>> [(kind, rate) for kind, rate, _ in flag_rates(report)]
[('incorrect', 0.25), ('unexpected', 0.0), ('harmful', 0.0), ('ok', 0.75)]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from pydantic import Field

from vigil.wire.base import Record
from vigil.wire.validation import FieldError, describe

__all__ = ["FLAG_KINDS", "FlagReport", "FlaggedItem", "flag_rates", "harmful_flags", "kind_errors"]

FLAG_KINDS: tuple[str, ...] = ("incorrect", "unexpected", "harmful", "ok")
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # for the doctest
_NOTES = 5  # harmful items an alert quotes


class FlaggedItem(Record):
    """A prediction flagged harmful, and what the expert said."""

    prediction_id: str
    reviewer: str
    comment: str | None = None


class FlagReport(Record):
    """Flags experts gave predictions of one model version over an interval of wall-clock time
    (when the feedback service counted them): ``counts`` by kind, ``event_count`` all of them,
    ``judged_items`` the distinct predictions flagged; ``harmful`` the first harmful ones."""

    report_id: str
    model_id: str
    model_version: str
    window_start: datetime
    window_end: datetime
    event_count: int
    judged_items: int
    counts: dict[str, int] = Field(default_factory=dict)
    harmful: list[FlaggedItem] = Field(default_factory=list)
    created_at: datetime

    @property
    def key(self) -> str:
        """Key on the metrics topic: beside the version's other reports, in order."""
        return f"{self.model_id}/{self.model_version}"

    @staticmethod
    def id_of(model_id: str, model_version: str, start_us: int) -> str:
        """``<model>/<version>/flags/<interval start, µs>``: the same for the same interval."""
        return f"{model_id}/{model_version}/flags/{start_us}"


# (subject, value, notes): ``vigil.wire.rules.Reading``
Reading = tuple[str | None, float, dict[str, str]]


def flag_rates(report: FlagReport) -> Iterator[Reading]:
    """Each kind's share of the interval's flags; a report of no flags says nothing."""
    if report.event_count <= 0:
        return
    notes = {"flags": str(report.event_count), "judged_items": str(report.judged_items)}
    for kind in FLAG_KINDS:
        count = report.counts.get(kind, 0)
        yield kind, count / report.event_count, {**notes, "count": str(count)}


def harmful_flags(report: FlagReport) -> Iterator[Reading]:
    """How many flags said harmful, quoting the first few items and comments."""
    items = report.harmful[:_NOTES]
    notes = {
        "prediction_ids": ", ".join(i.prediction_id for i in items),
        "comments": " | ".join(f"{i.reviewer}: {i.comment or '-'}" for i in items),
    }
    yield None, float(report.counts.get("harmful", 0)), notes


def kind_errors(where: str, features: Sequence[str]) -> list[FieldError]:
    """A rule's ``features`` that are no flag kind."""
    expected = "a flag kind: " + ", ".join(FLAG_KINDS)
    return [FieldError(where, expected, describe(k)) for k in features if k not in FLAG_KINDS]
