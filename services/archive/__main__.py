"""``python -m archive``: predictions from Kafka into Parquet inference tables."""

import asyncio
import logging

from archive.config import Settings
from archive.worker import main

settings = Settings()
logging.basicConfig(
    level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
)
asyncio.run(main(settings))
