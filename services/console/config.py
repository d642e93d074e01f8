"""The console's settings (``VIGIL_*`` environment variables)."""

from pydantic import Field

from vigil.adapters.settings import VigilSettings

__all__ = ["METRICS_ENDPOINTS", "Settings"]

# Each process's Prometheus /metrics in the local stack (`make up`, deploy/services.sh and
# deploy/prometheus/prometheus.yml): the APIs on their own port, the workers on theirs.
METRICS_ENDPOINTS = {
    "registry": "http://127.0.0.1:8000/metrics",
    "prediction_logger": "http://127.0.0.1:8001/metrics",
    "feedback": "http://127.0.0.1:8002/metrics",
    "alerting": "http://127.0.0.1:8003/metrics",
    "drift_detector": "http://127.0.0.1:8004/metrics",
    "archive": "http://127.0.0.1:8006/metrics",
    "feedback_joiner": "http://127.0.0.1:8007/metrics",
}


class Settings(VigilSettings):
    console_host: str = "127.0.0.1"
    console_port: int = 8005
    # Where the console reaches the services whose pages it shows (their public APIs).
    console_registry_url: str = "http://127.0.0.1:8000"
    console_alerting_url: str = "http://127.0.0.1:8003"
    console_feedback_url: str = "http://127.0.0.1:8002"
    console_timeout_seconds: float = Field(default=5.0, gt=0)
    # The health page: service name -> its /metrics URL (a JSON object in the environment),
    # each scraped at most this long so that one stuck process does not hold up the page.
    console_metrics_endpoints: dict[str, str] = Field(
        default_factory=lambda: dict(METRICS_ENDPOINTS)
    )
    console_metrics_timeout_seconds: float = Field(default=2.0, gt=0)
    # Sessions (the signed-in key, its CSRF token) live in Redis under this prefix and end
    # after this long without a request.
    console_redis_prefix: str = "vigil:console"
    console_session_seconds: int = Field(default=8 * 3600, gt=0)
    # Behind HTTPS, set true: the session cookie is then never sent over plain HTTP.
    console_cookie_secure: bool = False
    console_max_body_bytes: int = 16 * 1024
