"""The prediction logger's settings (``VIGIL_*`` environment variables)."""

from vigil.settings import VigilSettings


class Settings(VigilSettings):
    prediction_logger_host: str = "127.0.0.1"
    prediction_logger_port: int = 8001
