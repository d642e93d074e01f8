"""The console's settings (``VIGIL_*`` environment variables)."""

from pydantic import Field

from vigil.adapters.settings import VigilSettings

__all__ = ["Settings"]


class Settings(VigilSettings):
    console_host: str = "127.0.0.1"
    console_port: int = 8005
    # Where the console reaches the services whose pages it shows (their public APIs).
    console_registry_url: str = "http://127.0.0.1:8000"
    console_alerting_url: str = "http://127.0.0.1:8003"
    console_timeout_seconds: float = Field(default=5.0, gt=0)
    # Sessions (the signed-in key, its CSRF token) live in Redis under this prefix and end
    # after this long without a request.
    console_redis_prefix: str = "vigil:console"
    console_session_seconds: int = Field(default=8 * 3600, gt=0)
    # Behind HTTPS, set true: the session cookie is then never sent over plain HTTP.
    console_cookie_secure: bool = False
    # The fleet overview shows each version's latest performance window within this many days.
    console_performance_days: float = Field(default=7.0, gt=0)
    console_max_body_bytes: int = 16 * 1024
