"""Kafka security settings: validated at start-up, turned into aiokafka's options, the same
for the services (``VIGIL_KAFKA_*``) and the SDK (arguments, defaulting to the variables)."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest

from vigil.adapters.kafka_security import (
    KafkaConnection,
    KafkaSecurity,
    client_options,
    connection,
)
from vigil.adapters.settings import InvalidSettings, VigilSettings
from vigil.sdk.logger import _LoggerBase
from vigil.sdk.transport import KafkaTransport, transport_for

SASL = {
    "kafka_security_protocol": "SASL_PLAINTEXT",
    "kafka_sasl_username": "vigil",
    "kafka_sasl_password": "s3cret-pw",
}


def test_plaintext_is_the_default_and_a_bare_bootstrap_means_it() -> None:
    settings = VigilSettings()
    assert settings.kafka == KafkaConnection("127.0.0.1:9092")
    assert client_options("h:1") == {"bootstrap_servers": "h:1", "security_protocol": "PLAINTEXT"}
    assert connection("h:1") == KafkaConnection("h:1", KafkaSecurity())


def test_sasl_settings_become_aiokafka_options_and_the_password_stays_hidden() -> None:
    settings = VigilSettings(kafka_bootstrap="k:9094", **SASL)  # type: ignore[arg-type]
    assert client_options(settings.kafka) == {
        "bootstrap_servers": "k:9094",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "vigil",
        "sasl_plain_password": "s3cret-pw",
    }
    assert "s3cret-pw" not in repr(settings.kafka) + str(settings.kafka) + repr(settings)
    assert str(settings.kafka) == "k:9094 (SASL_PLAINTEXT, SCRAM-SHA-512 as user 'vigil')"


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")  # any case
    monkeypatch.setenv("VIGIL_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("VIGIL_KAFKA_SASL_USERNAME", "vigil")
    monkeypatch.setenv("VIGIL_KAFKA_SASL_PASSWORD", "pw")
    monkeypatch.setenv("VIGIL_KAFKA_SSL_CAFILE", certifi.where())
    options = client_options(VigilSettings().kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA file's authorities are trusted


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"kafka_security_protocol": "TLS"}, "VIGIL_KAFKA_SECURITY_PROTOCOL"),
        ({"kafka_security_protocol": "SASL_SSL"}, "VIGIL_KAFKA_SASL_USERNAME"),
        ({**SASL, "kafka_sasl_password": ""}, "VIGIL_KAFKA_SASL_PASSWORD"),
        ({**SASL, "kafka_sasl_mechanism": "GSSAPI"}, "VIGIL_KAFKA_SASL_MECHANISM"),
        ({"kafka_sasl_username": "vigil", "kafka_sasl_password": "pw"}, "SASL_PLAINTEXT"),
        ({"kafka_ssl_cafile": certifi.where()}, "VIGIL_KAFKA_SSL_CAFILE"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"},
            "/nonexistent/ca.pem",
        ),
    ],
)
def test_inconsistent_settings_stop_the_start_naming_the_variable(
    settings: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidSettings, match="Kafka security") as refused:
        VigilSettings(**settings)  # type: ignore[arg-type]
    assert named in str(refused.value)
    assert "s3cret-pw" not in str(refused.value)


def test_the_sdk_takes_the_same_options_as_arguments_or_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("VIGIL_KAFKA_SASL_USERNAME", "from-env")
    monkeypatch.setenv("VIGIL_KAFKA_SASL_PASSWORD", "env-pw")
    logger = _LoggerBase(
        "kafka://k:9094", spool_dir=tmp_path, sasl_username="vigil-app", sasl_password="pw"
    )
    transport = logger._delivery.transport
    assert isinstance(transport, KafkaTransport)
    assert transport.kafka == KafkaConnection(
        "k:9094", KafkaSecurity("SASL_PLAINTEXT", sasl_username="vigil-app", sasl_password="pw")
    )
    # The HTTP destination ignores the Kafka options (even inconsistent ones).
    monkeypatch.setenv("VIGIL_KAFKA_SECURITY_PROTOCOL", "nonsense")
    assert type(transport_for("http://x", None)).__name__ == "HttpTransport"
    _LoggerBase("http://x:8001", spool_dir=tmp_path)
    with pytest.raises(ValueError, match="VIGIL_KAFKA_SECURITY_PROTOCOL"):
        _LoggerBase("kafka://k:9094", spool_dir=tmp_path)


def test_from_env_prefers_arguments_and_refuses_unknown_ones() -> None:
    env = {"VIGIL_KAFKA_SECURITY_PROTOCOL": "SSL", "VIGIL_KAFKA_SSL_CAFILE": certifi.where()}
    assert KafkaSecurity.from_env(env) == KafkaSecurity("SSL", ssl_cafile=certifi.where())
    assert KafkaSecurity.from_env(env, security_protocol="SSL", ssl_cafile=None).tls
    with pytest.raises(TypeError, match="sasl_plain_password"):
        KafkaSecurity.from_env({}, sasl_plain_password="x")
