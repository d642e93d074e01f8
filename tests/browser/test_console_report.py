"""The auditor's report in a real browser: an auditor signs in, opens a model's report
(promotions listed, nothing blocked by the page's own Content-Security-Policy), and downloads
the same report as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.access import api_key
from tests.console_standin import StandIn
from tests.report_data import MODEL_ID, report_stand_in

KEY, RECORD = api_key("audrey", ["auditor"])
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def stand_in() -> StandIn:
    return report_stand_in(RECORD)


def test_an_auditor_opens_the_report_and_downloads_it(
    browser: object,
    console_url: str,
    stand_in: StandIn,
    screenshot: Callable[[object, str], Path],
    tmp_path: Path,
) -> None:
    expect = sync_api.expect
    context = browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(console_url + "/signin")
    page.fill("#key", KEY)
    page.click("button:has-text('Sign in')")
    expect(page).to_have_url(console_url + "/fleet")
    page.goto(f"{console_url}/models/{MODEL_ID}/report")
    expect(page.locator("#model-id")).to_have_text(MODEL_ID)
    rows = page.locator("#promotions tr.promotion")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("1.1.0")
    expect(rows.nth(1)).to_contain_text("1.2.0")
    expect(rows.nth(1)).to_contain_text("<script>alert('pwned')</script>")  # shown, as text
    expect(page.locator(".overdue").first).to_be_visible()
    # The embedded stylesheet applies: the page's own CSP allows it by hash.
    weight = page.locator("#versions th").first.evaluate("e => getComputedStyle(e).fontWeight")
    background = page.locator("#versions th").first.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert weight and background == "rgb(238, 240, 244)"
    screenshot(page, "report")

    with page.expect_download() as info:
        page.click("#download-json")
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert download.suggested_filename == f"{MODEL_ID}-report.json"
    document = json.loads(saved.read_text())
    assert [p["version"] for p in document["promotions"]] == ["1.1.0", "1.2.0"]
    assert document["summary"]["overdue_reassessments"] == ["1.0.0"]
    assert not problems, problems
    context.close()
