"""The feedback service's settings (``VIGIL_*`` environment variables)."""

from vigil.adapters.settings import VigilSettings

__all__ = ["Settings"]


class Settings(VigilSettings):
    feedback_host: str = "127.0.0.1"
    feedback_port: int = 8002
    feedback_max_body_bytes: int = 8 * 1024 * 1024
    feedback_max_items: int = 10_000
    feedback_max_json_depth: int = 32
    feedback_max_json_values: int = 500_000
    # A feedback_id sent again for the same prediction within this window is stored once.
    feedback_dedup_window_seconds: int = 24 * 3600
    feedback_redis_prefix: str = "vigil:feedback:seen"
    # How long a request waits for Kafka's acknowledgement before answering 503.
    feedback_write_timeout_seconds: float = 10.0
    # How long an unsettled claim blocks resends of its ids if this process dies meanwhile.
    feedback_pending_seconds: int = 300
