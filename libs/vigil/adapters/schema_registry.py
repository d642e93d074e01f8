"""Writer schemas of Confluent-framed messages, fetched by id from a schema registry."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastavro import parse_schema

__all__ = ["SchemaRegistryClient"]


class SchemaRegistryClient:
    """Fetches (and caches) writer schemas by id from a Confluent-compatible schema registry."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._cache: dict[int, Any] = {}

    def schema(self, schema_id: int) -> Any:
        """The parsed writer schema registered under ``schema_id``; LookupError if unavailable."""
        if schema_id not in self._cache:
            try:
                response = httpx.get(f"{self._url}/schemas/ids/{schema_id}", timeout=self._timeout)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise LookupError(f"{type(exc).__name__}: {exc}") from exc
            self._cache[schema_id] = parse_schema(json.loads(response.json()["schema"]))
        return self._cache[schema_id]
