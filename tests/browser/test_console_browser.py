"""The console in a real browser: Debian's Chromium driven by Playwright (pinned in
pyproject.toml) through sign-in, the fleet, its filters, the alerts, an acknowledgement, an
alert's history and sign-out, at desktop and phone width.

The console runs in this process under uvicorn; the registry and alerting are the in-process
stand-in of ``tests.console_standin`` (the console's HTTP client is given its transport).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.access import api_key
from tests.console_standin import StandIn, alert, model, report

KEY, RECORD = api_key("olga", ["oncall", "sme"])
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[RECORD])
    services.models = [
        model("credit-risk", "risk-team", "high", ("1.0.0", "champion"), ("1.1.0", "shadow")),
        model("churn", "growth", "low", ("2.0.0", "champion")),
    ]
    services.add_alert(alert("fp-churn", "churn", "2.0.0", "medium"))
    services.add_alert(alert("fp-credit", "credit-risk", "1.1.0", "high", summary="income drifted"))
    services.performance[("credit-risk", "1.0.0")] = [report(0.80, 0.91, ["accuracy"])]
    return services


def _models(page: object) -> list[str]:
    rows = page.locator("#fleet tbody tr[data-model]")  # type: ignore[attr-defined]
    return [
        f"{r.get_attribute('data-model')} {r.get_attribute('data-version')}" for r in rows.all()
    ]


def test_sign_in_fleet_alerts_acknowledge_history_sign_out(
    browser: object, console_url: str, stand_in: StandIn, screenshot: Callable[[object, str], Path]
) -> None:
    expect = sync_api.expect
    page = browser.new_page()  # type: ignore[attr-defined]
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(console_url + "/fleet")
    expect(page).to_have_url(console_url + "/signin")
    page.fill("#key", KEY)
    page.click("button:has-text('Sign in')")
    expect(page).to_have_url(console_url + "/fleet")
    expect(page.locator("header .who")).to_contain_text("olga")
    assert _models(page) == ["credit-risk 1.1.0", "churn 2.0.0", "credit-risk 1.0.0"]
    expect(page.locator("tr[data-version='1.0.0'] .perf")).to_contain_text("accuracy 0.800 (0.910)")
    assert KEY not in page.content()
    screenshot(page, "fleet")

    # The filter is applied by htmx in place (the table swapped, the URL pushed).
    page.select_option("select[name=tier]", "low")
    expect(page).to_have_url(console_url + "/fleet?tier=low&owner=&status=&state=")
    expect(page.locator("#fleet tbody tr[data-model]")).to_have_count(1)
    assert _models(page) == ["churn 2.0.0"]

    page.click("nav >> text=Alerts")
    firing = page.locator("#firing tr[data-fingerprint='fp-credit']")
    expect(firing).to_contain_text("income drifted")
    firing.locator("input[name=comment]").fill("looking into it")
    firing.locator("button:has-text('Acknowledge')").click()
    expect(page.locator(".notice")).to_contain_text("Acknowledged fp-credit")
    expect(page.locator("#acknowledged")).to_contain_text("acknowledged by olga")
    assert stand_in.alerts["fp-credit"].acknowledged_by == "olga"

    page.locator("#acknowledged tr[data-fingerprint='fp-credit'] a:has-text('History')").click()
    expect(page.locator("#history")).to_contain_text("looking into it")
    expect(page.locator("#history tr", has_text="ack")).to_contain_text("olga")
    screenshot(page, "history")

    # At phone width the tables become cards: nothing is wider than the screen.
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(console_url + "/alerts")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(
        page.locator("#firing tr[data-fingerprint='fp-churn'] td[data-label=Summary]")
    ).to_be_visible()
    screenshot(page, "alerts-phone")

    page.click("button:has-text('Sign out')")
    expect(page.locator(".notice")).to_contain_text("Signed out.")
    page.goto(console_url + "/fleet")
    expect(page).to_have_url(console_url + "/signin")
    assert not problems, problems
