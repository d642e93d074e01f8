"""A real HTTP server that records the webhook calls Vigil makes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The README's five lines verifying X-Vigil-Signature, as a receiver would paste them.
VERIFY_SNIPPET = """
import hashlib, hmac, time
def verified(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(","))
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"]) and abs(time.time() - int(parts["t"])) <= tolerance
"""


def readme_verifier() -> Callable[[str, str, bytes], bool]:
    """``verified(secret, header, body)`` from the README's snippet."""
    namespace: dict[str, Any] = {}
    exec(VERIFY_SNIPPET, namespace)
    verified: Callable[[str, str, bytes], bool] = namespace["verified"]
    return verified


class WebhookInbox:
    def __init__(self, url: str) -> None:
        self.url = url
        self.bodies: list[dict[str, Any]] = []
        # Each request as received: its headers and its raw body (what a signature covers).
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()

    def add(self, body: dict[str, Any], headers: dict[str, str], raw: bytes) -> None:
        with self._lock:
            self.bodies.append(body)
            self.requests.append((headers, raw))

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
            raw = self.rfile.read(length)
            holder[0].add(json.loads(raw), dict(self.headers.items()), raw)
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
