"""The audit trail page in Debian's Chromium: an auditor opens it from the navigation,
filters by principal from the keyboard, pages to older calls, and reads it at phone width."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.access import api_key
from tests.console_standin import StandIn, model

KEY, RECORD = api_key("audra", ["auditor"])
sync_api = pytest.importorskip("playwright.sync_api")
NOON = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[RECORD])
    services.models = [model("credit-risk", "risk-team", "high", ("1.0.0", "champion"))]
    services.audit = [
        {
            "event_id": f"e{n}",
            "time": (NOON - timedelta(minutes=n)).isoformat(),
            "service": "registry",
            "principal": "dana" if n % 2 else "bo",
            "roles": ["data_scientist"],
            "action": "PUT /v1/models/{model_id}/versions/{version}/risk",
            "resource": "/v1/models/credit-risk/versions/1.0.0/risk",
            "model_id": "credit-risk",
            "status": 200 if n else 403,
            "request_id": f"r{n}",
            "detail": None if n else "principal 'bo' may not models:write",
        }
        for n in range(150)
    ]
    return services


def test_an_auditor_filters_and_pages_the_audit_trail(
    browser: object, console_url: str, screenshot: Callable[[object, str], Path]
) -> None:
    expect = sync_api.expect
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(console_url + "/signin")
    page.fill("#key", KEY)
    page.click("button:has-text('Sign in')")
    page.click("nav >> text=Audit")
    expect(page.locator("#audit tbody tr")).to_have_count(100)
    expect(page.locator("#audit tbody tr").first).to_contain_text("refused (403)")
    screenshot(page, "audit")

    page.get_by_label("Principal").fill("dana")  # every filter has its label
    page.keyboard.press("Enter")
    expect(page).to_have_url(console_url + "/audit?model_id=&principal=dana")
    expect(page.locator("#audit tbody tr")).to_have_count(75)
    assert "bo" not in page.locator("#audit tbody td[data-label=Who]").all_inner_texts()

    page.goto(console_url + "/audit")
    page.locator("#older-audit").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#audit tbody tr")).to_have_count(50)
    expect(page.locator("#newest-audit")).to_be_visible()

    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(console_url + "/audit")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "audit-phone")
