"""``python -m feedback_joiner``: predictions joined with their feedback into outcomes."""

import asyncio
import logging

from feedback_joiner.config import Settings
from feedback_joiner.worker import main

settings = Settings()
logging.basicConfig(
    level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
)
asyncio.run(main(settings))
