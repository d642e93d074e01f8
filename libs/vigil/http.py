"""FastAPI pieces every Vigil API shares: error shape, health route, service start-up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from vigil.validation import FieldError, errors_from_pydantic

__all__ = ["InputRejected", "health_router", "install_error_handlers", "serve"]


class InputRejected(Exception):
    """A request Vigil refuses, with every field error; becomes a JSON error response."""

    def __init__(
        self,
        detail: str,
        errors: Sequence[FieldError] = (),
        status_code: int = 422,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.status_code = status_code
        self.headers = headers


def error_body(detail: str, errors: Sequence[FieldError]) -> dict[str, Any]:
    return {"detail": detail, "errors": [e.as_dict() for e in errors]}


def install_error_handlers(app: FastAPI) -> None:
    """Every rejected request answers ``{"detail", "errors": [{field, expected, received}]}``."""

    async def rejected(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InputRejected)
        return JSONResponse(
            error_body(exc.detail, exc.errors), status_code=exc.status_code, headers=exc.headers
        )

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = errors_from_pydantic(exc.errors())
        detail = f"{len(errors)} invalid field(s): " + "; ".join(str(e) for e in errors[:3])
        return JSONResponse(error_body(detail, errors), status_code=422)

    app.add_exception_handler(InputRejected, rejected)
    app.add_exception_handler(RequestValidationError, invalid)


def health_router(service: str) -> APIRouter:
    """``GET /healthz``: the process is up and serving."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    return router


def serve(app: FastAPI, host: str, port: int, log_level: str) -> None:
    """Run an API in this process until it is stopped."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False)
