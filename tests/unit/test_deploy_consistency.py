"""docker-compose.yml describes the same stack as the Makefile's scripts and the settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from alerting.config import Settings as AlertingSettings
from drift_detector.config import Settings as DriftSettings
from feedback.config import Settings as FeedbackSettings
from prediction_logger.config import Settings as LoggerSettings
from registry.config import Settings as RegistrySettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
SCRIPT_PORTS = dict(
    re.findall(
        r"([\w.]+):(\d+|-)",
        re.search(r'SERVICES="([^"]+)"', (ROOT / "deploy/services.sh").read_text())[1],
    )  # type: ignore[index]
)
DEFAULT_PORTS = {
    "registry": RegistrySettings.model_fields["registry_port"].default,
    "prediction_logger": LoggerSettings.model_fields["prediction_logger_port"].default,
    "feedback": FeedbackSettings.model_fields["feedback_port"].default,
    "alerting": AlertingSettings.model_fields["alerting_port"].default,
    "drift_detector": DriftSettings.model_fields["drift_web_port"].default,
}


WORKERS = ["archive"]  # stream processors without an HTTP port


def test_every_service_runs_in_both_with_the_same_port() -> None:
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__main__.py").exists())
    assert sorted(SCRIPT_PORTS) == services
    assert sorted(n for n, port in SCRIPT_PORTS.items() if port == "-") == WORKERS
    for name in WORKERS:
        assert COMPOSE[name]["command"] == ["python", "-m", name]
        assert "ports" not in COMPOSE[name]
    for name in sorted(set(services) - set(WORKERS)):
        port = DEFAULT_PORTS[name]
        assert int(SCRIPT_PORTS[name]) == port
        assert COMPOSE[name]["ports"] == [f"127.0.0.1:{port}:{port}"]  # loopback only
        assert COMPOSE[name]["command"] == ["python", "-m", name]


def test_kafka_and_redis_match_the_local_stack() -> None:
    assert COMPOSE["kafka"]["ports"] == ["127.0.0.1:9092:9092"]
    # Redis stays on the compose network, behind a password.
    assert "ports" not in COMPOSE["redis"]
    assert "--requirepass" in " ".join(COMPOSE["redis"]["command"])
    assert "${VIGIL_REDIS_PASSWORD:?" in COMPOSE["redis"]["environment"]["REDIS_PASSWORD"]
    pom = (ROOT / "deploy/pom.xml").read_text()
    kafka_version = re.search(r"<kafka.version>([^<]+)<", pom)[1]  # type: ignore[index]
    assert COMPOSE["kafka"]["image"] == f"apache/kafka:{kafka_version}"
    assert "127.0.0.1:9092" in COMPOSE["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
