"""What the console's pages show, computed from the services' answers (no I/O here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from console.charts import Sparkline, sparkline
from vigil.wire.alert_events import AlertEvent
from vigil.wire.records import Alert

__all__ = [
    "STATES",
    "TIERS",
    "AlertLists",
    "DriftState",
    "FleetRow",
    "HistoryLine",
    "Performance",
    "drift_state",
    "fleet_index",
    "fleet_rows",
    "history_lines",
    "open_alert_counts",
    "performance_of",
    "select_rows",
    "sort_alerts",
    "split_alerts",
    "worst_first",
]

TIERS = ("critical", "high", "medium", "low")
_TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}
# What a fleet row may be filtered by, beside tier, owner and status.
STATES = ("alerting", "drifting", "degraded", "overdue", "quiet")


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
    estimated: float | None = None  # the headline metric estimated before labels
    currency: str | None = None


@dataclass(frozen=True)
class DriftState:
    """A version's latest drift window, as the fleet summary gives it."""

    window_end: str
    dataset_drift: bool
    drifted_features: tuple[str, ...]
    drift_share: float | None


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
    team: str = ""
    overdue: bool = False  # the risk reassessment is past due
    traffic: tuple[int, ...] | None = None  # hourly counts, oldest first; None: unknown
    drift: DriftState | None = None
    last_label_at: str | None = None

    @property
    def open_alerts(self) -> int:
        """Alerts not yet resolved (firing, acknowledged or silenced)."""
        return (self.firing or 0) + (self.handled or 0)

    @property
    def href(self) -> str:
        """The version's model page."""
        return f"/models/{quote(self.model_id, safe='')}?" + urlencode({"version": self.version})

    @property
    def sparkline(self) -> Sparkline | None:
        """The day of traffic drawn small, when the registry gave it."""
        return None if self.traffic is None else sparkline(self.traffic)

    @property
    def states(self) -> frozenset[str]:
        """What is wrong with the version (``STATES``); "quiet" when nothing is."""
        found = set()
        if self.firing:
            found.add("alerting")
        if self.drift and (self.drift.dataset_drift or self.drift.drifted_features):
            found.add("drifting")
        if self.performance and self.performance.degraded:
            found.add("degraded")
        if self.overdue:
            found.add("overdue")
        return frozenset(found or {"quiet"})


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def performance_of(entry: Mapping[str, Any] | None) -> Performance | None:
    """The fleet summary's latest performance window of a version, or None without one."""
    if not entry:
        return None
    metric = entry.get("metric")
    estimated: Mapping[str, Any] = entry.get("estimated") or {}
    return Performance(
        window_end=str(entry.get("window_end", "")),
        metric=str(metric) if metric else None,
        value=_number(entry.get("value")),
        reference=_number(entry.get("reference")),
        value_per_prediction=_number(entry.get("value_per_prediction")),
        reference_value_per_prediction=_number(entry.get("reference_value_per_prediction")),
        degraded=tuple(str(d) for d in entry.get("degraded") or ()),
        estimated=_number(estimated.get(metric)) if metric else None,
        currency=entry.get("currency"),
    )


def drift_state(entry: Mapping[str, Any] | None) -> DriftState | None:
    """The fleet summary's latest drift window of a version, or None without one."""
    if not entry:
        return None
    return DriftState(
        window_end=str(entry.get("window_end", "")),
        dataset_drift=bool(entry.get("dataset_drift")),
        drifted_features=tuple(str(f) for f in entry.get("drifted_features") or ()),
        drift_share=_number(entry.get("drift_share")),
    )


def fleet_index(answer: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The registry's fleet summary by (model, version)."""
    return {
        (str(v.get("model_id")), str(v.get("version"))): v
        for v in answer.get("versions") or ()
        if isinstance(v, Mapping)
    }


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
    fleet: Mapping[tuple[str, str], Mapping[str, Any]] | None,
) -> list[FleetRow]:
    """One row per registered version; ``alerts`` None: not readable; ``fleet`` (the
    registry's summary by version) None: not available."""
    firing, handled = open_alert_counts(alerts or ())
    rows = []
    for model in models:
        for version in model.get("versions", []):
            where = (str(model["model_id"]), str(version["version"]))
            summary = (fleet or {}).get(where, {})
            traffic = (summary.get("traffic") or {}).get("counts")
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
                    performance=performance_of(summary.get("performance")),
                    performance_readable=bool(summary.get("performance_readable")),
                    team=str(version.get("team") or ""),
                    overdue=bool(version.get("reassessment_overdue")),
                    traffic=tuple(int(c) for c in traffic) if isinstance(traffic, list) else None,
                    drift=drift_state(summary.get("drift")),
                    last_label_at=summary.get("last_label_at"),
                )
            )
    return rows


def select_rows(
    rows: Iterable[FleetRow], tier: str = "", owner: str = "", status: str = "", state: str = ""
) -> list[FleetRow]:
    """The rows matching every filter given (an empty filter matches all)."""
    return [
        r
        for r in rows
        if (not tier or r.tier == tier)
        and (not owner or r.owner == owner)
        and (not status or r.status == status)
        and (not state or state in r.states)
    ]


def worst_first(rows: Iterable[FleetRow]) -> list[FleetRow]:
    """Most unsilenced firing alerts first, then most open ones, the more degraded metrics
    and dataset drift, the riskier tier, the more drifted features, an overdue reassessment."""

    def badness(row: FleetRow) -> tuple[int, int, int, int, int, int, str, str]:
        degraded = len(row.performance.degraded) if row.performance else 0
        dataset = int(row.drift.dataset_drift) if row.drift else 0
        drifted = len(row.drift.drifted_features) if row.drift else 0
        rank = _TIER_RANK.get(row.tier, len(TIERS))
        return (
            *(-(row.firing or 0), -row.open_alerts, -(degraded + dataset), rank),
            *(-drifted, -int(row.overdue), row.model_id, row.version),
        )

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
