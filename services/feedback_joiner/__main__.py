"""``python -m feedback_joiner``: predictions joined with their feedback into outcomes."""

import asyncio
import logging

from feedback_joiner.config import Settings
from feedback_joiner.worker import main
from vigil.adapters.metrics import serve_metrics

settings = Settings()
logging.basicConfig(
    level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
)
serve_metrics(settings.metrics_port, settings.metrics_host)
asyncio.run(main(settings))
