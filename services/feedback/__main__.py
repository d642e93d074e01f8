"""``python -m feedback``: serve the feedback API."""

from feedback.api import create_app
from feedback.config import Settings
from vigil.adapters.http import serve

settings = Settings()
serve(create_app(settings), settings.feedback_host, settings.feedback_port, settings.log_level)
