"""Experts' flags counted per model version and interval, as ``FlagReport`` records: which
version a flag is about, and the report of a closed interval. No I/O (the counts live in Redis:
``feedback.flag_reports``).

>>> interval_of("credit-risk/3/29617920")
('credit-risk', '3', 29617920)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.wire.flag_reports import FlaggedItem, FlagReport
from vigil.wire.records import ModelVersion

__all__ = ["Counted", "champion", "flag_report", "interval_of", "to_count"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Counted:
    """One flag as the tally counts it: on a model version, at its feedback time (seconds)."""

    feedback_id: str
    model_id: str
    model_version: str
    kind: str
    prediction_id: str
    reviewer: str
    comment: str | None
    timestamp: float

    def args(self) -> list[str]:
        """The flag as the counting script's arguments."""
        note = FlaggedItem(
            prediction_id=self.prediction_id, reviewer=self.reviewer, comment=self.comment
        ).model_dump_json()
        return [
            self.feedback_id,
            f"{self.model_id}/{self.model_version}",
            self.kind,
            self.prediction_id,
            repr(self.timestamp),
            note,
        ]


def champion(versions: Sequence[ModelVersion]) -> str | None:
    """The version a flag naming only its model is about: the newest champion, else the newest
    version not retired, else the newest; None for a model the catalog does not know."""
    for wanted in ({"champion"}, {"champion", "challenger", "shadow"}):
        found = [v for v in versions if v.status in wanted]
        if found:
            return found[-1].version
    return versions[-1].version if versions else None


def to_count(flag: Mapping[str, Any], model_id: str, version: str) -> Counted:
    """A flag as the review queue keeps it (``feedback.review_worker``), on ``version``."""
    return Counted(
        feedback_id=flag["feedback_id"],
        model_id=model_id,
        model_version=version,
        kind=flag["flag"],
        prediction_id=flag["prediction_id"],
        reviewer=flag["reviewer"],
        comment=flag.get("comment"),
        timestamp=flag["timestamp"] / 1e6,
    )


def interval_of(member: str) -> tuple[str, str, int]:
    """(model, version, interval number) of a tally's ``model/version/number``."""
    model_id, version, number = member.rsplit("/", 2)
    return model_id, version, int(number)


def flag_report(
    member: str,
    interval_seconds: int,
    counts: Mapping[str, int],
    judged_items: int,
    harmful: Sequence[str],
    now: datetime,
) -> FlagReport:
    """The report of a closed interval from its tally (``harmful``: the items' JSON)."""
    model_id, version, number = interval_of(member)
    start_us = number * interval_seconds * 1_000_000
    start = EPOCH + timedelta(microseconds=start_us)
    return FlagReport(
        report_id=FlagReport.id_of(model_id, version, start_us),
        model_id=model_id,
        model_version=version,
        window_start=start,
        window_end=start + timedelta(seconds=interval_seconds),
        event_count=sum(counts.values()),
        judged_items=judged_items,
        counts=dict(counts),
        harmful=[FlaggedItem.model_validate_json(h) for h in harmful],
        created_at=now,
    )
