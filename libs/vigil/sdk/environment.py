"""The environment an app serves a model in — its Python and installed distributions — as
the ``EnvironmentReport`` the SDK sends once per model version when it starts logging for it,
so that the registry can tell production from what the model was validated in."""

from __future__ import annotations

import platform
import socket
from datetime import UTC, datetime
from functools import cache
from importlib import metadata

from vigil.wire.environments import EnvironmentReport, normalised

__all__ = ["environment_report", "installed_packages"]


@cache
def installed_packages() -> dict[str, str]:
    """Every installed distribution by its normalised name (PEP 503), and its version."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name and dist.version:
            found.setdefault(normalised(name), dist.version)
    return dict(sorted(found.items()))


def _sdk_version() -> str | None:
    try:
        return metadata.version("vigil")
    except metadata.PackageNotFoundError:
        return None


def environment_report(
    model_id: str, model_version: str, host: str | None = None, now: datetime | None = None
) -> EnvironmentReport:
    """This process's environment, serving ``model_id`` ``model_version`` on ``host`` (default:
    the machine's host name)."""
    return EnvironmentReport(
        model_id=model_id,
        model_version=model_version,
        host=host or socket.gethostname(),
        python=platform.python_version(),
        packages=installed_packages(),
        reported_at=now or datetime.now(UTC),
        sdk=_sdk_version(),
    )
