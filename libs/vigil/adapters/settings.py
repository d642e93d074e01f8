"""Settings every Vigil process shares; each service's ``config.py`` extends them."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.adapters.kafka_security import KafkaConnection, KafkaSecurity
from vigil.wire.shapes import MAX_CLOCK_SKEW_SECONDS

__all__ = ["InvalidSettings", "VigilSettings"]


class InvalidSettings(Exception):
    """Settings that contradict each other; the message names the variables."""


class VigilSettings(BaseSettings):
    """Read from ``VIGIL_*`` environment variables, validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The prediction logger's and the feedback service's de-duplication keys, on a Redis with
    # its own memory budget and eviction policy; unset, they are kept on the Redis at redis_url.
    idempotency_redis_url: str | None = None
    schema_registry_url: str | None = None
    log_level: str = "INFO"
    # Distinct model_id label values a metric keeps; later models are counted as "_other".
    metrics_max_model_labels: int = Field(default=500, ge=1)
    # How far ahead of this server's clock an event time may be; later ones are refused (422).
    max_clock_skew_seconds: float = Field(default=MAX_CLOCK_SKEW_SECONDS, ge=0)

    # -- Kafka security: how every client of this process connects (``settings.kafka``) --
    # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; SASL_* needs the username and password.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"  # or SCRAM-SHA-256, PLAIN
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # PEM file of the certificate authorities trusted for SSL/SASL_SSL (unset: the system's).
    kafka_ssl_cafile: str | None = None

    @model_validator(mode="after")
    def _kafka_security_is_consistent(self) -> Self:
        try:
            self.kafka  # noqa: B018 -- raises ValueError, naming the variable, if inconsistent
        except ValueError as exc:
            # Not a ValueError: pydantic would quote every input, the password too.
            raise InvalidSettings(str(exc)) from None
        return self

    @property
    def idempotency_url(self) -> str:
        """The Redis that keeps the de-duplication keys: its own, else the shared one."""
        return self.idempotency_redis_url or self.redis_url

    @property
    def kafka(self) -> KafkaConnection:
        """The bootstrap servers and security every Kafka client of this process uses."""
        password = self.kafka_sasl_password
        security = KafkaSecurity(
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password.get_secret_value() if password else None,
            ssl_cafile=self.kafka_ssl_cafile,
        )
        return KafkaConnection(self.kafka_bootstrap, security)
