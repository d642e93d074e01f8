"""What every wire record shares: the base class and the clock's resolution."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

__all__ = ["Record", "as_utc", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware, truncated to Avro's microsecond resolution."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` with its zone; a time without one is UTC (as Avro's timestamps are)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class Record(BaseModel):
    """Base of every wire record: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")
