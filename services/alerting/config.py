"""The alerting service's settings (``VIGIL_*`` environment variables)."""

import ipaddress
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from vigil.adapters.settings import VigilSettings

__all__ = ["Settings"]


class Settings(VigilSettings):
    alerting_host: str = "127.0.0.1"
    alerting_port: int = 8003
    alerting_group_id: str = "vigil-alerting"
    alerting_redis_prefix: str = "vigil:alerting"
    # The topic of AlertEvents (the record Redis is rebuilt from); another one isolates tests.
    alerting_events_topic: str = "vigil.alerts.v1"
    # Where the window reports come from (tests give each alerting group its own topic).
    alerting_reports_topic: str = "vigil.metrics.v1"
    # Serving environments the SDK reports, judged against each version's validated one.
    alerting_environments_topic: str = "vigil.environments.v1"
    # Where a new consumer group starts reading the reports ("latest": only new ones).
    alerting_auto_offset_reset: str = "earliest"
    # Alertmanager's group timing, for subscriptions that do not set their own (seconds).
    alerting_group_wait_seconds: float = Field(default=30.0, ge=0)
    alerting_group_interval_seconds: float = Field(default=300.0, gt=0)
    alerting_repeat_interval_seconds: float = Field(default=4 * 3600.0, gt=0)
    # A notification not delivered after this long (retried with back-off) is given up.
    alerting_give_up_seconds: float = Field(default=3600.0, gt=0)
    # A replica sending a notification holds it this long; one that died meanwhile leaves it
    # to another (or its restart) after that. Longer than one attempt (the webhook timeout).
    alerting_delivery_lease_seconds: float = Field(default=20.0, gt=0)
    # How often silent models are looked for (model_silent).
    alerting_liveness_check_seconds: float = Field(default=5.0, gt=0)
    alerting_webhook_timeout_seconds: float = 5.0
    alerting_webhook_attempts: int = 3
    alerting_max_body_bytes: int = 64 * 1024
    alerting_max_json_depth: int = 32
    alerting_max_json_values: int = 10_000
    # Resolved alerts not updated for this long are forgotten (firing ones are always kept),
    # checked at start and then every alerting_prune_interval_seconds.
    alerting_retention_days: float = Field(default=30, gt=0)
    alerting_prune_interval_seconds: float = Field(default=3600, gt=0)
    # Networks notifications may go to although they are not public (comma-separated CIDRs,
    # e.g. 127.0.0.0/8 for a receiver on this machine); see alerting.egress.
    alerting_allowed_networks: Annotated[
        list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode
    ] = Field(default_factory=list)
    # Where a webhook receiver can see Vigil (Alertmanager's externalURL in the body).
    alerting_external_url: str = ""
    # The e-mail channel's SMTP server; unset, e-mail subscriptions are refused.
    alerting_smtp_host: str | None = None
    alerting_smtp_port: int = Field(default=25, ge=1, le=65535)
    alerting_smtp_username: str | None = None
    alerting_smtp_password: SecretStr | None = None
    alerting_smtp_starttls: bool = False  # upgrade a plain connection with STARTTLS
    alerting_smtp_ssl: bool = False  # TLS from the first byte (SMTPS, usually port 465)
    alerting_smtp_from: str = "vigil@localhost"

    @field_validator("alerting_allowed_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
