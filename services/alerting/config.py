"""The alerting service's settings (``VIGIL_*`` environment variables)."""

from pydantic import Field

from vigil.adapters.settings import VigilSettings

__all__ = ["Settings"]


class Settings(VigilSettings):
    alerting_host: str = "127.0.0.1"
    alerting_port: int = 8003
    alerting_group_id: str = "vigil-alerting"
    alerting_redis_prefix: str = "vigil:alerting"
    alerting_webhook_timeout_seconds: float = 5.0
    alerting_webhook_attempts: int = 3
    alerting_max_body_bytes: int = 64 * 1024
    alerting_max_json_depth: int = 32
    alerting_max_json_values: int = 10_000
    # Resolved alerts not updated for this long are forgotten (firing ones are always kept),
    # checked at start and then every alerting_prune_interval_seconds.
    alerting_retention_days: float = Field(default=30, gt=0)
    alerting_prune_interval_seconds: float = Field(default=3600, gt=0)
