"""Where the SDK sends batches: Kafka directly, or the prediction logger's and the feedback
service's HTTP endpoints.

A batch may hold predictions and feedback: feedback is what has a ``feedback_id``
(``is_feedback``). Each kind goes to its own topic or endpoint.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from vigil.adapters.bus import send_encoded
from vigil.adapters.kafka_security import (
    Kafka,
    KafkaConnection,
    KafkaSecurity,
    client_options,
    start_client,
)
from vigil.wire.environments import EnvironmentReport
from vigil.wire.topics import ENVIRONMENTS, FEEDBACK, PREDICTIONS

__all__ = [
    "EnvironmentReporter",
    "HttpTransport",
    "KafkaTransport",
    "KeyRefused",
    "Rejected",
    "Transport",
    "by_kind",
    "is_feedback",
    "transport_for",
]


def is_feedback(event: Mapping[str, Any]) -> bool:
    """Whether a queued event is feedback on a prediction rather than a prediction."""
    return "feedback_id" in event


def by_kind(events: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The predictions of a batch, and its feedback, each in order."""
    predictions: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for event in events:
        (feedback if "feedback_id" in event else predictions).append(event)
    return predictions, feedback


class Rejected(Exception):
    """The destination refused the batch for good (bad input): retrying will not help."""


class Transport(Protocol):
    async def start(self) -> None: ...
    async def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        """Deliver ``events``; returns the destination's reasons for any it refused."""
        ...

    async def stop(self) -> None: ...


@runtime_checkable
class EnvironmentReporter(Protocol):
    """A transport that can also deliver environment reports (Kafka and HTTP both can)."""

    async def report(self, reports: Sequence[EnvironmentReport]) -> None: ...


class KafkaTransport:
    """Produces each event as a JSON object keyed by prediction_id, acks from all replicas:
    predictions to ``topic``, feedback to ``feedback_topic``.

    A broker that refuses the credentials raises ``KafkaAccessDenied`` (the SDK's
    ``last_error``) saying so, and the events wait in the spool as for any outage.
    """

    def __init__(
        self, kafka: Kafka, topic: str = PREDICTIONS.name, feedback_topic: str = FEEDBACK.name
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.feedback_topic = feedback_topic
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            **client_options(self.kafka),
            client_id="vigil-sdk",
            acks="all",
            enable_idempotence=True,
            linger_ms=10,
            max_batch_size=512 * 1024,
            request_timeout_ms=10_000,
        )
        try:
            await start_client(producer, self.kafka)
        except BaseException:
            with contextlib.suppress(Exception):  # the next send starts a fresh producer
                await producer.stop()
            raise
        self._producer = producer

    async def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        predictions, feedback = by_kind(events)
        for topic, group in ((self.topic, predictions), (self.feedback_topic, feedback)):
            if group:
                keys = [e["prediction_id"].encode() for e in group]
                # Encoded one at a time as they join a record batch (see send_encoded).
                await send_encoded(producer, topic, keys, map(orjson.dumps, group))
        return []

    async def report(self, reports: Sequence[EnvironmentReport]) -> None:
        """Publish environment reports (JSON) on ``vigil.environments.v1``, keyed by host."""
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        keys = [r.key.encode() for r in reports]
        values = (r.model_dump_json().encode() for r in reports)
        await send_encoded(producer, ENVIRONMENTS.name, keys, values)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class HttpTransport:
    """POSTs gzip NDJSON batches to ``<url>/v1/predictions`` and, when given a
    ``feedback_url``, to ``<feedback_url>/v1/feedback``; invalid events are refused alone."""

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        api_key: str | None = None,
        feedback_url: str | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/v1/predictions"
        self.feedback_url = feedback_url.rstrip("/") + "/v1/feedback" if feedback_url else None
        self.timeout = timeout
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout, headers=self._headers)

    async def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        refused: list[str] = []
        predictions, feedback = by_kind(events)
        for url, group in ((self.url, predictions), (self.feedback_url, feedback)):
            if not group:
                continue
            if url is None:  # spooled by a logger that had a feedback destination
                refused += ["feedback: no feedback destination is configured"] * len(group)
                continue
            try:
                refused += await self._post(url, group)
            except Rejected as exc:
                if len(group) == len(events):
                    raise
                refused += [str(exc)] * len(group)  # the other kind was delivered: not resent
        return refused

    async def report(self, reports: Sequence[EnvironmentReport]) -> None:
        """POST environment reports to ``<url>/v1/environments``, one each."""
        if self._client is None:
            await self.start()
        assert self._client is not None
        url = self.url.removesuffix("/v1/predictions") + "/v1/environments"
        for r in reports:
            response = await self._client.post(
                url,
                content=r.model_dump_json(exclude_none=True).encode(),
                headers={"content-type": "application/json"},
            )
            if response.status_code in (400, 404, 413, 422):
                raise Rejected(f"HTTP {response.status_code}: {response.text[:500]}")
            response.raise_for_status()

    async def _post(self, url: str, events: Sequence[dict[str, Any]]) -> list[str]:
        if self._client is None:
            await self.start()
        assert self._client is not None
        body = gzip.compress(b"\n".join(orjson.dumps(e) for e in events), compresslevel=1)
        # partial=true: one bad event must not cost the batch's good ones.
        response = await self._client.post(
            url,
            params={"partial": "true"},
            content=body,
            headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
        )
        if response.status_code in (400, 404, 413, 422):
            raise Rejected(f"HTTP {response.status_code}: {response.text[:500]}")
        if response.status_code in (401, 403):  # the key, not the events: keep them, retry
            raise KeyRefused(f"HTTP {response.status_code}: {response.text[:500]}")
        response.raise_for_status()
        errors = response.json().get("errors", [])
        return [
            f"[{e.get('index')}] {e['field']}: expected {e['expected']}, got {e['received']}"
            for e in errors
        ]

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class KeyRefused(Exception):
    """The prediction logger or the feedback service refused the API key (missing, revoked, or
    without the producer role for the model): the events are kept and resent once the key is
    fixed."""


def transport_for(
    destination: str,
    security: KafkaSecurity | None = None,
    api_key: str | None = None,
    feedback_destination: str | None = None,
) -> Transport:
    """``kafka://host:port[,host:port]`` (connecting with ``security``, default PLAINTEXT) or
    ``http(s)://host:port`` of the prediction logger (with ``api_key``, a producer's key), and
    of the feedback service at ``feedback_destination`` if it is elsewhere."""
    if destination.startswith("kafka://"):
        bootstrap = destination.removeprefix("kafka://")
        return KafkaTransport(KafkaConnection(bootstrap, security or KafkaSecurity()))
    if destination.startswith(("http://", "https://")):
        return HttpTransport(destination, api_key=api_key, feedback_url=feedback_destination)
    raise ValueError(
        f"destination {destination!r}: expected kafka://host:port or http(s)://host:port"
    )
