"""What every browser test shares: Debian's Chromium under Playwright (pinned in
pyproject.toml), the console served on a free port, and screenshots kept as test artefacts.

The console runs in this process under uvicorn; unless a test says otherwise, the registry,
alerting and feedback services are the in-process stand-in of ``tests.console_standin`` (the
console's HTTP client is given its transport). A test module defines its ``stand_in``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from tests.console_standin import StandIn, console_app

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage"]
# Screenshots of each step, kept after the run (CI keeps the run directory).
SCREENSHOTS = Path(os.environ.get("VIGIL_RUN_DIR", ".run")) / "screenshots"
sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free local port until the generator is closed; yields its URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), f"the console could not start on port {port}"
        assert time.monotonic() < deadline, "the console did not start within 10 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def console_url(stand_in: StandIn) -> Iterator[str]:
    """The console on the module's stand-in services."""
    yield from serve(console_app(stand_in))


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        try:
            launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        except Exception as exc:  # not installed or cannot start here: say exactly why
            pytest.skip(f"Chromium at {CHROMIUM} could not be launched: {exc}")
        yield launched
        launched.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[object, str], Path]:
    """``screenshot(page, "step")`` saves the whole page as
    ``<run dir>/screenshots/<test>-<step>.png`` and returns the path."""
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def take(page: object, step: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{test}-{step}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path

    return take
