"""The console's web app: sign-in and sign-out, error pages, security headers, its adapters."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from console import (
    audit_pages,
    health_pages,
    model_pages,
    pages,
    report_pages,
    review_pages,
    silence_pages,
)
from console.config import Settings
from console.sessions import RedisSessions, Session, new_token
from console.upstream import Services
from console.web import (
    HERE,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Console,
    ConsoleDep,
    PageError,
    SettingsDep,
    SignInNeeded,
    VisitorDep,
    caller_of,
    check_csrf,
    read_form,
    render,
)
from vigil.adapters.bus import started
from vigil.adapters.http import InputRejected, create_api
from vigil.adapters.keyring import KeyringFollower

__all__ = ["create_app"]

router = APIRouter(include_in_schema=False)
# Scripts and styles only from the console itself; no framing, no forms posted elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _cookie(response: Response, settings: Settings, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.console_cookie_secure,
    )


def _signin_page(
    request: Request, settings: Settings, message: str = "", status: int = 200
) -> HTMLResponse:
    """The sign-in form, with a fresh CSRF token in both the form and a cookie."""
    token = new_token()
    response = render(
        request, "signin.html", {"signin_csrf": token, "message": message}, None, status
    )
    _cookie(response, settings, SIGNIN_COOKIE, token, 3600)
    return response


@router.get("/")
async def home(request: Request) -> Response:
    """The fleet overview (which sends a visitor without a session to sign in)."""
    return RedirectResponse("/fleet", status_code=303)


@router.get("/signin")
async def signin_form(request: Request, settings: SettingsDep, message: str = "") -> Response:
    """The sign-in page: one field, the API key."""
    return _signin_page(request, settings, message[:200])


@router.post("/signin")
async def signin(request: Request, console: ConsoleDep, settings: SettingsDep) -> Response:
    """Check the key, then keep it server-side in a new session; the browser gets its id."""
    form = await read_form(request)
    check_csrf(form, request.cookies.get(SIGNIN_COOKIE, ""))
    key = form.get("key", "").strip()
    try:
        await caller_of(console.keyring, key)
    except InputRejected as exc:
        return _signin_page(request, settings, f"Not signed in: {exc.detail}.", 401)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await console.sessions.drop(old)  # a new id at each sign-in: none can be planted
    session_id = new_token()
    await console.sessions.save(
        session_id, Session(key=key, csrf=new_token()), settings.console_session_seconds
    )
    response = RedirectResponse("/fleet", status_code=303)
    _cookie(response, settings, SESSION_COOKIE, session_id, settings.console_session_seconds)
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(request: Request, visitor: VisitorDep, console: ConsoleDep) -> Response:
    """End the session: the key is forgotten server-side and the cookie cleared."""
    check_csrf(await read_form(request), visitor.session.csrf)
    await console.sessions.drop(visitor.session_id)
    response = RedirectResponse("/signin?message=Signed+out.", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _install_pages(app: FastAPI, settings: Settings) -> None:
    async def sign_in_needed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInNeeded)
        if exc.message:
            return _signin_page(request, settings, exc.message, 401)
        return RedirectResponse("/signin", status_code=303)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        context = {"title": exc.title, "detail": exc.detail}
        return render(request, "error.html", context, None, exc.status)

    app.add_exception_handler(SignInNeeded, sign_in_needed)
    app.add_exception_handler(PageError, page_error)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():  # a page's own CSP (the report) stays
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.include_router(pages.router)
    app.include_router(report_pages.router)
    app.include_router(review_pages.router)
    app.include_router(silence_pages.router)
    app.include_router(health_pages.router)
    app.include_router(audit_pages.router)
    app.include_router(model_pages.router)


async def _open(stack: AsyncExitStack, settings: Settings) -> Console:
    sessions = await RedisSessions.open(stack, settings.redis_url, settings.console_redis_prefix)
    keyring = await started(stack, KeyringFollower(settings.kafka))
    client = httpx.AsyncClient(timeout=settings.console_timeout_seconds)
    stack.push_async_callback(client.aclose)
    services = Services(
        client,
        settings.console_registry_url,
        settings.console_alerting_url,
        settings.console_feedback_url,
    )
    return Console(sessions, keyring, services)


def create_app(settings: Settings | None = None, console: Console | None = None) -> FastAPI:
    """The console; on ``console``'s adapters when given (fakes: nothing is opened)."""
    config = settings or Settings()

    async def opener(stack: AsyncExitStack) -> Console:
        return await _open(stack, config)

    # No API routers go to create_api: the console checks no bearer keys of its own and
    # changes nothing itself; each change is made, and audited, by the service it calls.
    app = create_api(
        "Vigil console",
        "console",
        opener,
        console,
        settings=config,
        max_body_bytes=config.console_max_body_bytes,
    )
    _install_pages(app, config)
    return app
