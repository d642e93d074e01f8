"""``python -m archive``: predictions from Kafka into Parquet inference tables."""

import asyncio
import logging

from archive.config import Settings
from archive.worker import main
from vigil.adapters.metrics import serve_metrics

settings = Settings()
logging.basicConfig(
    level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
)
serve_metrics(settings.metrics_port, settings.metrics_host)
asyncio.run(main(settings))
