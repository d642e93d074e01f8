"""The review page, silences from the alerts page and the health page in a real browser
(Debian's Chromium under Playwright): an expert judges a prediction with the keyboard alone,
an on-call silences an alert and expires the silence, the alerts page at phone width, and the
health page with one process up and one down. Every form control must have a label."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.access import api_key
from tests.console_standin import StandIn, alert, model
from tests.unit.test_console_health import drift_worker_metrics

SME_KEY, SME = api_key("ana", ["sme"], ["credit-risk"])
ONCALL_KEY, ONCALL = api_key("olga", ["oncall"])
sync_api = pytest.importorskip("playwright.sync_api")
Shot = Callable[[object, str], Path]
# Every visible control without a <label> or an aria-label (the hidden default button aside).
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.type !== 'hidden' && !e.hidden && e.offsetParent !== null)
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !(e.tagName === 'BUTTON' && e.textContent.trim()))
  .map(e => e.outerHTML)"""


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[SME, ONCALL])
    services.models = [
        model("credit-risk", "risk-team", "high", ("1.0.0", "champion")),
        model("churn", "growth", "low", ("2.0.0", "champion")),
    ]
    services.review_queue["credit-risk"] = [
        {
            "prediction_id": f"p-{n}",
            "model_id": "credit-risk",
            "model_version": "1.0.0",
            "timestamp": "2026-11-30T10:02:11.512000Z",
            "features": {"income": 5400.0 + n, "region": "<b>north</b>"},
            "prediction": True,
            "score": 0.52,
            "reason": "low_confidence",
        }
        for n in (17, 18)
    ]
    services.business_values["credit-risk"] = {"true_positive": 120, "false_positive": -40}
    services.add_alert(alert("fp-credit", "credit-risk", "1.0.0", "high", summary="income drift"))
    services.add_alert(alert("fp-churn", "churn", "2.0.0", "medium"))
    services.metrics["registry"] = drift_worker_metrics()
    return services


def _signed_in(browser: Any, url: str, key: str, width: int = 1200) -> Any:
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    page.goto(url + "/signin")
    page.fill("#key", key)
    page.keyboard.press("Enter")
    sync_api.expect(page).to_have_url(url + "/fleet")
    return page


def _tab_to(page: Any, selector: str, limit: int = 40) -> None:
    """Press Tab until ``selector`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} never got the focus by Tab")


def test_an_expert_flags_a_prediction_with_the_keyboard(
    browser: Any, console_url: str, stand_in: StandIn, screenshot: Shot
) -> None:
    expect = sync_api.expect
    page = _signed_in(browser, console_url, SME_KEY)
    page.click("nav >> text=Review")
    expect(page.locator("#prediction-id")).to_have_text("p-17")
    expect(page.locator("#features")).to_contain_text("<b>north</b>")  # shown, not markup
    expect(page.get_by_label("Model", exact=True)).to_have_value("credit-risk")
    expect(page.get_by_label("Comment", exact=True)).to_be_editable()
    expect(page.get_by_label("True outcome (optional)")).to_be_editable()
    assert page.evaluate(UNLABELLED) == []
    screenshot(page, "review")

    _tab_to(page, "#comment")
    page.keyboard.type("approved a known fraud")
    page.keyboard.press("Tab")
    page.keyboard.type("false")
    page.keyboard.press("Enter")  # Enter in a field sends no flag nobody chose
    expect(page.locator("#prediction-id")).to_have_text("p-17")
    assert not stand_in.feedback
    _tab_to(page, "button[value=harmful]")
    page.keyboard.press("Space")
    expect(page.locator(".notice")).to_contain_text("Flagged p-17 as harmful")
    expect(page.locator("#prediction-id")).to_have_text("p-18")
    [sent] = stand_in.feedback
    assert (sent["reviewer"], sent["flag"], sent["comment"], sent["actual"]) == (
        "ana",
        "harmful",
        "approved a known fraud",
        False,
    )
    expect(page.locator("#newest-flags")).to_contain_text("approved a known fraud")
    expect(page.locator("#terms")).to_contain_text("1 of 1 judgements flagged harmful")
    screenshot(page, "review-flagged")
    assert not page.problems, page.problems


def test_an_oncall_silences_an_alert_and_expires_the_silence(
    browser: Any, console_url: str, stand_in: StandIn, screenshot: Shot
) -> None:
    expect = sync_api.expect
    page = _signed_in(browser, console_url, ONCALL_KEY)
    page.click("nav >> text=Alerts")
    row = page.locator("#firing tr[data-fingerprint='fp-credit']")
    assert page.evaluate(UNLABELLED) == []
    row.get_by_label("Silence for").select_option("4")
    row.get_by_label("Why").fill("retraining tonight")
    row.get_by_role("button", name="Silence").click()
    expect(page.locator(".notice")).to_contain_text("Silenced fp-credit for 4 h")
    expect(page.locator("#silenced tr[data-fingerprint='fp-credit']")).to_contain_text(
        "income drift"
    )
    expect(page.locator("#firing tr[data-fingerprint='fp-credit']")).to_have_count(0)
    [silence] = stand_in.silences
    assert silence["created_by"] == "olga" and silence["comment"] == "retraining tonight"
    expect(page.locator("#silences")).to_contain_text("model_id=credit-risk")
    screenshot(page, "alerts-silenced")

    page.locator(f"#silences tr[data-silence='{silence['id']}']").get_by_role(
        "button", name="Expire"
    ).click()
    expect(page.locator(".notice")).to_contain_text(f"Expired silence {silence['id']}")
    expect(page.locator("#firing tr[data-fingerprint='fp-credit']")).to_have_count(1)
    assert silence["status"] == "expired"
    assert not page.problems, page.problems


def test_the_alerts_page_with_its_forms_fits_a_phone(
    browser: Any, console_url: str, stand_in: StandIn, screenshot: Shot
) -> None:
    page = _signed_in(browser, console_url, ONCALL_KEY, width=375)
    page.goto(console_url + "/alerts")
    row = page.locator("#firing tr[data-fingerprint='fp-churn']")
    sync_api.expect(row.get_by_role("button", name="Silence")).to_be_visible()
    sync_api.expect(row.get_by_label("Why")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "alerts-phone")


def test_the_health_page_shows_a_process_up_and_one_down(
    browser: Any, console_url: str, stand_in: StandIn, screenshot: Shot
) -> None:
    expect = sync_api.expect
    stand_in.down.add("feedback")
    page = _signed_in(browser, console_url, ONCALL_KEY)
    page.click("nav >> text=Health")
    expect(page.locator("#service-registry .state")).to_have_text("up")
    expect(page.locator("#service-registry")).to_contain_text("worst partition 1: 250")
    expect(page.locator("#service-feedback .state")).to_have_text("down")
    expect(page.locator("#service-feedback")).to_contain_text("refused the connection")
    screenshot(page, "health")
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert not page.problems, page.problems
