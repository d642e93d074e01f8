"""``python -m registry``: serve the registry API."""

from registry.api import create_app
from registry.config import Settings
from vigil.adapters.http import serve

settings = Settings()
serve(create_app(settings), settings.registry_host, settings.registry_port, settings.log_level)
