"""The console's audit trail page and the alerts pages past one page, through TestClient on
the registry and alerting stood in over HTTP."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from console import upstream
from tests.access import api_key
from tests.console_standin import MemorySessions, StandIn, alert, console_app, model
from tests.unit.test_console import csrf_of, sign_in

AUDITOR_KEY, AUDITOR = api_key("audra", ["auditor"])
SCOPED_KEY, SCOPED = api_key("sam", ["auditor"], ["churn"])
ONCALL_KEY, ONCALL = api_key("olga", ["oncall"])


def _event(n: int, principal: str, model_id: str | None, status: int = 200) -> dict[str, object]:
    return {
        "event_id": f"e{n}",
        "time": f"2026-11-30T10:{n:02d}:00+00:00",
        "service": "registry",
        "principal": principal,
        "roles": ["data_scientist"],
        "action": "POST /v1/models/{model_id}/versions/{version}/promote",
        "resource": f"/v1/models/{model_id}/versions/2/promote",
        "model_id": model_id,
        "status": status,
        "request_id": f"r{n}",
        "detail": "<b>reason</b>" if status >= 400 else None,
    }


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[AUDITOR, SCOPED, ONCALL])
    services.models = [
        model("credit-risk", "risk-team", "high", ("1.0.0", "champion")),
        model("churn", "growth", "low", ("2.0.0", "champion")),
    ]
    services.audit = [  # newest first, as the registry keeps it
        _event(50 - n, "dana" if n % 2 else "bo", "churn" if n % 3 else "credit-risk")
        for n in range(0, 45)
    ]
    services.audit.insert(0, _event(59, "mallory", "churn", status=403))
    return services


@pytest.fixture
def client(stand_in: StandIn) -> TestClient:
    with TestClient(console_app(stand_in, MemorySessions())) as client:
        return client


def test_an_auditor_reads_the_trail_newest_first_and_pages_on(
    client: TestClient, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("console.audit_pages.AUDIT_PAGE", 20)
    page = sign_in(client, AUDITOR_KEY)
    assert 'href="/audit"' in page
    first = client.get("/audit").text
    assert first.index("mallory") < first.index("10:50:00")
    assert "refused (403)" in first and "&lt;b&gt;reason&lt;/b&gt;" in first
    assert first.count('<tr class="audit-') == 20
    assert 'id="older-audit"' in first and 'id="newest-audit"' not in first
    second = client.get("/audit?before=20").text
    assert second.count('<tr class="audit-') == 20 and 'id="newest-audit"' in second
    third = client.get("/audit?before=40").text
    assert third.count('<tr class="audit-') == 6 and 'id="older-audit"' not in third
    seen = [p for _, p, _ in stand_in.calls if p == "/v1/audit"]
    assert len(seen) == 3


def test_the_trail_filters_by_model_and_principal_and_keeps_the_filter_when_paging(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("console.audit_pages.AUDIT_PAGE", 5)
    sign_in(client, AUDITOR_KEY)
    page = client.get("/audit", params={"model_id": "credit-risk", "principal": "bo"}).text
    assert "dana" not in page.split("<tbody>")[1] and "churn</a>" not in page
    assert page.count('<tr class="audit-') == 5
    assert 'href="/audit?model_id=credit-risk&amp;principal=bo&amp;before=5"' in page
    empty = client.get("/audit", params={"principal": "nobody"}).text
    assert "No calls recorded for this filter" in empty


def test_a_model_outside_the_auditor_s_scope_is_not_found(client: TestClient) -> None:
    sign_in(client, SCOPED_KEY)
    answer = client.get("/audit", params={"model_id": "credit-risk"})
    assert answer.status_code == 404
    own = client.get("/audit", params={"model_id": "churn"})
    assert own.status_code == 200 and "credit-risk</a>" not in own.text


def test_a_key_without_audit_read_gets_no_link_and_a_clear_refusal(
    client: TestClient, stand_in: StandIn
) -> None:
    page = sign_in(client, ONCALL_KEY)
    assert 'href="/audit"' not in page
    answer = client.get("/audit")
    assert answer.status_code == 403 and "may not read the audit trail" in answer.text
    assert not [p for _, p, _ in stand_in.calls if p == "/v1/audit"]


def test_alerts_past_one_page_are_reached_page_by_page_per_status(
    client: TestClient, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream, "ALERT_PAGE", 4)
    for n in range(10):
        stand_in.add_alert(alert(f"fp-f{n}", "churn", "2.0.0", "medium"))
    for n in range(3):
        stand_in.add_alert(alert(f"fp-a{n}", "churn", "2.0.0", "low", status="acknowledged"))
    sign_in(client, ONCALL_KEY)
    first = client.get("/alerts").text
    assert "More alerts exist than one page holds" in first
    assert 'id="older-firing"' in first and 'id="older-acknowledged"' not in first
    assert "Firing (4+)" in first and "Acknowledged (3)" in first
    shown: set[str] = set()
    url = "/alerts"
    while True:
        page = client.get(url).text
        firing = page.split('id="firing"')[1].split("</table>")[0]
        shown |= {f"fp-f{n}" for n in range(10) if f'data-fingerprint="fp-f{n}"' in firing}
        assert "fp-a0" in page  # the acknowledged page stays where it was
        if 'id="older-firing"' not in page:
            break
        url = page.split('id="older-firing"')[0].rsplit('href="', 1)[1].split('"')[0]
        url = url.replace("&amp;", "&")
        assert 'id="newest-alerts"' in client.get(url).text
    assert shown == {f"fp-f{n}" for n in range(10)}
    assert csrf_of(page)  # the forms still carry their token on a later page
