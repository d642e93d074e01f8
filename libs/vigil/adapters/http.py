"""FastAPI pieces every Vigil API shares: error shape, health route, typed adapters, start-up."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import uvicorn
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil.adapters.metrics import instrument
from vigil.adapters.openapi import ErrorBody, error_responses, raw_body_openapi
from vigil.adapters.ports import Unavailable
from vigil.wire.validation import (
    FieldError,
    errors_from_pydantic,
    unreadable_body,
    unsupported_encoding,
)

__all__ = [
    "BodyLimit",
    "ErrorBody",
    "InputRejected",
    "JsonLimits",
    "OpenAdapters",
    "answered_or_503",
    "check_json_shape",
    "create_api",
    "error_responses",
    "health_router",
    "install_error_handlers",
    "json_limits",
    "provider",
    "raw_body_openapi",
    "request_body",
    "serve",
    "stored_or_503",
    "too_large",
]

A = TypeVar("A")
RETRY_LATER = {"Retry-After": "5"}
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


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body over its limit is answered 413, read no further.

    ``Content-Length`` is checked before anything is read, and the body is counted as it
    arrives (chunked bodies have no length). Whatever the route answered after the limit was
    crossed (FastAPI turns a failed read into 400) is replaced by the 413. A ``Content-Encoding``
    other than ``identity`` or ``gzip`` is 415 (read as it is, the body is not what it says).
    """

    def __init__(self, app: Any, max_bytes: int | Callable[[str], int]) -> None:
        self.app = app
        self.limit = max_bytes if callable(max_bytes) else (lambda _: max_bytes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        headers = dict(scope["headers"])
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        if encoding not in (b"", b"identity", b"gzip"):  # request_body inflates gzip
            error = unsupported_encoding(encoding.decode("latin-1"))
            detail = f"Content-Encoding {error.received!r} is not supported: send identity or gzip"
            await _answer(send, InputRejected(detail, [error], 415))
            return
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > limit:
            await _answer(
                send, too_large("request body", limit, f"{length.decode('latin-1')} bytes")
            )
            return
        received, over, started = 0, False, False

        async def counted() -> Any:
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                over = True
                raise _BodyTooLarge
            return message

        async def guarded(message: Any) -> None:
            nonlocal started
            if not over:
                started = True
                await send(message)

        with suppress(_BodyTooLarge):
            await self.app(scope, counted, guarded)
        if over and not started:
            await _answer(send, too_large("request body", limit, f"more than {limit} bytes"))


async def _answer(send: Any, rejected: InputRejected) -> None:
    response = JSONResponse(
        error_body(rejected.detail, rejected.errors), status_code=rejected.status_code
    )
    await response({"type": "http"}, _no_body, send)


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


@dataclass(frozen=True)
class JsonLimits:
    """How deep a JSON body may nest, and how many values (objects, arrays, scalars) it holds."""

    max_depth: int = 32
    max_values: int = 100_000


async def json_limits(request: Request) -> None:
    """A dependency: a JSON body nested too deep or with too many values is refused (413).

    Checked before pydantic sees the body, which FastAPI has already read (within its byte
    limit) by the time dependencies run.
    """
    limits: JsonLimits = request.app.state.json_limits
    body = await request.body()
    if not body or "json" not in request.headers.get("content-type", "json"):
        return
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # FastAPI's own parse names the problem
    check_json_shape(data, limits)


def check_json_shape(data: Any, limits: JsonLimits) -> None:
    """Raise a 413 naming the limit when ``data`` nests or counts beyond ``limits``."""
    stack = [(data, 1)]
    values = 0
    while stack:
        value, depth = stack.pop()
        values += 1
        if values > limits.max_values:
            raise too_large("JSON body", limits.max_values, "more", "values")
        if depth > limits.max_depth:
            raise too_large("JSON nesting", limits.max_depth, f"depth {depth}", "levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def install_error_handlers(app: FastAPI) -> None:
    """Every rejected request answers ``{"detail", "errors": [{field, expected, received}]}``."""

    async def rejected(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InputRejected)
        request.state.audit_detail = exc.detail[:1000]  # why, for the audit trail
        return JSONResponse(
            error_body(exc.detail, exc.errors), status_code=exc.status_code, headers=exc.headers
        )

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = exc.errors()
        errors = errors_from_pydantic(details)
        if any(e["type"] == "json_invalid" for e in details):  # not JSON: unreadable, 400
            detail = f"the body is not JSON: {errors[0].received}"
            request.state.audit_detail = detail[:1000]
            return JSONResponse(error_body(detail, errors), status_code=400)
        detail = f"{len(errors)} invalid field(s): " + "; ".join(str(e) for e in errors[:3])
        request.state.audit_detail = detail[:1000]
        return JSONResponse(error_body(detail, errors), status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own refusals (unreadable JSON, unknown route, wrong method) keep the shape.
        assert isinstance(exc, StarletteHTTPException)
        cause, encoding = exc.__cause__, request.headers.get("content-encoding")
        unreadable = exc.status_code == 400 and cause is not None  # a body it cannot parse
        body = error_body(str(exc.detail), [unreadable_body(cause, encoding)] if unreadable else [])
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Unavailable)
        detail = f"{exc}; nothing was changed, retry later"
        return JSONResponse(error_body(detail, []), status_code=503, headers=RETRY_LATER)

    app.add_exception_handler(InputRejected, rejected)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(StarletteHTTPException, http_error)


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
    max_body_bytes: int | Callable[[str], int] = 1024 * 1024,
    limits: JsonLimits | None = None,
    guard: Any = None,
    on_start: Callable[[FastAPI], Awaitable[None]] | None = None,
) -> FastAPI:
    """A Vigil API: error shape, ``/healthz``, ``/metrics``, the routers, and its adapters.

    The adapters are ``adapters`` when given (fakes, say: nothing is opened), else what
    ``open_adapters`` returns, opened for the app's lifetime. ``provider`` serves them, and
    ``settings``, to routes. No request body may exceed ``max_body_bytes`` (a number, or one
    per request path); routes that depend on ``json_limits`` check bodies against ``limits``.
    Keys are checked and changes audited by ``guard`` (a ``vigil.adapters.auth.Guard``) when
    given, else by one opened on ``settings.kafka``. ``on_start`` runs once both
    are open.
    """
    # Imported here: the access adapters answer refusals with this module's InputRejected.
    from vigil.adapters.auth import Audited, Guard
    from vigil.adapters.settings import VigilSettings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if guard is not None or not routers:  # nothing to guard: no keys to follow
                app.state.guard = guard
            else:
                assert isinstance(settings, VigilSettings), "settings are needed to open keys"
                app.state.guard = await Guard.open(stack, settings.kafka, service)
            app.state.adapters = adapters if adapters is not None else await open_adapters(stack)
            if on_start is not None:
                await on_start(app)
            yield

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.settings = settings
    app.state.json_limits = limits or JsonLimits()
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    # Outermost, so that bodies refused for their size are audited too.
    app.add_middleware(Audited, guard=lambda: getattr(app.state, "guard", None), service=service)
    install_error_handlers(app)
    app.include_router(health_router(service))
    instrument(app)  # GET /metrics, and every request timed (outermost: refusals too)
    # Every route may be refused for an unreadable or oversized body, its encoding, its key or
    # an invalid field; say so, in our shape.
    for router in routers:
        app.include_router(router, responses=error_responses(400, 401, 403, 413, 415, 422))
    return app


def provider(kind: type[T], attribute: str = "adapters") -> Callable[[Request], Awaitable[T]]:
    """A FastAPI dependency serving what ``create_api`` keeps: its adapters, or its settings."""

    async def provide(request: Request) -> T:
        value = getattr(request.app.state, attribute)
        if not isinstance(value, kind):
            raise TypeError(f"app.state.{attribute} is a {type(value).__name__}, not a {kind}")
        return value

    return provide


def too_large(what: str, limit: int, received: str, unit: str = "bytes") -> InputRejected:
    """The 413 answer for a body over one of its limits, naming the limit."""
    return InputRejected(
        f"the {what} is over the limit of {limit} {unit}",
        [FieldError("<body>", f"{what} of at most {limit} {unit}", received)],
        413,
    )


async def request_body(request: Request, max_bytes: int) -> bytes:
    """The request body, gunzipped when sent with ``Content-Encoding: gzip``, at most max_bytes.

    Both the bytes received and the bytes they inflate to are counted as they arrive: a body
    over the limit is refused (413) without being held whole.
    """
    gzip = request.headers.get("content-encoding", "").lower() == "gzip"
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gzip else None
    chunks: list[bytes] = []
    received = size = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise too_large("request body", max_bytes, f"more than {max_bytes} bytes")
        data = chunk if inflater is None else _inflate(inflater, chunk, max_bytes - size)
        size += len(data)
        if size > max_bytes:
            raise too_large("inflated body", max_bytes, f"more than {max_bytes} bytes")
        chunks.append(data)
    if inflater is not None and not inflater.eof:
        raise InputRejected(
            "the body is not valid gzip",
            [FieldError("<body>", "gzip data (Content-Encoding: gzip)", "truncated")],
            400,
        )
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _inflate(inflater: Any, chunk: bytes, room: int) -> bytes:
    """What ``chunk`` inflates to, stopping one byte past ``room``."""
    try:
        data: bytes = inflater.decompress(chunk, room + 1)
    except zlib.error as exc:
        raise InputRejected(
            "the body is not valid gzip",
            [FieldError("<body>", "gzip data (Content-Encoding: gzip)", f"invalid: {exc}")],
            400,
        ) from exc
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


async def answered_or_503(call: Awaitable[T], backend: str, within: float = 10.0) -> T:
    """Await a read from Kafka or Redis; if it fails or takes longer, answer 503 + Retry-After."""
    try:
        return await asyncio.wait_for(call, within)
    except (TimeoutError, Unavailable, KafkaError, RedisError, OSError) as exc:
        raise InputRejected(
            f"{backend} did not answer ({type(exc).__name__}); retry later", [], 503, RETRY_LATER
        ) from exc


def serve(app: FastAPI, host: str, port: int, log_level: str) -> None:
    """Run an API in this process until it is stopped."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False)
