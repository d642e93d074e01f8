"""``python -m drift_detector``: run a drift detection worker (start several to share load)."""

from drift_detector.config import Settings
from drift_detector.worker import create_app
from vigil.adapters.http import serve

settings = Settings()
serve(create_app(settings), settings.drift_web_host, settings.drift_web_port, settings.log_level)
