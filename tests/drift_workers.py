"""Drift detector workers as separate processes, as production runs them (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from tests.access import SESSION
from vigil.adapters.bus import ensure_topics
from vigil.adapters.settings import VigilSettings
from vigil.wire.topics import PREDICTIONS, drift_topics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class DriftWorkers:
    """Workers of one drift-detector group (its own consumer groups and transactions).

    They read ``predictions``: without one, a private copy of the predictions topic created
    for the group (and deleted with it), so that no other test's workers count its events.
    """

    logs: Path
    settings: dict[str, str] = field(default_factory=dict)
    app_id: str = field(default_factory=lambda: f"test-drift-{uuid.uuid4().hex[:8]}")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    predictions: str = ""
    own_predictions: bool = False

    def __post_init__(self) -> None:
        if not self.predictions:
            self.predictions = f"test-predictions-{self.app_id}"
            self.own_predictions = True
            topic = replace(PREDICTIONS, name=self.predictions)
            asyncio.run(ensure_topics(VigilSettings().kafka_bootstrap, [topic]))

    def start(self, name: str) -> None:
        """Start worker ``name`` (the same name again after a kill: it resumes its work)."""
        self.ports.setdefault(name, free_port())
        env = {
            **os.environ,
            "VIGIL_DRIFT_APP_ID": self.app_id,
            "VIGIL_DRIFT_WORKER_ID": name,
            "VIGIL_DRIFT_WEB_PORT": str(self.ports[name]),
            "VIGIL_DRIFT_AUTO_OFFSET_RESET": "latest",
            "VIGIL_DRIFT_PREDICTIONS_TOPIC": self.predictions,
            **self.settings,
        }
        log = (self.logs / f"{self.app_id}-{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "drift_detector"], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"worker {name} exited:\n{self.tail(name)}")
            try:
                url = f"http://127.0.0.1:{self.ports[name]}/readyz"
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"worker {name} never became ready:\n{self.tail(name)}")

    def status(self, name: str) -> dict[str, object]:
        response = httpx.get(
            f"http://127.0.0.1:{self.ports[name]}/v1/status", timeout=5, headers=SESSION
        )
        response.raise_for_status()
        body: dict[str, object] = response.json()
        return body

    def kill(self, name: str) -> None:
        """``kill -9``: no shutdown, no flush."""
        process = self.processes[name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def tail(self, name: str, lines: int = 60) -> str:
        text = (self.logs / f"{self.app_id}-{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop every worker and delete the group's internal topics."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(self._delete_topics())

    async def _delete_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=VigilSettings().kafka_bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            mine = [t.name for t in drift_topics(self.app_id)]
            mine += [self.predictions] if self.own_predictions else []
            await admin.delete_topics([t for t in mine if t in existing])
        finally:
            await admin.close()
