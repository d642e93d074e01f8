"""The auditor's report from canned answers: gathered through the APIs (every audit page),
assembled (every promotion named, overdue reassessments, silences of the model), written as
escaped HTML and JSON by ``vigil report``, and served by the console to auditors only."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.access import api_key
from tests.console_standin import NOW, StandIn, console_app
from tests.report_data import HOSTILE, MODEL_ID, report_stand_in
from tests.unit.test_console import sign_in
from vigil.cli import main
from vigil.report import CONTENT_SECURITY_POLICY, assemble, gather_sources, render_html
from vigil.report.render import style_source

AUDITOR_KEY, AUDITOR = api_key("audrey", ["auditor"])
SCOPED_KEY, SCOPED = api_key("sam", ["auditor"], ["fraud"])
DS_KEY, DS = api_key("dora", ["data_scientist"])


@pytest.fixture
def stand_in() -> StandIn:
    return report_stand_in(AUDITOR, SCOPED, DS)


def _client(stand_in: StandIn) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(stand_in.handle))


async def _document(stand_in: StandIn, model_id: str = MODEL_ID) -> dict:
    async with _client(stand_in) as client:
        sources = await gather_sources(
            client, AUDITOR_KEY, "http://registry", "http://alerting", model_id
        )
    return assemble(sources, NOW)


async def test_every_promotion_is_named_with_who_when_why_and_the_verdict(
    stand_in: StandIn,
) -> None:
    document = await _document(stand_in)
    promoted = [(p["version"], p["principal"], p["verdict"]) for p in document["promotions"]]
    assert promoted == [
        ("1.1.0", "dora", "no significant difference"),
        ("1.2.0", "dora", "better"),
    ]
    latest = document["promotions"][-1]
    assert latest["reason"] == HOSTILE and latest["over"] == ["1.1.0"]
    assert latest["compared_with"] == "1.1.0" and "p=0.02" in latest["comparison"]
    (retired,) = document["status_changes"]
    assert (retired["version"], retired["from"], retired["to"]) == (
        "1.0.0",
        "challenger",
        "retired",
    )
    assert document["summary"]["retirements"] == 1 and document["summary"]["promotions"] == 2


async def test_the_report_flags_overdue_reassessments_and_keeps_the_models_own_data(
    stand_in: StandIn,
) -> None:
    document = await _document(stand_in)
    assert document["summary"]["overdue_reassessments"] == ["1.0.0"]
    assert [a["fingerprint"] for a in document["alerts"]] == ["fp-credit"]
    (acked,) = document["alerts"]
    assert [e["kind"] for e in acked["history"]] == ["state", "ack"]
    assert [s["id"] for s in document["silences"]] == ["s-1"]
    assert len(document["audit"]) == 5 and document["audit_complete"]
    newest = document["versions"][-1]
    (day,) = newest["performance"]
    assert (day["windows"], day["predictions"], day["labelled"]) == (2, 2000, 400)
    assert day["metric_mean"] == pytest.approx((0.9 * 100 + 0.8 * 300) / 400)
    assert day["value"] == -200.0
    assert [d["drifted"] for d in newest["drift"]] == [[], ["income"]]
    assert document["versions"][0]["drift"] is None  # no heat map for that version
    json.dumps(document)  # JSON-ready as it is


async def test_the_audit_trail_is_read_page_by_page_to_its_end(stand_in: StandIn) -> None:
    stand_in.audit = stand_in.audit * 700  # 3,500 events: four pages of 1,000
    document = await _document(stand_in)
    assert len(document["audit"]) == 3500 and document["audit_complete"]
    pages = [c for c in stand_in.calls if c[1] == "/v1/audit"]
    assert len(pages) == 4


async def test_every_value_is_escaped_in_the_page(stand_in: StandIn) -> None:
    hostile_id = "<script>alert(1)</script>"
    for found in stand_in.versions[MODEL_ID]:
        found["owner"] = HOSTILE
    document = await _document(stand_in)
    document["model_id"] = hostile_id
    page = render_html(document, json_href="/models/x/report.json")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "looking &lt;script&gt;" in page  # the acknowledgement's comment
    style = re.search(r"<style>(.*)</style>", page, re.S)
    assert style and style[1] == style_source()


def test_the_csp_allows_only_the_pages_own_style() -> None:
    assert "script-src" not in CONTENT_SECURITY_POLICY
    assert "'self'" not in CONTENT_SECURITY_POLICY.split("style-src")[1].split(";")[0]
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY


def test_vigil_report_writes_the_page_and_the_json(
    stand_in: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, data = tmp_path / "report.html", tmp_path / "report.json"
    argv = ["--url", "http://registry", "--alerting-url", "http://alerting", "--key", AUDITOR_KEY]
    argv += ["report", MODEL_ID, "--out", str(out), "--json", str(data)]
    assert main(argv, async_client=_client(stand_in)) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["promotions"] == 2 and printed["overdue_reassessments"] == ["1.0.0"]
    page = out.read_text()
    assert page.count('class="promotion"') == 2 and "1.2.0" in page
    assert json.loads(data.read_text())["model_id"] == MODEL_ID
    datetime.fromisoformat(json.loads(data.read_text())["generated_at"])


def test_vigil_report_says_why_a_model_cannot_be_reported(
    stand_in: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--url", "http://registry", "--alerting-url", "http://alerting", "--key", DS_KEY]
    argv += ["report", MODEL_ID, "--out", str(tmp_path / "r.html")]
    assert main(argv, async_client=_client(stand_in)) == 1
    assert "403" in capsys.readouterr().err and not (tmp_path / "r.html").exists()


def test_the_console_serves_the_report_to_an_auditor_with_its_own_csp(stand_in: StandIn) -> None:
    with TestClient(console_app(stand_in)) as client:
        sign_in(client, AUDITOR_KEY)
        page = client.get(f"/models/{MODEL_ID}/report")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert page.text.count('class="promotion"') == 2
        download = client.get(f"/models/{MODEL_ID}/report.json")
        assert download.headers["content-disposition"] == (
            'attachment; filename="credit-risk-report.json"'
        )
        assert [p["version"] for p in download.json()["promotions"]] == ["1.1.0", "1.2.0"]
        other = client.get("/fleet")  # the console's own pages keep the strict policy
        assert "style-src 'self'" in other.headers["content-security-policy"]


def test_the_console_answers_404_out_of_scope_and_403_naming_the_roles(
    stand_in: StandIn,
) -> None:
    with TestClient(console_app(stand_in)) as client:
        sign_in(client, SCOPED_KEY)
        hidden = client.get(f"/models/{MODEL_ID}/report")
        missing = client.get("/models/nope/report.json")
        assert (hidden.status_code, missing.status_code) == (404, 404)
        assert hidden.text.replace(MODEL_ID, "X") == missing.text.replace("nope", "X")
        sign_in(client, DS_KEY)
        refused = client.get(f"/models/{MODEL_ID}/report")
        assert refused.status_code == 403 and "auditor or admin" in refused.text
        assert "data_scientist" in refused.text
