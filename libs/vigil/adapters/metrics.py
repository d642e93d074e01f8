"""Vigil's own Prometheus metrics that every process shares, and bounded user labels.

Every distinct label value is a time series kept by this process and by Prometheus for as
long as they run. A label taken from input (a model id) is bounded: the first values seen
keep their own label, any later one is counted under ``"_other"``. The labels here are
bounded by construction: stage names, topics, partitions, HTTP methods, route templates
and status codes.

Stream stages count the records they read, write and dead-letter and keep their consumer lag
per partition (``StageMetrics``, kept by ``vigil.adapters.stage``); every API serves
``/metrics`` and times its requests (``instrument``, called by
``vigil.adapters.http.create_api``); workers without an API serve ``/metrics`` on
``VIGIL_METRICS_PORT`` (``serve_metrics``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from starlette.responses import Response

from vigil.adapters.stage_logic import Incoming, Output

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer
    from fastapi import FastAPI

__all__ = [
    "HTTP_REQUEST_SECONDS",
    "OTHER",
    "STAGE_CONSUMER_LAG",
    "STAGE_DEAD_LETTERED",
    "STAGE_RECORDS_IN",
    "STAGE_RECORDS_OUT",
    "BoundedLabels",
    "ConsumerLag",
    "RequestTimer",
    "StageMetrics",
    "instrument",
    "serve_metrics",
]

log = logging.getLogger(__name__)

# Not a valid identifier (those start with a letter or a digit), so no model is named so.
OTHER = "_other"


class BoundedLabels:
    """The label value to count under: the value itself for the first ``limit`` distinct
    values, ``"_other"`` for any later one.

    >>> models = BoundedLabels(2, "model_id")
    >>> [models(m) for m in ["a", "b", "a", "c"]]
    ['a', 'b', 'a', '_other']
    """

    def __init__(self, limit: int, name: str = "label") -> None:
        if limit < 1:
            raise ValueError(f"a label needs room for at least one value, not {limit}")
        self.limit = limit
        self.name = name
        self._kept: set[str] = set()
        self._warned = False

    def __call__(self, value: str) -> str:
        if value in self._kept:
            return value
        if len(self._kept) < self.limit:
            self._kept.add(value)
            return value
        if not self._warned:
            self._warned = True
            log.warning(
                "%d distinct %s values seen: later ones are counted as %r",
                self.limit,
                self.name,
                OTHER,
            )
        return OTHER

    def __len__(self) -> int:
        """How many values keep their own label."""
        return len(self._kept)


STAGE_RECORDS_IN = Counter(
    "vigil_stage_records_in_total",
    "Records a stream stage read from its input topics (re-reads after a rewind count again).",
    ["stage", "topic"],
)
STAGE_RECORDS_OUT = Counter(
    "vigil_stage_records_out_total",
    "Records a stream stage committed to its output topics (dead letters not included).",
    ["stage", "topic"],
)
STAGE_DEAD_LETTERED = Counter(
    "vigil_stage_dead_lettered_total", "Records a stream stage dead-lettered.", ["stage"]
)
STAGE_CONSUMER_LAG = Gauge(
    "vigil_stage_consumer_lag",
    "Records of a partition this stage owns that it has not fetched yet: the partition's end"
    " (last stable offset under read_committed, else high watermark) minus the position.",
    ["stage", "topic", "partition"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "vigil_http_request_seconds",
    "Time to answer an HTTP request, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# The route of a request no route matched (unknown paths, bodies refused before routing):
# the path itself would make one series per path a client invents.
UNROUTED = "<unrouted>"


class ConsumerLag:
    """``vigil_stage_consumer_lag`` of one stage: set per partition it owns, and forgotten
    when the partition goes (another worker reports it then).

    >>> lag = ConsumerLag("doc")
    >>> lag.set("vigil.predictions.v1", 0, end=120, position=100)
    20
    >>> lag.forget([("vigil.predictions.v1", 0)])
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._partitions: set[tuple[str, int]] = set()

    def set(self, topic: str, partition: int, end: int, position: int) -> int:
        """Record and return the lag of one partition (never below 0: a position read after
        the end was is not ahead of the partition)."""
        lag = max(0, end - position)
        STAGE_CONSUMER_LAG.labels(self.stage, topic, str(partition)).set(lag)
        self._partitions.add((topic, partition))
        return lag

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the series of partitions this stage no longer owns."""
        for topic, partition in partitions:
            if (topic, partition) in self._partitions:
                self._partitions.discard((topic, partition))
                STAGE_CONSUMER_LAG.remove(self.stage, topic, str(partition))


class StageMetrics:
    """One stream stage's series: records in, out and dead-lettered, and consumer lag."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.lag = ConsumerLag(stage)

    async def fetched(
        self,
        consumer: AIOKafkaConsumer,
        batches: Mapping[TopicPartition, Sequence[Incoming]],
    ) -> None:
        """Count a fetch's records and set the lag of every partition owned and fetched
        from: its end as of the last fetch (the last stable offset under read_committed,
        where transaction markers and open transactions sit past it) minus the position."""
        for tp, records in batches.items():
            STAGE_RECORDS_IN.labels(self.stage, tp.topic).inc(len(records))
        for tp in sorted(consumer.assignment()):
            try:
                stable, end = consumer.last_stable_offset(tp), consumer.highwater(tp)
                end = stable if stable is not None and stable >= 0 else end
                if end is None:  # nothing fetched from it yet
                    continue
                position = await consumer.position(tp)
            except (AssertionError, IllegalStateError):  # revoked meanwhile
                continue
            self.lag.set(tp.topic, tp.partition, end, position)

    def committed(self, output: Output) -> None:
        """Count what a flush committed."""
        written: dict[str, int] = {}
        for r in output.records:
            written[r.topic] = written.get(r.topic, 0) + 1
        for topic, n in written.items():
            STAGE_RECORDS_OUT.labels(self.stage, topic).inc(n)
        if output.dead_letters:
            STAGE_DEAD_LETTERED.labels(self.stage).inc(len(output.dead_letters))

    def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop the lag of partitions that went to another worker."""
        self.lag.forget((tp.topic, tp.partition) for tp in partitions)


class RequestTimer:
    """ASGI middleware: every HTTP request's duration into ``vigil_http_request_seconds``,
    labelled with the template of the route it matched (``/v1/models/{model_id}``), never
    the raw path."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception that escapes every handler answers 500
        started = time.perf_counter()

        async def noted(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            route = getattr(scope.get("route"), "path", UNROUTED)
            HTTP_REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )


def instrument(app: FastAPI) -> None:
    """``GET /metrics`` on ``app``, and every request timed by ``RequestTimer`` (added last:
    outermost, so answers refused by the other middleware are timed too)."""
    app.add_middleware(RequestTimer)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def serve_metrics(port: int | None, host: str = "127.0.0.1") -> None:
    """Serve this process's ``/metrics`` on ``host:port`` from a background thread (a worker
    without an API); nothing when ``port`` is None."""
    if port is None:
        return
    start_http_server(port, addr=host)
    log.info("Prometheus metrics on http://%s:%d/metrics", host, port)
