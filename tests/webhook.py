"""A real HTTP server that records the webhook calls Vigil makes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookInbox:
    def __init__(self, url: str) -> None:
        self.url = url
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.bodies.append(body)

    def alerts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [a for body in self.bodies for a in body["alerts"]]

    def wait_for(self, done: Callable[[list[dict[str, Any]]], bool], seconds: float) -> bool:
        """Wait until ``done(alerts)`` holds; False if it still does not after ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if done(self.alerts()):
                return True
            time.sleep(0.2)
        return done(self.alerts())


@contextmanager
def webhook_inbox() -> Iterator[WebhookInbox]:
    """Serve a webhook on a free loopback port for the duration of the block."""
    holder: list[WebhookInbox] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            holder[0].add(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(WebhookInbox(f"http://127.0.0.1:{server.server_port}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
