"""Runs every Vigil service as its own process, as `make up` does, on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.drift_workers import free_port

SERVICES = ("registry", "prediction_logger", "feedback", "alerting", "drift_detector")
# Services without an HTTP port, started on request (``Stack.workers``).
WORKERS = ("archive", "feedback_joiner")
PORT_SETTING = {
    "registry": "VIGIL_REGISTRY_PORT",
    "prediction_logger": "VIGIL_PREDICTION_LOGGER_PORT",
    "feedback": "VIGIL_FEEDBACK_PORT",
    "alerting": "VIGIL_ALERTING_PORT",
    "drift_detector": "VIGIL_DRIFT_WEB_PORT",
    "console": "VIGIL_CONSOLE_PORT",
}


@dataclass
class Stack:
    """The HTTP services, plus ``workers`` (e.g. ``("archive",)``); every process runs in
    ``cwd`` when given (else the caller's directory)."""

    logs: Path
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: tuple[str, ...] = ()
    cwd: Path | None = None
    console: bool = False  # the console too, on the other services' URLs, once they are up

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self) -> None:
        for service in (*SERVICES, *self.workers):
            self._spawn(service, dict(self.env))
        for service in SERVICES:
            self._wait_ready(service, "/healthz")
        self._wait_ready("drift_detector", "/readyz")  # its partitions are assigned
        for service in self.workers:
            if self.processes[service].poll() is not None:
                raise RuntimeError(f"{service} exited:\n{self.tail(service)}")
        if self.console:
            urls = {
                f"VIGIL_CONSOLE_{name.upper()}_URL": self.url(name)
                for name in ("registry", "alerting", "feedback")
            }
            self._spawn("console", {**self.env, **urls})
            self._wait_ready("console", "/healthz")

    def _spawn(self, service: str, env: dict[str, str]) -> None:
        if service in PORT_SETTING:
            self.ports[service] = free_port()
            env[PORT_SETTING[service]] = str(self.ports[service])
        log = (self.logs / f"{service}.log").open("wb")
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", service],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
        )

    def exited(self) -> dict[str, int]:
        """The services that are no longer running, with their exit codes."""
        codes = {name: process.poll() for name, process in self.processes.items()}
        return {name: code for name, code in codes.items() if code is not None}

    def _wait_ready(self, service: str, path: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.processes[service].poll() is not None:
                raise RuntimeError(f"{service} exited:\n{self.tail(service)}")
            try:
                if httpx.get(self.url(service) + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{service} never became healthy:\n{self.tail(service)}")

    def log(self, service: str) -> str:
        return (self.logs / f"{service}.log").read_text(errors="replace")

    def tail(self, service: str, lines: int = 40) -> str:
        return "\n".join(self.log(service).splitlines()[-lines:])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def stack_env(**overrides: str) -> dict[str, str]:
    """Environment for one isolated stack: its own consumer groups and Redis keys."""
    run = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "VIGIL_DRIFT_APP_ID": f"e2e-drift-{run}",
        "VIGIL_ALERTING_GROUP_ID": f"e2e-alerting-{run}",
        "VIGIL_ALERTING_REDIS_PREFIX": f"e2e:{run}",
        # The tests' webhook receiver listens on loopback, as make up's demo receiver does.
        "VIGIL_ALERTING_ALLOWED_NETWORKS": "127.0.0.0/8",
        # A new alert group is told after a second, not Alertmanager's default 30 s.
        "VIGIL_ALERTING_GROUP_WAIT_SECONDS": "1",
        # Like the detector, alerting reads only what comes once it is up, not the history of
        # every report on this machine's metrics topic.
        "VIGIL_ALERTING_AUTO_OFFSET_RESET": "latest",
        "VIGIL_ARCHIVE_GROUP_ID": f"e2e-archive-{run}",
        # The review queue's candidates and flags (and the flag reports made of them): this
        # stack's own.
        "VIGIL_FEEDBACK_REVIEW_GROUP_ID": f"e2e-review-{run}",
        "VIGIL_FEEDBACK_REVIEW_REDIS_PREFIX": f"e2e:{run}:review",
        # A new group reads only what is produced once it is ready, not the topic's history.
        "VIGIL_DRIFT_AUTO_OFFSET_RESET": "latest",
        **overrides,
    }
