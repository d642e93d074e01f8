"""What every console page shares: its adapters, the signed-in visitor, CSRF, rendering."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from console.config import Settings
from console.sessions import Session, SessionStore
from console.upstream import Refused, Services, Unanswered
from vigil.adapters.auth import authenticate
from vigil.adapters.http import InputRejected, provider
from vigil.adapters.ports import Keyring
from vigil.wire.access import Caller, Permission
from vigil.wire.records import utcnow

__all__ = [
    "SESSION_COOKIE",
    "SIGNIN_COOKIE",
    "Console",
    "ConsoleDep",
    "PageError",
    "SettingsDep",
    "SignInNeeded",
    "Visitor",
    "VisitorDep",
    "caller_of",
    "check_csrf",
    "read_form",
    "render",
]

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
SESSION_COOKIE = "vigil_session"
SIGNIN_COOKIE = "vigil_signin"  # the sign-in form's CSRF token, before there is a session
P = Permission


@dataclass(frozen=True)
class Console:
    """The console's adapters: where sessions live, the keys it knows, the services it reads."""

    sessions: SessionStore
    keyring: Keyring
    services: Services


ConsoleDep = Annotated[Console, Depends(provider(Console))]
SettingsDep = Annotated[Settings, Depends(provider(Settings, "settings"))]


class SignInNeeded(Exception):
    """No session, an expired one, or a key that no longer works: back to the sign-in page."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class PageError(Exception):
    """A page that cannot be shown; rendered as an error page with ``status``."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class Visitor:
    """A signed-in browser: its session id and session, and who its key belongs to."""

    session_id: str
    session: Session
    caller: Caller

    def may(self, permission: Permission) -> bool:
        """Whether the key's roles grant ``permission``."""
        return self.caller.may(permission)

    def need(self, permission: Permission, what: str) -> None:
        """The 403 page naming the key's roles and the roles that grant ``permission`` (to do
        ``what``), unless the key's roles grant it."""
        if self.may(permission):
            return
        roles = ", ".join(sorted(self.caller.roles))
        needed = ", ".join(self.caller.roles_with(permission))
        if "admin" not in needed:
            needed += " or admin"
        raise PageError(
            403, "Not allowed", f"Your key's roles ({roles}) may not {what}: that needs {needed}."
        )


def page_failure(exc: Refused | Unanswered, refused: str = "Refused") -> Exception:
    """What a page shows when a service refuses or fails the call it needs: a 503 page, the
    sign-in page for a key no longer valid, or a page titled by the status (``refused`` for
    a 409 or 422: the service said no to what was asked)."""
    if isinstance(exc, Unanswered):
        return PageError(503, f"The {exc.service} is not answering", exc.reason)
    if exc.status == 401:
        return SignInNeeded(f"Signed out: {exc.detail}")
    titles = {403: "Not allowed", 404: "Not found", 409: refused, 422: refused}
    return PageError(exc.status, titles.get(exc.status, "Refused"), exc.detail)


async def caller_of(keyring: Keyring, key: str) -> Caller:
    """Who ``key`` belongs to, from the keys every service follows; InputRejected (401) if
    it is unknown, revoked or expired (an unknown key is looked for again once caught up)."""
    try:
        return authenticate(keyring, f"Bearer {key}", utcnow())
    except InputRejected as exc:
        if not exc.errors or exc.errors[0].received != "unknown":
            raise
    await keyring.catch_up()  # a key made a moment ago
    return authenticate(keyring, f"Bearer {key}", utcnow())


async def visitor(request: Request, console: ConsoleDep, settings: SettingsDep) -> Visitor:
    """The signed-in visitor, or SignInNeeded; the key is checked again on every page."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if not session_id or len(session_id) > 100:
        raise SignInNeeded()
    session = await console.sessions.load(session_id, settings.console_session_seconds)
    if session is None:
        raise SignInNeeded("Your session has ended; sign in again.")
    try:
        caller = await caller_of(console.keyring, session.key)
    except InputRejected as exc:
        await console.sessions.drop(session_id)
        raise SignInNeeded(f"Signed out: {exc.detail}.") from exc
    return Visitor(session_id, session, caller)


VisitorDep = Annotated[Visitor, Depends(visitor)]


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the body size is limited by the app)."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        raise PageError(415, "Unsupported form", "The form was not sent as a web form.")
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def check_csrf(form: dict[str, str], expected: str) -> None:
    """Refuse (403) a form whose CSRF token is missing or not the expected one."""
    sent = form.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PageError(
            403,
            "Form refused",
            "The form's security token is missing or out of date. Reload the page and try again.",
        )


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    visitor: Visitor | None = None,
    status: int = 200,
) -> HTMLResponse:
    """A page, with the visitor's name, its navigation and the sign-out form's token."""
    base: dict[str, Any] = {"visitor": None, "csrf": "", "may_alerts": False}
    if visitor is not None:
        base = {
            "visitor": visitor.caller,
            "csrf": visitor.session.csrf,
            "may_alerts": visitor.may(P.ALERTS_READ),
        }
    return TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status)
