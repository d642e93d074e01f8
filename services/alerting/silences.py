"""Silences: label matchers and a time span during which matching alert changes are recorded
but not sent. Pure logic; the API and the worker store and publish them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.wire.alert_events import LabelMatcher, Silence
from vigil.wire.base import as_utc
from vigil.wire.matchers import MAX_MATCHERS, Matcher, alert_labels, matches, matches_all
from vigil.wire.records import Alert

__all__ = [
    "MAX_COMMENT",
    "SilenceIn",
    "SilenceState",
    "SilenceView",
    "expire",
    "is_active",
    "new_silence",
    "scoped_models",
    "silencing",
    "state_of",
]

MAX_COMMENT = 1024
SilenceState = Literal["pending", "active", "expired"]


class SilenceIn(BaseModel):
    """What ``POST /v1/silences`` accepts: matchers, a span (from now when no start), why."""

    model_config = ConfigDict(extra="forbid")
    matchers: list[Matcher] = Field(min_length=1, max_length=MAX_MATCHERS)
    starts_at: datetime | None = None
    ends_at: datetime
    comment: str = Field(default="", max_length=MAX_COMMENT)

    @model_validator(mode="after")
    def _sensible(self) -> SilenceIn:
        # As Alertmanager: a silence whose every matcher matches "" would silence everything.
        if all(matches(m, {}) for m in self.matchers):
            raise ValueError("at least one matcher must not match the empty value")
        if self.starts_at is not None and as_utc(self.ends_at) <= as_utc(self.starts_at):
            raise ValueError("ends_at must be after starts_at")
        return self


class SilenceView(Silence):
    """A silence as the API lists it, with its state now."""

    status: SilenceState


def new_silence(body: SilenceIn, silence_id: str, principal: str, now: datetime) -> Silence:
    """The silence ``principal`` asked for; ValueError if it would already be over."""
    starts = as_utc(body.starts_at) if body.starts_at is not None else now
    ends = as_utc(body.ends_at)
    if ends <= now:
        raise ValueError("ends_at is in the past")
    return Silence(
        id=silence_id,
        matchers=[LabelMatcher(**m.model_dump()) for m in body.matchers],
        starts_at=starts,
        ends_at=ends,
        comment=body.comment,
        created_by=principal,
    )


def state_of(silence: Silence, now: datetime) -> SilenceState:
    """Pending before it starts, active until it ends or is expired, expired after."""
    end = (
        silence.ends_at if silence.expired_at is None else min(silence.ends_at, silence.expired_at)
    )
    if as_utc(end) <= now:
        return "expired"
    return "pending" if as_utc(silence.starts_at) > now else "active"


def is_active(silence: Silence, now: datetime) -> bool:
    """Whether ``silence`` silences alerts at ``now``."""
    return state_of(silence, now) == "active"


def expire(silence: Silence, now: datetime) -> Silence:
    """``silence`` ended early, at ``now``."""
    return silence.model_copy(update={"expired_at": now})


def silencing(silences: Iterable[Silence], alert: Alert, now: datetime) -> Silence | None:
    """The first active silence whose matchers all match ``alert``, or None."""
    labels = alert_labels(alert)
    for silence in sorted(silences, key=lambda s: (s.starts_at, s.id)):
        if is_active(silence, now) and matches_all(silence.matchers, labels):
            return silence
    return None


def scoped_models(silence: Silence) -> list[str] | None:
    """The models a silence is confined to by its ``model_id=`` matchers; None if it is not
    (it may then silence any model: only a key for every model may create or see it)."""
    named = {m.value for m in silence.matchers if m.name == "model_id" and m.op == "="}
    return sorted(named) if named else None
