"""The feedback service's settings (``VIGIL_*`` environment variables)."""

from vigil.adapters.settings import VigilSettings


class Settings(VigilSettings):
    feedback_host: str = "127.0.0.1"
    feedback_port: int = 8002
