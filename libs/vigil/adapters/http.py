"""FastAPI pieces every Vigil API shares: error shape, health route, typed adapters, start-up."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vigil.adapters.ports import Unavailable
from vigil.wire.validation import FieldError, errors_from_pydantic

__all__ = [
    "InputRejected",
    "OpenAdapters",
    "create_api",
    "health_router",
    "install_error_handlers",
    "provider",
    "request_body",
    "serve",
    "stored_or_503",
]

A = TypeVar("A")
T = TypeVar("T")
# Starts a service's clients, registering how to close each on the stack; returns them.
OpenAdapters = Callable[[AsyncExitStack], Awaitable[A]]


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


def create_api(
    title: str,
    service: str,
    open_adapters: OpenAdapters[A],
    adapters: A | None = None,
    routers: Sequence[APIRouter] = (),
    settings: object = None,
) -> FastAPI:
    """A Vigil API: error shape, ``/healthz``, ``/metrics``, the routers, and its adapters.

    The adapters are ``adapters`` when given (fakes, say: nothing is opened), else what
    ``open_adapters`` returns, opened for the app's lifetime. ``provider`` serves them, and
    ``settings``, to routes.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.adapters = adapters if adapters is not None else await open_adapters(stack)
            yield

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health_router(service))

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


def provider(kind: type[T], attribute: str = "adapters") -> Callable[[Request], Awaitable[T]]:
    """A FastAPI dependency serving what ``create_api`` keeps: its adapters, or its settings."""

    async def provide(request: Request) -> T:
        value = getattr(request.app.state, attribute)
        if not isinstance(value, kind):
            raise TypeError(f"app.state.{attribute} is a {type(value).__name__}, not a {kind}")
        return value

    return provide


async def request_body(request: Request, max_bytes: int) -> bytes:
    """The request body, gunzipped when sent with ``Content-Encoding: gzip``, at most max_bytes."""
    body = await request.body()
    if request.headers.get("content-encoding", "").lower() != "gzip":
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise InputRejected(
            "the body is not valid gzip",
            [FieldError("<body>", "gzip data (Content-Encoding: gzip)", f"invalid: {exc}")],
            400,
        ) from exc
    if len(data) > max_bytes:
        raise InputRejected(f"the body inflates to more than {max_bytes} bytes", [], 413)
    return data


async def stored_or_503(write: Awaitable[None], within: float = 10.0) -> None:
    """Await a bus write; if Kafka does not acknowledge it in time, answer 503 + Retry-After."""
    try:
        await asyncio.wait_for(write, within)
    except TimeoutError as exc:
        raise InputRejected(
            f"Kafka has not acknowledged the write within {within:g} s; retry later",
            [],
            503,
            {"Retry-After": "5"},
        ) from exc
    except Unavailable as exc:
        raise InputRejected(
            f"{exc.backend} did not acknowledge the write ({exc.cause}); nothing was"
            " stored, retry later",
            [],
            503,
            {"Retry-After": "5"},
        ) from exc


def serve(app: FastAPI, host: str, port: int, log_level: str) -> None:
    """Run an API in this process until it is stopped."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False)
