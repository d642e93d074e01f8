"""``python -m drift_detector``: run the drift detection worker."""

import faust

from drift_detector.config import Settings
from drift_detector.worker import create_app

settings = Settings()
faust.Worker(create_app(settings), loglevel=settings.log_level.lower()).execute_from_commandline()
