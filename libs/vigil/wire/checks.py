"""Reports alerting makes itself rather than reads from a topic (a silence judged on its clock,
a serving environment judged against the validated one): what every report the rules read
has, and nothing published. No I/O."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

__all__ = ["Check"]


class Check(BaseModel):
    """The model version and window a check is about, as a published report has them."""

    model_config = ConfigDict(frozen=True)

    report_id: str
    model_id: str
    model_version: str
    window_start: datetime
    window_end: datetime
    event_count: int = 0
    created_at: datetime
