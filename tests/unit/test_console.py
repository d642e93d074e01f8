"""The console's pages through TestClient, on the registry and alerting stood in over HTTP."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from console.web import SESSION_COOKIE
from tests.access import api_key, revoked
from tests.console_standin import MemorySessions, StandIn, alert, console_app, model, report

ONCALL_KEY, ONCALL = api_key("olga", ["oncall", "sme"])
SME_KEY, SME = api_key("ana", ["sme"], ["credit-risk"])
PRODUCER_KEY, PRODUCER = api_key("credit-app", ["producer"])


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[ONCALL, SME, PRODUCER])
    services.models = [
        model("credit-risk", "risk-team", "high", ("1.0.0", "champion"), ("1.1.0", "shadow")),
        model("churn", "growth", "low", ("2.0.0", "champion")),
        model("fraud", "risk-team", "critical", ("3.0.0", "champion")),
    ]
    services.add_alert(alert("fp-churn-1", "churn", "2.0.0", "medium"))
    services.add_alert(alert("fp-churn-2", "churn", "2.0.0", "low", feature="age"))
    services.add_alert(alert("fp-credit", "credit-risk", "1.1.0", "high"))
    services.add_alert(
        alert("fp-acked", "fraud", "3.0.0", "critical", status="acknowledged", acknowledged_by="bo")
    )
    services.add_alert(alert("fp-quiet", "fraud", "3.0.0", "low", silenced_by="s-1"))
    services.add_alert(alert("fp-old", "fraud", "3.0.0", "low", status="resolved"))
    services.performance[("credit-risk", "1.0.0")] = [
        report(0.95, 0.9),
        report(0.80, 0.91, ["accuracy"]),
    ]
    return services


@pytest.fixture
def sessions() -> MemorySessions:
    return MemorySessions()


@pytest.fixture
def client(stand_in: StandIn, sessions: MemorySessions) -> TestClient:
    with TestClient(console_app(stand_in, sessions)) as client:
        return client


def sign_in(client: TestClient, key: str) -> str:
    """Sign in through the form; the page it ends on."""
    form = client.get("/signin").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token
    answer = client.post("/signin", data={"csrf": token[1], "key": key})
    return answer.text


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form token"
    return found[1]


def rows(page: str) -> list[tuple[str, str]]:
    return re.findall(r'data-model="([^"]+)" data-version="([^"]+)"', page)


def test_signing_in_keeps_the_key_on_the_server_and_shows_the_fleet(
    client: TestClient, sessions: MemorySessions
) -> None:
    form = client.get("/signin")
    token = csrf_of(form.text)
    answer = client.post("/signin", data={"csrf": token, "key": ONCALL_KEY}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/fleet"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if SESSION_COOKIE in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert ONCALL_KEY not in cookie
    [session] = sessions.sessions.values()
    assert session.key == ONCALL_KEY
    page = client.get("/fleet")
    assert page.status_code == 200 and "olga" in page.text
    assert ONCALL_KEY not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_console_calls_the_services_with_the_signed_in_key(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, SME_KEY)
    client.get("/fleet")
    assert stand_in.calls
    assert {key for _, _, key in stand_in.calls} == {SME_KEY}


def test_a_sign_in_without_its_form_token_is_refused(
    client: TestClient, sessions: MemorySessions
) -> None:
    client.get("/signin")  # the token cookie is set, but the form does not carry it
    answer = client.post("/signin", data={"csrf": "forged", "key": ONCALL_KEY})
    assert answer.status_code == 403 and "security token" in answer.text
    assert not sessions.sessions


def test_an_unknown_key_is_not_signed_in(client: TestClient, sessions: MemorySessions) -> None:
    page = sign_in(client, "vgl_0123456789abcdef_" + "x" * 43)
    assert "Not signed in: the API key is not known" in page
    assert not sessions.sessions


def test_pages_need_a_session(client: TestClient) -> None:
    for path in ("/fleet", "/alerts", "/alerts/fp-credit/history"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/signin"


def test_signing_out_needs_the_token_and_forgets_the_session(
    client: TestClient, sessions: MemorySessions
) -> None:
    page = sign_in(client, ONCALL_KEY)
    refused = client.post("/signout", data={"csrf": "forged"})
    assert refused.status_code == 403 and sessions.sessions
    out = client.post("/signout", data={"csrf": csrf_of(page)})
    assert "Signed out." in out.text
    assert not sessions.sessions
    assert client.get("/fleet", follow_redirects=False).headers["location"] == "/signin"


def test_the_fleet_is_sorted_worst_first_with_alerts_and_performance(client: TestClient) -> None:
    page = sign_in(client, ONCALL_KEY)
    assert rows(page) == [
        ("churn", "2.0.0"),  # two firing
        ("credit-risk", "1.1.0"),  # one firing
        ("fraud", "3.0.0"),  # two open, acknowledged and silenced: none firing
        ("credit-risk", "1.0.0"),  # high tier, nothing open
    ]
    # olga (oncall + sme) reads performance: the latest window beside its reference
    assert "accuracy 0.800 (0.910)" in page and "degraded: accuracy" in page
    assert "-1.50 (-1.00)" in page
    assert "2 (2 acknowledged or silenced)" in page


def test_the_fleet_filters_by_tier_owner_and_status(client: TestClient) -> None:
    sign_in(client, ONCALL_KEY)
    assert rows(client.get("/fleet?tier=critical").text) == [("fraud", "3.0.0")]
    assert rows(client.get("/fleet?owner=risk-team&status=shadow").text) == [
        ("credit-risk", "1.1.0")
    ]
    assert "No model version matches" in client.get("/fleet?owner=nobody").text


def test_a_key_without_the_roles_sees_neither_alerts_nor_performance(
    client: TestClient, stand_in: StandIn
) -> None:
    page = sign_in(client, PRODUCER_KEY)
    assert 'href="/alerts"' not in page and "Open alerts" not in page
    assert "do not read performance" in page and "accuracy" not in page
    assert not [p for _, p, _ in stand_in.calls if p.endswith("/performance") or "alerts" in p]
    refused = client.get("/alerts")
    assert refused.status_code == 403 and "may not read alerts" in refused.text


def test_a_key_limited_to_some_models_sees_only_those(client: TestClient) -> None:
    page = sign_in(client, SME_KEY)
    assert {m for m, _ in rows(page)} == {"credit-risk"}
    alerts = client.get("/alerts").text
    assert "fp-credit" in alerts and "fp-churn-1" not in alerts


def test_the_alerts_page_lists_firing_acknowledged_and_silenced(client: TestClient) -> None:
    sign_in(client, ONCALL_KEY)
    page = client.get("/alerts").text
    firing, acked, silenced = (
        re.search(rf'id="{name}".*?</table>', page, re.S)[0]  # type: ignore[index]
        for name in ("firing", "acknowledged", "silenced")
    )
    assert re.findall(r'data-fingerprint="([^"]+)"', firing) == [
        "fp-credit",
        "fp-churn-1",
        "fp-churn-2",
    ]  # most severe first
    assert "fp-acked" in acked and "acknowledged by bo" in acked
    assert "fp-quiet" in silenced
    assert "fp-old" not in page
    assert firing.count("Acknowledge</button>") == 3
    assert 'name="viewport"' in page


def test_oncall_acknowledges_from_the_page_and_the_history_says_who(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, ONCALL_KEY)
    page = client.get("/alerts").text
    done = client.post("/alerts/fp-credit/ack", data={"csrf": csrf_of(page), "comment": "on it"})
    assert done.status_code == 200 and "Acknowledged fp-credit" in done.text
    assert stand_in.alerts["fp-credit"].acknowledged_by == "olga"
    history = client.get("/alerts/fp-credit/history").text
    assert re.search(r"ack</td><td[^>]*>olga</td><td[^>]*>on it", history)


def test_an_acknowledgement_without_the_form_token_changes_nothing(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, ONCALL_KEY)
    answer = client.post("/alerts/fp-credit/ack", data={"comment": "forged"})
    assert answer.status_code == 403
    assert stand_in.alerts["fp-credit"].status == "firing"
    assert not [p for m, p, _ in stand_in.calls if m == "POST"]


def test_a_key_without_oncall_gets_no_acknowledge_button_and_alerting_refuses_it(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, SME_KEY)
    page = client.get("/alerts").text
    assert "fp-credit" in page and "Acknowledge</button>" not in page
    answer = client.post("/alerts/fp-credit/ack", data={"csrf": csrf_of(page)})
    assert answer.status_code == 403 and "may not alerts:write" in answer.text
    assert stand_in.alerts["fp-credit"].status == "firing"


def test_a_revoked_key_ends_the_session(
    client: TestClient, stand_in: StandIn, sessions: MemorySessions
) -> None:
    sign_in(client, ONCALL_KEY)
    stand_in.keyring.apply(revoked(ONCALL))
    page = client.get("/fleet")
    assert page.status_code == 401 and "was revoked" in page.text
    assert not sessions.sessions


def test_a_service_that_does_not_answer_is_named(client: TestClient, stand_in: StandIn) -> None:
    sign_in(client, ONCALL_KEY)
    stand_in.down.add("alerting")
    page = client.get("/alerts")
    assert page.status_code == 503 and "The alerting is not answering" in page.text
