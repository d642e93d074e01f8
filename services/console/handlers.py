"""What the console's pages show, computed from the services' answers (no I/O here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.wire.alert_events import AlertEvent
from vigil.wire.records import Alert

__all__ = [
    "TIERS",
    "AlertLists",
    "FleetRow",
    "HistoryLine",
    "Performance",
    "fleet_rows",
    "history_lines",
    "latest_performance",
    "open_alert_counts",
    "select_rows",
    "sort_alerts",
    "split_alerts",
    "worst_first",
]

TIERS = ("critical", "high", "medium", "low")
_TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}
# The metric a window is summed up by: the first one the report has.
_HEADLINE = ("accuracy", "f1", "mae", "rmse")


@dataclass(frozen=True)
class Performance:
    """A version's latest performance window beside its reference."""

    window_end: str
    metric: str | None
    value: float | None
    reference: float | None
    value_per_prediction: float | None
    reference_value_per_prediction: float | None
    degraded: tuple[str, ...]


@dataclass(frozen=True)
class FleetRow:
    """One model version as the fleet overview lists it."""

    model_id: str
    version: str
    owner: str
    tier: str
    status: str
    purpose: str
    firing: int | None  # None: the key may not read alerts
    handled: int | None  # acknowledged, or firing but silenced
    performance: Performance | None = None
    performance_readable: bool = False

    @property
    def open_alerts(self) -> int:
        """Alerts not yet resolved (firing, acknowledged or silenced)."""
        return (self.firing or 0) + (self.handled or 0)


def latest_performance(reports: Sequence[Mapping[str, Any]]) -> Performance | None:
    """The last window of the registry's answer (oldest first), or None when there is none."""
    if not reports:
        return None
    last = reports[-1]
    metrics: Mapping[str, float] = last.get("metrics") or {}
    reference: Mapping[str, float] = last.get("reference_metrics") or {}
    metric = next((m for m in _HEADLINE if m in metrics), None)
    return Performance(
        window_end=str(last.get("window_end", "")),
        metric=metric,
        value=metrics.get(metric) if metric else None,
        reference=reference.get(metric) if metric else None,
        value_per_prediction=last.get("value_per_prediction"),
        reference_value_per_prediction=last.get("reference_value_per_prediction"),
        degraded=tuple(last.get("degraded") or ()),
    )


def open_alert_counts(alerts: Iterable[Alert]) -> tuple[Counter[tuple[str, str]], ...]:
    """Per (model, version): alerts firing unsilenced, and those acknowledged or silenced."""
    firing: Counter[tuple[str, str]] = Counter()
    handled: Counter[tuple[str, str]] = Counter()
    for alert in alerts:
        where = (alert.model_id, alert.model_version)
        if alert.status == "firing" and alert.silenced_by is None:
            firing[where] += 1
        elif alert.status != "resolved":
            handled[where] += 1
    return firing, handled


def fleet_rows(
    models: Sequence[Mapping[str, Any]],
    alerts: Sequence[Alert] | None,
    performance: Mapping[tuple[str, str], Performance | None] | None,
) -> list[FleetRow]:
    """One row per registered version; ``alerts`` / ``performance`` None: not readable."""
    firing, handled = open_alert_counts(alerts or ())
    rows = []
    for model in models:
        for version in model.get("versions", []):
            where = (str(model["model_id"]), str(version["version"]))
            rows.append(
                FleetRow(
                    model_id=where[0],
                    version=where[1],
                    owner=str(model.get("owner") or ""),
                    tier=str(model.get("severity") or ""),
                    status=str(version.get("status") or ""),
                    purpose=str(model.get("purpose") or ""),
                    firing=None if alerts is None else firing[where],
                    handled=None if alerts is None else handled[where],
                    performance=None if performance is None else performance.get(where),
                    performance_readable=performance is not None,
                )
            )
    return rows


def select_rows(
    rows: Iterable[FleetRow], tier: str = "", owner: str = "", status: str = ""
) -> list[FleetRow]:
    """The rows matching every filter given (an empty filter matches all)."""
    return [
        r
        for r in rows
        if (not tier or r.tier == tier)
        and (not owner or r.owner == owner)
        and (not status or r.status == status)
    ]


def worst_first(rows: Iterable[FleetRow]) -> list[FleetRow]:
    """Most unsilenced firing alerts first, then most open ones, the riskier tier, the more
    degraded metrics."""

    def badness(row: FleetRow) -> tuple[int, int, int, int, str, str]:
        degraded = len(row.performance.degraded) if row.performance else 0
        rank = _TIER_RANK.get(row.tier, len(TIERS))
        return (-(row.firing or 0), -row.open_alerts, rank, -degraded, row.model_id, row.version)

    return sorted(rows, key=badness)


@dataclass
class AlertLists:
    """The alerts page's three lists."""

    firing: list[Alert] = field(default_factory=list)
    acknowledged: list[Alert] = field(default_factory=list)
    silenced: list[Alert] = field(default_factory=list)


def sort_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    """Most severe first, then the oldest (longest open)."""
    return sorted(alerts, key=lambda a: (_TIER_RANK.get(a.severity, 9), a.starts_at))


def split_alerts(alerts: Iterable[Alert]) -> AlertLists:
    """Open alerts by what is being done about them: a silenced change is listed as silenced."""
    lists = AlertLists()
    for alert in alerts:
        if alert.status == "resolved":
            continue
        if alert.silenced_by is not None:
            lists.silenced.append(alert)
        elif alert.status == "acknowledged":
            lists.acknowledged.append(alert)
        else:
            lists.firing.append(alert)
    lists.firing = sort_alerts(lists.firing)
    lists.acknowledged = sort_alerts(lists.acknowledged)
    lists.silenced = sort_alerts(lists.silenced)
    return lists


@dataclass(frozen=True)
class HistoryLine:
    """One event of an alert's history, as a row: when, what, who, and the particulars."""

    time: str
    kind: str
    actor: str
    what: str


def _particulars(event: AlertEvent) -> str:
    if event.kind == "state" and event.alert is not None:
        return f"{event.alert.status} ({event.alert.severity}): {event.alert.summary}"
    if event.kind == "notification":
        parts = [event.channel or "", event.outcome or ""]
        if event.status_code is not None:
            parts.append(f"HTTP {event.status_code}")
        if event.error:
            parts.append(event.error)
        if event.silence_id:
            parts.append(f"silence {event.silence_id}")
        return " ".join(p for p in parts if p)
    return event.comment or ""


def history_lines(events: Iterable[AlertEvent]) -> list[HistoryLine]:
    """An alert's events, oldest first, each with who did it (the principal, or Vigil)."""
    return [
        HistoryLine(
            time=e.time.isoformat(timespec="seconds"),
            kind=e.kind,
            actor=e.actor or "vigil",
            what=_particulars(e),
        )
        for e in events
    ]
