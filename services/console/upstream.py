"""The other services' public APIs, called over HTTP with the signed-in user's key."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from vigil.wire.alert_events import AlertEvent
from vigil.wire.records import Alert

__all__ = ["Refused", "Services", "Unanswered"]

_ALERTS = TypeAdapter(list[Alert])
_EVENTS = TypeAdapter(list[AlertEvent])
# One page of alerts per status; more are counted as "more than this" on the pages.
ALERT_PAGE = 1000


class Refused(Exception):
    """A service refused the call (4xx); ``detail`` is its explanation."""

    def __init__(self, service: str, status: int, detail: str) -> None:
        super().__init__(f"{service} answered {status}: {detail}")
        self.service = service
        self.status = status
        self.detail = detail


class Unanswered(Exception):
    """A service could not be reached, failed (5xx) or answered something unreadable."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service} did not answer: {reason}")
        self.service = service
        self.reason = reason


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("detail", body))[:300] if isinstance(body, dict) else str(body)[:300]


class Services:
    """The registry and alerting APIs; every call carries the key it is given."""

    def __init__(self, client: httpx.AsyncClient, registry_url: str, alerting_url: str) -> None:
        self.client = client
        self.urls = {"registry": registry_url.rstrip("/"), "alerting": alerting_url.rstrip("/")}

    async def _call(
        self,
        service: str,
        method: str,
        path: str,
        key: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        url = self.urls[service] + path
        headers = {"Authorization": f"Bearer {key}"}
        try:
            response = await self.client.request(
                method, url, headers=headers, params=params, json=body
            )
        except httpx.HTTPError as exc:
            raise Unanswered(service, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise Unanswered(service, f"HTTP {response.status_code}: {_detail(response)}")
        if response.status_code >= 400:
            raise Refused(service, response.status_code, _detail(response))
        return response

    @staticmethod
    def _json(service: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise Unanswered(service, "the answer is not JSON") from exc

    async def models(self, key: str) -> list[dict[str, Any]]:
        """Every model in the key's scope, with owner, tier and versions."""
        found = self._json("registry", await self._call("registry", "GET", "/v1/models", key))
        if not isinstance(found, list):
            raise Unanswered("registry", "GET /v1/models did not answer a list")
        return found

    async def performance(
        self, key: str, model_id: str, version: str, since: datetime
    ) -> list[dict[str, Any]]:
        """The version's performance windows ending after ``since``, oldest first."""
        path = (
            f"/v1/models/{quote(model_id, safe='')}/versions/{quote(version, safe='')}/performance"
        )
        params = {"since": since.isoformat()}
        found = self._json("registry", await self._call("registry", "GET", path, key, params))
        return found if isinstance(found, list) else []

    async def alerts(self, key: str, status: str) -> tuple[list[Alert], bool]:
        """The newest alerts of one status, and whether there were more than one page."""
        params = {"status": status, "limit": ALERT_PAGE}
        response = await self._call("alerting", "GET", "/v1/alerts", key, params)
        try:
            alerts = _ALERTS.validate_python(self._json("alerting", response))
        except ValidationError as exc:
            raise Unanswered(
                "alerting", f"unreadable alerts: {exc.error_count()} error(s)"
            ) from exc
        return alerts, "x-next-cursor" in response.headers

    async def silences(self, key: str) -> list[dict[str, Any]]:
        """Every silence the key's scope covers."""
        found = self._json("alerting", await self._call("alerting", "GET", "/v1/silences", key))
        return found if isinstance(found, list) else []

    async def history(self, key: str, fingerprint: str) -> list[AlertEvent]:
        """What happened to one alert, oldest first."""
        path = f"/v1/alerts/{quote(fingerprint, safe='')}/history"
        response = await self._call("alerting", "GET", path, key)
        try:
            return _EVENTS.validate_python(self._json("alerting", response))
        except ValidationError as exc:
            raise Unanswered(
                "alerting", f"unreadable history: {exc.error_count()} error(s)"
            ) from exc

    async def acknowledge(self, key: str, fingerprint: str, comment: str) -> None:
        """Acknowledge an alert as the key's principal."""
        path = f"/v1/alerts/{quote(fingerprint, safe='')}/ack"
        await self._call("alerting", "POST", path, key, body={"comment": comment})
