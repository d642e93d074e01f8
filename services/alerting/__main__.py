"""``python -m alerting``: serve the alerting API and consume window reports."""

from alerting.api import create_app
from alerting.config import Settings
from vigil.adapters.http import serve

settings = Settings()
serve(create_app(settings), settings.alerting_host, settings.alerting_port, settings.log_level)
