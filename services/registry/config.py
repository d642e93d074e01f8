"""The registry's settings (``VIGIL_*`` environment variables)."""

from vigil.adapters.settings import VigilSettings


class Settings(VigilSettings):
    registry_host: str = "127.0.0.1"
    registry_port: int = 8000
    registry_max_reference_bytes: int = 256 * 1024 * 1024
