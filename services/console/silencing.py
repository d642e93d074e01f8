"""Silences as the alerts page makes and shows them (no I/O): the request a "Silence" form
sends, and which open alerts a silence in force covers.

Alerting stamps ``silenced_by`` on an alert's next change only; an alert already firing when
a silence begins is left out of its notifications straight away, so the page lists it as
silenced from then on, matched as alerting matches (``vigil.wire.matchers``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from vigil.wire.matchers import Matcher, alert_labels, matches_all
from vigil.wire.records import Alert

__all__ = ["DURATIONS", "MAX_COMMENT", "covered", "silence_request"]

# What the form offers: hours -> how the select shows it.
DURATIONS = {"1": "1 h", "4": "4 h", "24": "24 h"}
MAX_COMMENT = 1024  # alerting's limit on a silence's comment


def silence_request(alert: Alert, hours: int, comment: str, now: datetime) -> dict[str, Any]:
    """``POST /v1/silences``'s body: this alert's model, version and rule, from now."""
    about = {"model_id": alert.model_id, "model_version": alert.model_version, "rule": alert.rule}
    return {
        "matchers": [{"name": n, "value": v, "op": "="} for n, v in about.items()],
        "ends_at": (now + timedelta(hours=hours)).isoformat(),
        "comment": comment,
    }


def _matchers(silence: Mapping[str, Any]) -> list[Matcher]:
    """A silence's matchers as alerting validated them (one it could not have stored: none)."""
    try:
        return [Matcher.model_validate(m) for m in silence.get("matchers") or []]
    except ValidationError:
        return []


def covered(alerts: Iterable[Alert], silences: Sequence[Mapping[str, Any]]) -> list[Alert]:
    """``alerts``, each open one an active silence matches named ``silenced_by`` it (those
    alerting already stamped keep their silence)."""
    active = [s for s in silences if s.get("status") == "active"]
    shown = []
    for alert in alerts:
        if alert.silenced_by is None and alert.status != "resolved":
            labels = alert_labels(alert)
            silence = next((s for s in active if matches_all(_matchers(s), labels)), None)
            if silence is not None:
                alert = alert.model_copy(update={"silenced_by": str(silence.get("id"))})
        shown.append(alert)
    return shown
