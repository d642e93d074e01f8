"""The prediction logger's settings (``VIGIL_*`` environment variables)."""

from vigil.adapters.settings import VigilSettings

__all__ = ["Settings"]


class Settings(VigilSettings):
    prediction_logger_host: str = "127.0.0.1"
    prediction_logger_port: int = 8001
    prediction_logger_max_batch: int = 10_000
    prediction_logger_max_body_bytes: int = 64 * 1024 * 1024
    prediction_logger_dedup_window_seconds: int = 24 * 3600
    prediction_logger_redis_prefix: str = "vigil:predictions:seen"
    # How long a request waits for Kafka's acknowledgement before answering 503.
    prediction_logger_write_timeout_seconds: float = 10.0
    # How long an unsettled claim blocks resends of its ids if this process dies meanwhile.
    prediction_logger_pending_seconds: int = 300
    # One encoded event (Avro), well under Kafka's 1 MB message limit: larger ones get 413.
    prediction_logger_max_event_bytes: int = 256 * 1024
