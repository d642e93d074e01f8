"""Every test here talks to real services, which need an API key: the run's admin key."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_admin(session_admin: str) -> str:
    return session_admin


# Chromium and screenshots, as the browser tests have them (tests/e2e/test_console_e2e.py).
from tests.browser.conftest import browser, screenshot  # noqa: E402, F401
