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
    """The registry, alerting and feedback APIs; every call carries the key it is given."""

    def __init__(
        self, client: httpx.AsyncClient, registry_url: str, alerting_url: str, feedback_url: str
    ) -> None:
        self.client = client
        self.urls = {
            "registry": registry_url.rstrip("/"),
            "alerting": alerting_url.rstrip("/"),
            "feedback": feedback_url.rstrip("/"),
        }

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

    async def alerts(
        self, key: str, status: str, cursor: str | None = None
    ) -> tuple[list[Alert], str | None]:
        """One page of the alerts of one status, newest first, from ``cursor`` (the first page
        without it), and where the next page starts (None: this was the last)."""
        params: dict[str, Any] = {"status": status, "limit": ALERT_PAGE}
        if cursor:
            params["cursor"] = cursor
        return await self._alerts(params, key)

    async def _alerts(self, params: dict[str, Any], key: str) -> tuple[list[Alert], str | None]:
        response = await self._call("alerting", "GET", "/v1/alerts", key, params)
        try:
            alerts = _ALERTS.validate_python(self._json("alerting", response))
        except ValidationError as exc:
            raise Unanswered(
                "alerting", f"unreadable alerts: {exc.error_count()} error(s)"
            ) from exc
        return alerts, response.headers.get("x-next-cursor")

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

    # The review queue, flags and silences (the review, alerts and health pages).

    async def review_queue(self, key: str, model_id: str, limit: int = 1) -> list[dict[str, Any]]:
        """Up to ``limit`` of the model's predictions, leased to the key's principal to judge."""
        params = {"model_id": model_id, "limit": limit}
        response = await self._call("feedback", "GET", "/v1/review-queue", key, params)
        found = self._json("feedback", response)
        items = found.get("items") if isinstance(found, dict) else None
        if not isinstance(items, list):
            raise Unanswered("feedback", "GET /v1/review-queue did not answer items")
        return [i for i in items if isinstance(i, dict)]

    async def send_feedback(self, key: str, feedback: dict[str, Any]) -> None:
        """Record one flag (or outcome); its reviewer is the key's principal."""
        await self._call("feedback", "POST", "/v1/feedback", key, body=feedback)

    async def feedback_summary(self, key: str, model_id: str, limit: int = 20) -> dict[str, Any]:
        """The model's flag counts, rates and agreement, and its newest ``limit`` flags."""
        path = f"/v1/models/{quote(model_id, safe='')}/feedback-summary"
        response = await self._call("feedback", "GET", path, key, {"limit": limit})
        found = self._json("feedback", response)
        if not isinstance(found, dict):
            raise Unanswered("feedback", "the feedback summary is not an object")
        return found

    async def model_version(self, key: str, model_id: str, version: str) -> dict[str, Any]:
        """One registered model version (features, business value, …)."""
        path = f"/v1/models/{quote(model_id, safe='')}/versions/{quote(version, safe='')}"
        found = self._json("registry", await self._call("registry", "GET", path, key))
        if not isinstance(found, dict):
            raise Unanswered("registry", "the model version is not an object")
        return found

    async def create_silence(self, key: str, silence: dict[str, Any]) -> dict[str, Any]:
        """Create a silence as the key's principal; the silence as alerting recorded it."""
        response = await self._call("alerting", "POST", "/v1/silences", key, body=silence)
        found = self._json("alerting", response)
        return found if isinstance(found, dict) else {}

    async def expire_silence(self, key: str, silence_id: str) -> None:
        """End a silence now."""
        path = f"/v1/silences/{quote(silence_id, safe='')}"
        await self._call("alerting", "DELETE", path, key)

    async def scrape(self, url: str, seconds: float) -> str:
        """A process's Prometheus ``/metrics`` text (no key: metrics are open), waiting at most
        ``seconds``; Unanswered when it cannot be read."""
        try:
            response = await self.client.get(url, timeout=seconds)
        except httpx.HTTPError as exc:
            raise Unanswered(url, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise Unanswered(url, f"HTTP {response.status_code}")
        return response.text

    # The fleet summary, the model page and the window page.

    async def _object(self, path: str, key: str, params: dict[str, Any] | None = None) -> Any:
        """A registry answer that must be a JSON object."""
        found = self._json("registry", await self._call("registry", "GET", path, key, params))
        if not isinstance(found, dict):
            raise Unanswered("registry", f"GET {path} did not answer an object")
        return found

    async def fleet(self, key: str) -> dict[str, Any]:
        """Every version in the key's scope: its day of traffic, latest drift and performance
        windows, and when its last label came."""
        found: dict[str, Any] = await self._object("/v1/fleet", key)
        return found

    async def model(self, key: str, model_id: str) -> dict[str, Any]:
        """One model with every version in full (risk, lineage, reference, status, …)."""
        found: dict[str, Any] = await self._object(f"/v1/models/{quote(model_id, safe='')}", key)
        return found

    @staticmethod
    def _version_path(model_id: str, version: str) -> str:
        return f"/v1/models/{quote(model_id, safe='')}/versions/{quote(version, safe='')}"

    async def heatmap(
        self, key: str, model_id: str, version: str, since: datetime, until: datetime, columns: int
    ) -> dict[str, Any]:
        """The version's drift windows as at most ``columns`` buckets by features."""
        path = self._version_path(model_id, version) + "/drift/heatmap"
        params = {"since": since.isoformat(), "until": until.isoformat(), "columns": columns}
        found: dict[str, Any] = await self._object(path, key, params)
        return found

    async def segment_drift(
        self, key: str, model_id: str, version: str, segment: str, since: datetime
    ) -> dict[str, Any]:
        """Each group of one of the version's segments judged against its reference."""
        path = self._version_path(model_id, version) + "/drift/segments"
        params = {"segment": segment, "since": since.isoformat()}
        found: dict[str, Any] = await self._object(path, key, params)
        return found

    async def window(
        self, key: str, model_id: str, version: str, window_start: str
    ) -> dict[str, Any]:
        """One drift window's whole report."""
        path = (
            self._version_path(model_id, version) + f"/drift/windows/{quote(window_start, safe='')}"
        )
        found: dict[str, Any] = await self._object(path, key)
        return found

    async def fairness(
        self, key: str, model_id: str, version: str, since: datetime
    ) -> list[dict[str, Any]]:
        """The version's fairness (and segments) per window ending after ``since``."""
        path = self._version_path(model_id, version) + "/fairness"
        params = {"since": since.isoformat()}
        found = self._json("registry", await self._call("registry", "GET", path, key, params))
        return found if isinstance(found, list) else []

    async def comparison(
        self, key: str, model_id: str, versions: tuple[str, str], since: datetime
    ) -> dict[str, Any]:
        """Two versions side by side (the baseline first), with the test and its verdict."""
        path = f"/v1/models/{quote(model_id, safe='')}/comparison"
        params = {"versions": ",".join(versions), "since": since.isoformat()}
        found: dict[str, Any] = await self._object(path, key, params)
        return found

    async def model_alerts(self, key: str, model_id: str) -> tuple[list[Alert], bool]:
        """The model's newest alerts of every status, and whether there were more."""
        alerts, following = await self._alerts({"model_id": model_id, "limit": ALERT_PAGE}, key)
        return alerts, following is not None

    async def audit(
        self,
        key: str,
        model_id: str | None,
        principal: str | None,
        before: int | None,
        limit: int,
    ) -> dict[str, Any]:
        """One page of the audit trail, newest first: ``events`` and ``next`` (the ``before``
        of the page after it, or None)."""
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("model_id", model_id), ("principal", principal), ("before", before)):
            if value is not None:
                params[name] = value
        found: dict[str, Any] = await self._object("/v1/audit", key, params)
        return found
