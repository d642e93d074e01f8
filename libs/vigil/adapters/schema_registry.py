"""Writer schemas of Confluent-framed messages, fetched by id from a schema registry.

Decoding is synchronous and runs on the event loop, so a lookup must not cost an HTTP round
trip per message: a schema is fetched once per id (``prefetch`` does it in a thread, off the
event loop), kept for good, and a failed fetch is remembered for ``failure_ttl`` seconds (30 s)
so that a registry that is down costs one timeout per id and per 30 s, not one per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from fastavro import parse_schema

__all__ = ["SchemaRegistryClient"]


class SchemaRegistryClient:
    """Fetches (and caches) writer schemas by id from a Confluent-compatible schema registry."""

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        failure_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._failure_ttl = failure_ttl
        self._clock = clock
        self._cache: dict[int, Any] = {}
        self._failures: dict[int, tuple[float, str]] = {}  # id -> (retry after, reason)

    def schema(self, schema_id: int) -> Any:
        """The parsed writer schema registered under ``schema_id``; LookupError if unavailable."""
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        failed = self._failures.get(schema_id)
        if failed is not None and self._clock() < failed[0]:
            raise LookupError(f"{failed[1]} (not retried for {self._failure_ttl:g} s)")
        try:
            self._cache[schema_id] = self._fetch(schema_id)
        except LookupError as exc:
            self._failures[schema_id] = (self._clock() + self._failure_ttl, str(exc))
            raise
        self._failures.pop(schema_id, None)
        return self._cache[schema_id]

    async def prefetch(self, schema_ids: Iterable[int]) -> None:
        """Fetch schemas in a thread, off the event loop, so decoding them later costs nothing."""
        for schema_id in schema_ids:
            # A failure is remembered: decoding a message of that id names the reason.
            with contextlib.suppress(LookupError):
                await asyncio.to_thread(self.schema, schema_id)

    def _fetch(self, schema_id: int) -> Any:
        try:
            response = httpx.get(f"{self._url}/schemas/ids/{schema_id}", timeout=self._timeout)
            response.raise_for_status()
            return parse_schema(json.loads(response.json()["schema"]))
        except httpx.HTTPError as exc:
            raise LookupError(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # a registry answering nonsense
            raise LookupError(f"bad answer from the registry: {type(exc).__name__}") from exc
