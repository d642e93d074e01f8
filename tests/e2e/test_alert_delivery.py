"""No lost page, no double page: alerting run as processes (as `make up` runs it), against the
real broker and Redis, with one real webhook receiver.

- two replicas sharing the work send each notification once;
- a replica killed with SIGKILL while it was delivering leaves the notification to the next
  process, which delivers it with the same delivery id.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.access import SESSION
from tests.drift_workers import free_port
from tests.kafka_tools import private_copy, publish_reports
from tests.samples import report_at
from vigil.adapters.settings import VigilSettings
from vigil.wire.topics import METRICS, Topic

pytestmark = pytest.mark.e2e


@dataclass
class Receiver:
    """A webhook receiver: each request's delivery id and alerts; ``hold`` keeps the first
    request waiting (no answer) until it is set."""

    url: str = ""
    requests: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    hold: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliveries(self) -> list[str]:
        with self.lock:
            return [d for d, _ in self.requests]

    def wait_for(self, count: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and len(self.deliveries()) < count:
            time.sleep(0.2)
        return len(self.deliveries()) >= count


@contextmanager
def receiver(hold_first: bool = False) -> Iterator[Receiver]:
    found = Receiver(hold=threading.Event() if hold_first else None)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            delivery = self.headers.get("X-Vigil-Delivery", "")
            with found.lock:
                first = not found.requests and not found.held.is_set()
                if not (first and found.hold is not None):
                    found.requests.append((delivery, body["alerts"]))
            if first and found.hold is not None:
                found.held.set()
                found.hold.wait(60)  # the sender is killed meanwhile: nobody hears the answer
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_port}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield found
    finally:
        if found.hold is not None:
            found.hold.set()
        server.shutdown()


class Alerting:
    """``python -m alerting`` processes sharing one consumer group and one Redis prefix."""

    def __init__(self, infra: VigilSettings, logs: Path, reports: Topic) -> None:
        run = uuid.uuid4().hex[:8]
        self.logs = logs
        self.env = {
            **os.environ,
            "VIGIL_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "VIGIL_ALERTING_GROUP_ID": f"e2e-delivery-{run}",
            "VIGIL_ALERTING_REDIS_PREFIX": f"e2e:delivery:{run}",
            "VIGIL_ALERTING_EVENTS_TOPIC": f"test.alerts.delivery.{run}",
            "VIGIL_ALERTING_REPORTS_TOPIC": reports.name,
            "VIGIL_ALERTING_ALLOWED_NETWORKS": "127.0.0.0/8",
            "VIGIL_ALERTING_GROUP_WAIT_SECONDS": "0",
            "VIGIL_ALERTING_DELIVERY_LEASE_SECONDS": "8",
        }
        self.processes: list[tuple[subprocess.Popen[bytes], int]] = []

    def start(self) -> str:
        port = free_port()
        log = (self.logs / f"alerting-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "alerting"],
            env={**self.env, "VIGIL_ALERTING_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((process, port))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"alerting exited: {self.tail()}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"alerting never became healthy: {self.tail()}")

    def tail(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.logs.glob("alerting-*"))
        )

    def stop(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
        for process, _ in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def alerting_processes(infra: VigilSettings, tmp_path: Path) -> Iterator[tuple[Alerting, Topic]]:
    reports = private_copy(infra.kafka_bootstrap, METRICS, uuid.uuid4().hex[:8])
    processes = Alerting(infra, tmp_path, reports)
    try:
        yield processes, reports
    finally:
        processes.stop()


def _subscribe(url: str, hook: str) -> None:
    made = httpx.post(
        url + "/v1/subscriptions",
        json={"name": "oncall", "channel": "webhook", "url": hook, "models": ["*"]},
        headers=SESSION,
        timeout=10,
    )
    assert made.status_code == 201, made.text


def test_two_replicas_send_each_notification_once(
    infra: VigilSettings, alerting_processes: tuple[Alerting, Topic]
) -> None:
    processes, reports = alerting_processes
    with receiver() as hook:
        first = processes.start()
        processes.start()
        _subscribe(first, hook.url)
        # Twelve model versions drift: twelve groups, each notified once, spread over the
        # replicas by the reports' partitions.
        models = [f"pair-{uuid.uuid4().hex[:6]}-{i}" for i in range(12)]
        asyncio.run(
            publish_reports(infra.kafka_bootstrap, reports, [report_at(m, 0, True) for m in models])
        )
        assert hook.wait_for(12, 60), processes.tail()
        time.sleep(3)  # time for a duplicate to arrive, if one were sent
        deliveries = hook.deliveries()
        assert len(deliveries) == len(set(deliveries)) == 12
        told = sorted(a["model_id"] for _, alerts in hook.requests for a in alerts)
        assert told == sorted(models)


def test_a_killed_replica_s_decided_notification_is_delivered_after_restart(
    infra: VigilSettings, alerting_processes: tuple[Alerting, Topic]
) -> None:
    processes, reports = alerting_processes
    with receiver(hold_first=True) as hook:
        url = processes.start()
        _subscribe(url, hook.url)
        model = f"killed-{uuid.uuid4().hex[:6]}"
        asyncio.run(publish_reports(infra.kafka_bootstrap, reports, [report_at(model, 0, True)]))
        assert hook.held.wait(60), processes.tail()  # the first attempt is in flight
        (victim, _) = processes.processes[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        restarted = processes.start()
        assert hook.wait_for(1, 60), processes.tail()
        ((delivery, alerts),) = hook.requests
        assert [a["model_id"] for a in alerts] == [model]
        alerts_now = httpx.get(
            restarted + "/v1/alerts", params={"model_id": model}, headers=SESSION, timeout=10
        ).json()
        (alert,) = alerts_now
        history = httpx.get(
            f"{restarted}/v1/alerts/{alert['fingerprint']}/history", headers=SESSION, timeout=10
        ).json()
        told = [(e["outcome"], e["delivery_id"]) for e in history if e["kind"] == "notification"]
        # Decided once (by the killed process), delivered once (by the new one), same id.
        assert told == [("pending", delivery), ("delivered", delivery)]
