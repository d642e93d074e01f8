"""The feedback service's settings (``VIGIL_*`` environment variables)."""

from vigil.adapters.settings import VigilSettings


class Settings(VigilSettings):
    feedback_host: str = "127.0.0.1"
    feedback_port: int = 8002
    feedback_max_body_bytes: int = 8 * 1024 * 1024
    feedback_max_items: int = 10_000
    feedback_max_json_depth: int = 32
    feedback_max_json_values: int = 500_000
