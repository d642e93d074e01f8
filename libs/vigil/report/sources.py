"""What an auditor's report is made of, read through the services' public HTTP APIs with one
API key: the model's versions, its whole audit trail, its alerts (every status) with their
histories, the silences, performance windows, drift heat maps and serving environments."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["ReportRefused", "ReportUnavailable", "Sources", "gather_sources"]

AUDIT_PAGE = 1000
ALERT_PAGE = 1000
STATUSES = ("firing", "acknowledged", "resolved")
PARALLEL = 8  # calls in flight at once for one report
DAY = 86400


class ReportRefused(Exception):
    """A service refused a call the report needs (4xx): ``status`` and its explanation."""

    def __init__(self, service: str, status: int, detail: str) -> None:
        super().__init__(f"{service} answered {status}: {detail}")
        self.service, self.status, self.detail = service, status, detail


class ReportUnavailable(Exception):
    """A service could not be reached, failed (5xx) or answered something unreadable."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service} did not answer: {reason}")
        self.service, self.reason = service, reason


@dataclass
class Sources:
    """The services' answers for one model, as they came (JSON values)."""

    model_id: str
    since: datetime | None
    until: datetime | None
    versions: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    audit_complete: bool = True
    alerts: list[dict[str, Any]] = field(default_factory=list)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    silences: list[dict[str, Any]] = field(default_factory=list)
    performance: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    drift: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    environments: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be read, and why


@dataclass(frozen=True)
class _Api:
    client: httpx.AsyncClient
    key: str
    urls: dict[str, str]
    gate: asyncio.Semaphore

    async def get(
        self, service: str, path: str, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with self.gate:
            try:
                answer = await self.client.get(
                    self.urls[service] + path, headers=headers, params=params
                )
            except httpx.HTTPError as exc:
                raise ReportUnavailable(service, f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code >= 500:
            raise ReportUnavailable(service, f"HTTP {answer.status_code} for {path}")
        if answer.status_code >= 400:
            raise ReportRefused(service, answer.status_code, _detail(answer))
        return answer

    async def json(self, service: str, path: str, params: dict[str, Any] | None = None) -> Any:
        answer = await self.get(service, path, params)
        try:
            return answer.json()
        except ValueError as exc:
            raise ReportUnavailable(service, f"{path} did not answer JSON") from exc


def _detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:300]
    return str(body.get("detail", body))[:300] if isinstance(body, dict) else str(body)[:300]


def _version_path(model_id: str, version: str) -> str:
    return f"/v1/models/{quote(model_id, safe='')}/versions/{quote(version, safe='')}"


async def _audit(api: _Api, model_id: str) -> tuple[list[dict[str, Any]], bool]:
    """The model's whole audit trail, newest first, every page read."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"model_id": model_id, "limit": AUDIT_PAGE}
    for _ in range(10_000):  # a bound, not a limit anyone reaches: 10 million events
        page = await api.json("registry", "/v1/audit", params)
        events.extend(page.get("events", []))
        if page.get("next") is None:
            return events, True
        params = {**params, "before": page["next"]}
    return events, False


async def _alerts(api: _Api, model_id: str) -> list[dict[str, Any]]:
    """Every alert of the model, of every status, each page read."""
    found: list[dict[str, Any]] = []
    for status in STATUSES:
        params: dict[str, Any] = {"model_id": model_id, "status": status, "limit": ALERT_PAGE}
        while True:
            answer = await api.get("alerting", "/v1/alerts", params)
            found.extend(a for a in answer.json() if a.get("model_id") == model_id)
            cursor = answer.headers.get("x-next-cursor")
            if cursor is None:
                break
            params = {**params, "cursor": cursor}
    return found


async def _optional(api: _Api, service: str, path: str, params: dict[str, Any]) -> Any:
    """An answer a registry older than the report may not give: None for its 404."""
    try:
        return await api.json(service, path, params)
    except ReportRefused as exc:
        if exc.status == 404:
            return None
        raise


async def gather_sources(
    client: httpx.AsyncClient,
    key: str,
    registry_url: str,
    alerting_url: str,
    model_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Sources:
    """Everything the report shows about ``model_id``, read with ``key``. A model that is not
    registered or not in the key's scope raises ReportRefused (404 / 403)."""
    urls = {"registry": registry_url.rstrip("/"), "alerting": alerting_url.rstrip("/")}
    api = _Api(client, key, urls, asyncio.Semaphore(PARALLEL))
    model = await api.json("registry", f"/v1/models/{quote(model_id, safe='')}")
    versions: list[dict[str, Any]] = model.get("versions", [])
    (audit, complete), alerts, silences = await asyncio.gather(
        _audit(api, model_id), _alerts(api, model_id), api.json("alerting", "/v1/silences")
    )
    sources = Sources(model_id, since, until, versions, audit, complete, alerts)
    sources.silences = silences if isinstance(silences, list) else []
    histories = await asyncio.gather(
        *(
            api.json("alerting", f"/v1/alerts/{quote(a['fingerprint'], safe='')}/history")
            for a in alerts
        )
    )
    sources.histories = {a["fingerprint"]: h for a, h in zip(alerts, histories, strict=True)}
    window = {
        name: value.isoformat()
        for name, value in (("since", since), ("until", until))
        if value is not None
    }
    names = [str(v["version"]) for v in versions]
    paths = [_version_path(model_id, n) for n in names]
    performance = await asyncio.gather(
        *(api.json("registry", p + "/performance", window) for p in paths)
    )
    sources.performance = dict(zip(names, performance, strict=True))
    heatmap = _daily(versions, since, until)
    drift = await asyncio.gather(
        *(_optional(api, "registry", p + "/drift/heatmap", heatmap) for p in paths)
    )
    sources.drift = dict(zip(names, drift, strict=True))
    if names and all(d is None for d in drift):
        sources.notes.append("the registry serves no drift heat map: no drift summary per day")
    environments = await asyncio.gather(
        *(_optional(api, "registry", p + "/environment", {}) for p in paths)
    )
    sources.environments = dict(zip(names, environments, strict=True))
    if not complete:
        sources.notes.append("the audit trail was longer than the report reads: it is cut")
    return sources


def _daily(
    versions: list[dict[str, Any]], since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """A drift heat map's query for one column a day over the period (at most a year): from
    ``since`` (else the first version's registration) to ``until`` (else now)."""
    starts = [datetime.fromisoformat(str(v["created_at"])) for v in versions if "created_at" in v]
    end = until or datetime.now(UTC)
    start = since or (min(starts) if starts else end - timedelta(days=1))
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    days = max(1, min(366, math.ceil((end - start).total_seconds() / DAY)))
    end = start + timedelta(days=days)  # whole days: one column is one day
    return {"since": start.isoformat(), "until": end.isoformat(), "columns": days}
