"""Silencing alerts from the console's alerts page, and expiring silences, over the stand-in
alerting API (which checks the oncall role as alerting does)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from console.silencing import covered
from tests.access import api_key
from tests.console_standin import StandIn, alert, console_app

ONCALL_KEY, ONCALL = api_key("olga", ["oncall"])
SME_KEY, SME = api_key("ana", ["sme"])
HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[ONCALL, SME])
    services.add_alert(alert("fp-credit", "credit-risk", "1.1.0", "high"))
    services.add_alert(alert("fp-churn", "churn", "2.0.0", "medium", rule="missing_values"))
    services.add_alert(
        alert("fp-acked", "fraud", "3.0.0", "critical", status="acknowledged", acknowledged_by="bo")
    )
    return services


@pytest.fixture
def client(stand_in: StandIn) -> TestClient:
    with TestClient(console_app(stand_in)) as client:
        return client


def sign_in(client: TestClient, key: str) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
    assert token
    client.post("/signin", data={"csrf": token[1], "key": key})
    return client.get("/alerts").text


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found[1]


def table(page: str, name: str) -> str:
    found = re.search(rf'id="{name}".*?</table>', page, re.S)
    assert found, name
    return found[0]


def test_oncall_gets_a_silence_form_on_firing_and_acknowledged_alerts(client: TestClient) -> None:
    page = sign_in(client, ONCALL_KEY)
    for name, count in (("firing", 2), ("acknowledged", 1)):
        assert table(page, name).count("/silence") == count
    form = re.search(r'action="/alerts/fp-credit/silence".*?</form>', page, re.S)
    assert form and re.findall(r'<option value="(\d+)"', form[0]) == ["1", "4", "24"]
    assert '<label>Why <input name="reason" required' in form[0]


def test_silencing_an_alert_lists_it_as_silenced_and_expiring_brings_it_back(
    client: TestClient, stand_in: StandIn
) -> None:
    page = sign_in(client, ONCALL_KEY)
    before = datetime.now(UTC)
    done = client.post(
        "/alerts/fp-credit/silence", data={"csrf": csrf_of(page), "hours": "4", "reason": "deploy"}
    )
    [silence] = stand_in.silences
    assert silence["matchers"] == [
        {"name": "model_id", "value": "credit-risk", "op": "="},
        {"name": "model_version", "value": "1.1.0", "op": "="},
        {"name": "rule", "value": "feature_drift", "op": "="},
    ]
    assert silence["comment"] == "deploy" and silence["created_by"] == "olga"
    ends = datetime.fromisoformat(silence["ends_at"])
    assert before + timedelta(hours=4) <= ends <= datetime.now(UTC) + timedelta(hours=4)
    assert f"Silenced fp-credit for 4 h (silence {silence['id']})" in done.text
    assert "fp-credit" in table(done.text, "silenced")
    assert "fp-credit" not in table(done.text, "firing")
    assert "fp-churn" in table(done.text, "firing")  # another model's alert is not covered
    assert f'action="/silences/{silence["id"]}/expire"' in table(done.text, "silences")

    expired = client.post(f"/silences/{silence['id']}/expire", data={"csrf": csrf_of(done.text)})
    assert silence["status"] == "expired" and f"Expired silence {silence['id']}" in expired.text
    assert "fp-credit" in table(expired.text, "firing")
    assert "None." in table(expired.text, "silences")


def test_forged_silence_and_expiry_forms_change_nothing(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, ONCALL_KEY)
    forged = client.post("/alerts/fp-credit/silence", data={"hours": "4", "reason": "x"})
    assert forged.status_code == 403 and not stand_in.silences
    stand_in.silences.append({"id": "s-1", "matchers": [], "status": "active"})
    forged = client.post("/silences/s-1/expire", data={"csrf": "stolen"})
    assert forged.status_code == 403 and stand_in.silences[0]["status"] == "active"
    assert not [p for m, p, _ in stand_in.calls if m in ("POST", "DELETE")]


@pytest.mark.parametrize(
    ("hours", "comment", "says"), [("4", "  ", "a comment"), ("48", "x", "not &#39;48&#39;")]
)
def test_a_silence_needs_a_comment_and_an_offered_duration(
    client: TestClient, stand_in: StandIn, hours: str, comment: str, says: str
) -> None:
    page = sign_in(client, ONCALL_KEY)
    answer = client.post(
        "/alerts/fp-credit/silence",
        data={"csrf": csrf_of(page), "hours": hours, "reason": comment},
    )
    assert answer.status_code == 422 and says in answer.text and not stand_in.silences


def test_a_key_without_oncall_has_no_form_and_alerting_refuses_it(
    client: TestClient, stand_in: StandIn
) -> None:
    page = sign_in(client, SME_KEY)
    assert "/silence" not in page and "Expire</button>" not in page
    answer = client.post(
        "/alerts/fp-credit/silence", data={"csrf": csrf_of(page), "hours": "1", "reason": "x"}
    )
    assert answer.status_code == 403 and "may not alerts:write" in answer.text
    assert not stand_in.silences


def test_a_silences_text_is_escaped(client: TestClient) -> None:
    page = sign_in(client, ONCALL_KEY)
    done = client.post(
        "/alerts/fp-churn/silence", data={"csrf": csrf_of(page), "hours": "1", "reason": HOSTILE}
    ).text
    assert HOSTILE not in done and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in done


def test_covered_follows_alertings_matchers() -> None:
    credit = alert("fp-1", "credit-risk", "1.1.0", "high", feature="income")
    stamped = alert("fp-2", "churn", "2.0.0", "low", silenced_by="s-old")
    silences = [
        {"id": "pending", "status": "pending", "matchers": [{"name": "model_id", "value": ".*"}]},
        {
            "id": "s-1",
            "status": "active",
            "matchers": [
                {"name": "model_id", "value": "credit-.*", "op": "=~"},
                {"name": "feature", "value": "age", "op": "!="},
            ],
        },
    ]
    first, second = covered([credit, stamped], silences)
    assert first.silenced_by == "s-1" and second.silenced_by == "s-old"
    silences[1]["matchers"][1]["value"] = "income"  # type: ignore[index]
    assert covered([credit], silences)[0].silenced_by is None
