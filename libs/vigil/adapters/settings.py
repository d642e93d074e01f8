"""Settings every Vigil process shares; each service's ``config.py`` extends them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.wire.shapes import MAX_CLOCK_SKEW_SECONDS

__all__ = ["VigilSettings"]


class VigilSettings(BaseSettings):
    """Read from ``VIGIL_*`` environment variables, validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    schema_registry_url: str | None = None
    log_level: str = "INFO"
    # How far ahead of this server's clock an event time may be; later ones are refused (422).
    max_clock_skew_seconds: float = Field(default=MAX_CLOCK_SKEW_SECONDS, ge=0)
