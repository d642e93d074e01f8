"""The fleet, a model page and a drift window's page in a real browser (Debian's Chromium under
Playwright): sign in, read the fleet's traffic, drift and labels, open a model, reach a heat-map
cell with the keyboard and open its window, read performance, fairness, the comparison and the
alerts; a model outside the key's scope is "Not found"; hostile names show as text."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.access import api_key
from tests.console_model_data import HOSTILE_FEATURE, stock
from tests.console_standin import StandIn, alert, model

HOSTILE_MODEL = "<img src=x onerror=alert(1)>"
KEY, RECORD = api_key("ana", ["sme"], ["credit-risk", HOSTILE_MODEL])
sync_api = pytest.importorskip("playwright.sync_api")
COLUMNS = 12  # the first has no windows: 11 linked cells per feature


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[RECORD])
    credit = model(
        "credit-risk", "risk-team", "high", ("1.0.0", "champion"), ("1.1.0", "challenger")
    )
    credit["versions"][0]["reassessment_overdue"] = True
    services.models = [
        credit,
        model(HOSTILE_MODEL, "growth", "low", ("1.0.0", "champion")),
        model("secret", "other-team", "critical", ("1.0.0", "champion")),
    ]
    stock(services, "credit-risk", COLUMNS)
    stock(services, HOSTILE_MODEL, 4, [HOSTILE_FEATURE, "income"])
    services.add_alert(alert("fp-credit", "credit-risk", "1.0.0", "high", summary="income drifted"))
    services.add_alert(alert("fp-old", "credit-risk", "1.0.0", "low", status="resolved"))
    services.add_alert(alert("fp-secret", "secret", "1.0.0", "critical"))
    return services


def _labelled(page: object) -> list[str]:
    """The form controls without a label or accessible name."""
    found: list[str] = page.evaluate(  # type: ignore[attr-defined]
        """[...document.querySelectorAll('select, input:not([type=hidden]), button')]
           .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                        && !(e.tagName === 'BUTTON' && e.textContent.trim()))
           .map(e => e.outerHTML)"""
    )
    return found


def test_fleet_model_page_heat_map_window_and_scope(
    browser: object, console_url: str, screenshot: Callable[[object, str], Path]
) -> None:
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))

    page.goto(console_url + "/fleet")
    page.fill("#key", KEY)
    page.click("button:has-text('Sign in')")
    expect(page).to_have_url(console_url + "/fleet")
    row = page.locator("tr[data-model='credit-risk'][data-version='1.0.0']")
    expect(row.locator(".traffic svg.spark")).to_have_attribute(
        "aria-label", "5160 predictions in 24 h, at most 330 an hour"
    )
    expect(row.locator(".drift")).to_contain_text("dataset drift income")
    expect(row.locator(".label-at")).to_contain_text("2026-11-30 11:55")
    expect(row.locator("td[data-label=Status]")).to_contain_text("reassessment overdue")
    expect(row.locator(".perf")).to_contain_text(
        "accuracy est. 0.864"
    )  # the newest hour: no labels yet
    expect(page.locator("tr[data-model='secret']")).to_have_count(0)
    hostile = page.locator("tr[data-model='<img src=x onerror=alert(1)>'] td[data-label=Model] a")
    expect(hostile).to_have_text(HOSTILE_MODEL)
    assert _labelled(page) == []
    screenshot(page, "fleet")

    row.locator("td[data-label=Model] a").click()
    expect(page.locator("h1")).to_contain_text("credit-risk")
    expect(page.locator("h1")).to_contain_text("version 1.0.0")
    cells = page.locator("#heatmap a")
    expect(cells).to_have_count(2 * (COLUMNS - 1))
    expect(page.locator("#heatmap tr[data-feature=region] td.heat-4")).to_have_count(
        3
    )  # its last quarter drifted
    for series in ("realised", "estimated", "reference", "band"):
        expect(page.locator(f"#metric-chart path[data-series={series}]")).to_have_count(1)
    expect(page.locator("#metric-chart path.reference")).to_have_class(re.compile("dashed"))
    expect(page.locator("#value-chart path[data-series=estimated]")).to_have_count(1)
    expect(page.locator("#quality-chart path.line")).not_to_have_count(0)
    fairness = page.locator("table.fairness[data-attribute=region]")
    expect(fairness).to_contain_text("0.400 [0.360, 0.440]")
    expect(page.locator("#fairness .measures")).to_contain_text(
        "disparate impact 0.500 [0.400, 0.620]"
    )
    expect(page.locator("#comparison .verdict")).to_contain_text(
        "better (1.1.0 against 1.0.0 on accuracy)"
    )
    expect(page.locator("#model-alerts tr[data-fingerprint=fp-credit]")).to_contain_text(
        "income drifted"
    )
    expect(page.locator("#model-alerts tr[data-fingerprint=fp-old]")).to_contain_text("resolved")
    expect(page.locator("#versions")).to_contain_text("reassessment overdue")
    expect(page.get_by_role("combobox", name="Version", exact=True)).to_be_visible()
    expect(page.get_by_role("combobox", name="Period", exact=True)).to_be_visible()
    assert _labelled(page) == []
    screenshot(page, "model")

    # Keyboard only: from the version picker's button, Tab to the heat map's first cell.
    page.locator("#choose button").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#heatmap') !== null"):
            break
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert re.fullmatch(r"income, 2026-11-30 01:00: psi 0\.02, not drifted", focused), focused
    screenshot(page, "heat-map-focus")
    page.keyboard.press("Enter")
    expect(page).to_have_url(
        re.compile(r"/models/credit-risk/versions/1\.0\.0/windows/.+\?feature=income$")
    )
    income = page.locator("section.feature.focused[data-feature=income]")
    expect(income.locator("svg.bars rect.win-bar")).to_have_count(4)
    expect(income.locator("svg.bars rect.ref-bar")).to_have_count(4)
    expect(income.locator("table.shares")).to_contain_text("≥30")
    expect(page.locator("section.feature[data-feature=region] table.shares")).to_contain_text(
        "unseen"
    )
    expect(page.locator("main")).to_contain_text("Dataset drift")
    screenshot(page, "window")

    # Out of scope, and unknown: the same "Not found", nothing said about the model.
    answer = page.goto(console_url + "/models/secret")
    assert answer is not None and answer.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    screenshot(page, "out-of-scope")
    unknown = page.goto(console_url + "/models/nothing-here")
    assert unknown is not None and unknown.status == 404
    assert page.locator("main").inner_text().replace("nothing-here", "secret") == (
        "Not found\n\nNo model 'secret' in your key's scope.\n\nBack to the fleet"
    )

    # At phone width the page fits the screen (the heat map scrolls inside its frame).
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(console_url + "/models/credit-risk")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "model-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Hostile names are text: no element made from them, no script run.
    page.goto(console_url + "/fleet")
    page.locator("tr[data-model='<img src=x onerror=alert(1)>'] td[data-label=Model] a").click()
    expect(page.locator("h1")).to_contain_text(HOSTILE_MODEL)
    expect(page.locator(f"#heatmap tr[data-feature='{HOSTILE_FEATURE}'] th")).to_have_text(
        HOSTILE_FEATURE
    )
    assert page.locator("main img, main script").count() == 0
    screenshot(page, "hostile")
    # The browser logs the two 404 answers above; nothing else (no CSP refusal, no dialog).
    missing = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    assert problems == [missing, missing], problems
