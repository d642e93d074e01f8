"""Debian's Prometheus scrapes Vigil's processes: an API (the registry) on its own port and a
worker without an API (the archive) on ``VIGIL_METRICS_PORT``, and answers queries about them
with Vigil's metric names. The configuration is deploy/prometheus/prometheus.yml's, pointed at
this test's ports."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.drift_workers import free_port
from tests.samples import PREDICTION
from vigil.adapters.bus import ensure_topics, new_producer, publish
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import Topic

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
EVENTS = 90

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="Debian's prometheus is not installed (`make install` installs it)",
)


def _start(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _scrape_config(targets: dict[str, int]) -> dict[str, Any]:
    """The stack's configuration with its jobs pointed at ``targets`` and scraped every
    second; the rules are Vigil's own (their path made absolute)."""
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(CONFIG.parent / f) for f in config["rule_files"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(targets) <= set(jobs), f"{set(targets) - set(jobs)} not in {CONFIG}"
    config["scrape_configs"] = [
        {**jobs[name], "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        for name, port in targets.items()
    ]
    return config


async def _produce(bootstrap: str, topic: Topic) -> None:
    events = [
        PREDICTION.model_copy(
            update={"prediction_id": f"p-{i}", "timestamp": PREDICTION.timestamp + timedelta(i)}
        )
        for i in range(EVENTS)
    ]
    producer = new_producer(bootstrap, "test-prometheus")
    await producer.start()
    try:
        await publish(producer, topic, Codec(PredictionEvent), events, lambda e: e.prediction_id)
    finally:
        await producer.stop()


@pytest.fixture
def processes(infra: VigilSettings, tmp_path: Path) -> Iterator[tuple[dict[str, int], Topic]]:
    """The registry and an archive of a topic of its own, each as its own process."""
    topic = Topic(f"test-prom-{uuid.uuid4().hex[:8]}", 3, "prediction_id", PredictionEvent)
    asyncio.run(ensure_topics(infra.kafka_bootstrap, [topic]))
    ports = {"registry": free_port(), "archive": free_port()}
    registry = _start(
        "registry",
        {**os.environ, "VIGIL_REGISTRY_PORT": str(ports["registry"])},
        tmp_path / "registry.log",
    )
    archive_env = {
        **os.environ,
        "VIGIL_METRICS_PORT": str(ports["archive"]),
        "VIGIL_ARCHIVE_URL": str(tmp_path / "archive"),
        "VIGIL_ARCHIVE_TOPIC": topic.name,
        "VIGIL_ARCHIVE_GROUP_ID": f"test-{topic.name}",
        "VIGIL_ARCHIVE_MAX_SECONDS": "0.5",
    }
    archive = _start("archive", archive_env, tmp_path / "archive.log")
    try:
        yield ports, topic
    finally:
        _stop(registry)
        _stop(archive)


@pytest.fixture
def prometheus(
    tmp_path: Path, processes: tuple[dict[str, int], Topic]
) -> Iterator[tuple[str, Topic]]:
    """Prometheus scraping the processes, on a free port with its own storage."""
    ports, topic = processes
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(_scrape_config(ports)))
    port = free_port()
    log = tmp_path / "prometheus.log"
    server = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}", topic
    finally:
        _stop(server)


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    try:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    except httpx.HTTPError:
        return []  # not listening yet
    if answer.status_code != 200:
        return []
    body = answer.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _eventually(url: str, promql: str, seconds: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = _query(url, promql)
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"no sample of {promql} within {seconds} s")


def test_prometheus_scrapes_an_api_and_a_worker_and_answers_with_vigil_metrics(
    infra: VigilSettings, prometheus: tuple[str, Topic], tmp_path: Path
) -> None:
    url, topic = prometheus
    try:
        _eventually(url, 'count(up{job=~"registry|archive"} == 1) == 2')
        up = _query(url, "up")
        assert {s["metric"]["job"]: s["value"][1] for s in up} == {"registry": "1", "archive": "1"}

        # The API times every request by route; Prometheus' own scrapes of /metrics count too.
        (timed,) = _eventually(
            url, 'vigil_http_request_seconds_count{job="registry",route="/metrics",status="200"}'
        )
        assert float(timed["value"][1]) >= 1

        asyncio.run(_produce(infra.kafka_bootstrap, topic))
        read = _eventually(
            url,
            f'sum(vigil_stage_records_in_total{{job="archive",topic="{topic.name}"}}) == {EVENTS}',
        )
        assert float(read[0]["value"][1]) == EVENTS
        # Every partition it owns and fetched from has its lag, and the archive has caught up.
        lag = _eventually(
            url,
            f'count(vigil_stage_consumer_lag{{job="archive",stage="archive",topic="{topic.name}"}}'
            " == 0) == 3",
        )
        assert float(lag[0]["value"][1]) == 3
        # Vigil's own rules are loaded, and none fires on a healthy pair of processes.
        rules = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        names = {rule["name"] for group in rules for rule in group["rules"]}
        assert {"VigilProcessDown", "VigilConsumerLagGrowing", "VigilDeadLetters"} <= names
        firing = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        assert [a for a in firing if a["state"] == "firing"] == []
    except AssertionError as failure:
        logs = {p.name: p.read_text()[-2000:] for p in tmp_path.glob("*.log")}
        raise AssertionError(f"{failure}\n{logs}") from failure
