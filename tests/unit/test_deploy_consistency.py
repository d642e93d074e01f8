"""docker-compose.yml describes the same stack as the Makefile's scripts and the settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerting.config import Settings as AlertingSettings
from console.config import Settings as ConsoleSettings
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
    "console": ConsoleSettings.model_fields["console_port"].default,
}


WORKERS = ["archive", "feedback_joiner"]  # stream processors without an HTTP port


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
    # Both Redis servers stay on the compose network, behind a password.
    for redis in ("redis", "redis-idempotency"):
        assert "ports" not in COMPOSE[redis]
        assert "--requirepass" in " ".join(COMPOSE[redis]["command"])
        assert "${VIGIL_REDIS_PASSWORD:?" in COMPOSE[redis]["environment"]["REDIS_PASSWORD"]
    pom = (ROOT / "deploy/pom.xml").read_text()
    kafka_version = re.search(r"<kafka.version>([^<]+)<", pom)[1]  # type: ignore[index]
    assert COMPOSE["kafka"]["image"] == f"apache/kafka:{kafka_version}"
    assert "127.0.0.1:9092" in COMPOSE["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]


REDIS_SCRIPT = (ROOT / "deploy/redis.sh").read_text()


def _local_redis(name: str) -> list[str]:
    """One server's fields in deploy/redis.sh after its name: port, ..., maxmemory, policy."""
    found = re.search(rf"^\w+=\({name} (.*?)\)$", REDIS_SCRIPT, re.M | re.S)
    assert found, f"deploy/redis.sh does not describe {name}"
    return found[1].split()


@pytest.mark.parametrize(
    ("name", "port", "budget", "policy"),
    [
        ("redis", "6379", "VIGIL_STATE_REDIS_MAXMEMORY", "noeviction"),
        ("redis-idempotency", "6380", "VIGIL_IDEMPOTENCY_REDIS_MAXMEMORY", "volatile-ttl"),
    ],
)
def test_each_redis_has_the_same_budget_and_policy_in_both(
    name: str, port: str, budget: str, policy: str
) -> None:
    fields = _local_redis(name)
    assert (fields[0], fields[-1]) == (port, policy)
    command = " ".join(COMPOSE[name]["command"])
    assert f"--maxmemory-policy {policy}" in command
    assert '--maxmemory "$$MAXMEMORY"' in command
    local_default = re.search(rf"\${{{budget}:-(\w+)}}", REDIS_SCRIPT)
    compose_default = re.search(
        rf"\${{{budget}:-(\w+)}}", COMPOSE[name]["environment"]["MAXMEMORY"]
    )
    assert local_default and compose_default
    assert local_default[1] == compose_default[1]


def test_the_prediction_logger_keeps_its_keys_on_the_idempotency_redis_in_both() -> None:
    compose_url = COMPOSE["prediction_logger"]["environment"]["VIGIL_IDEMPOTENCY_REDIS_URL"]
    assert compose_url.endswith("@redis-idempotency:6379/0")
    assert "redis-idempotency" in COMPOSE["prediction_logger"]["depends_on"]
    services = (ROOT / "deploy/services.sh").read_text()
    local_url = re.search(r"VIGIL_IDEMPOTENCY_REDIS_URL:-([^}]+)}", services)
    assert local_url, "deploy/services.sh does not point the logger at the idempotency Redis"
    assert local_url[1] == f"redis://127.0.0.1:{_local_redis('redis-idempotency')[0]}/0"
