"""``python -m prediction_logger``: serve the prediction logging API."""

from prediction_logger.api import create_app
from prediction_logger.config import Settings
from vigil.adapters.http import serve

settings = Settings()
serve(
    create_app(settings),
    settings.prediction_logger_host,
    settings.prediction_logger_port,
    settings.log_level,
)
