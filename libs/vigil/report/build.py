"""One call for a report: gather the model's sources with a key, assemble the document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from vigil.report.assemble import assemble
from vigil.report.sources import gather_sources

__all__ = ["build_report"]


async def build_report(
    client: httpx.AsyncClient,
    key: str,
    registry_url: str,
    alerting_url: str,
    model_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The auditor's report of ``model_id`` as read with ``key`` (JSON-ready)."""
    sources = await gather_sources(client, key, registry_url, alerting_url, model_id, since, until)
    return assemble(sources, datetime.now(UTC))
