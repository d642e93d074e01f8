"""The prediction logger as ``python -m prediction_logger`` serves it or, with ``--open``, with
its key check and audit trail taken out: the ingest benchmark's baseline for what keys cost."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from prediction_logger.api import create_app
from prediction_logger.config import Settings
from vigil.adapters.auth import Audited
from vigil.adapters.http import serve
from vigil.wire.access import Caller

__all__ = ["without_keys"]


def without_keys(app: FastAPI) -> FastAPI:
    """The same app answering every request as an admin, auditing nothing."""
    caller = Caller("bench", "bench", frozenset({"admin"}), frozenset({"*"}))
    for route in app.routes:
        dependant = getattr(route, "dependant", None)
        for dependency in dependant.dependencies if dependant is not None else []:
            call = dependency.call
            if call is not None and call.__qualname__.startswith("allowed.<locals>"):
                app.dependency_overrides[call] = lambda: caller
    app.user_middleware = [m for m in app.user_middleware if m.cls is not Audited]
    return app


if __name__ == "__main__":
    settings = Settings()
    app = create_app(settings)
    if "--open" in sys.argv:
        app = without_keys(app)
    serve(app, settings.prediction_logger_host, settings.prediction_logger_port, settings.log_level)
