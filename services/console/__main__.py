"""``python -m console``: serve the console's pages."""

from console.api import create_app
from console.config import Settings
from vigil.adapters.http import serve

settings = Settings()
serve(create_app(settings), settings.console_host, settings.console_port, settings.log_level)
