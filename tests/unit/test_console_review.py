"""The console's review page through TestClient, on the feedback service stood in over HTTP:
the next item, the flag form, the flags' summary in business terms, refusals."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from console.review import flag_terms, money
from tests.access import api_key
from tests.console_standin import StandIn, console_app, model
from vigil.performance.labels import typed_label

SME_KEY, SME = api_key("ana", ["sme"], ["credit-risk"])
BO_KEY, BO = api_key("bo", ["sme"])
ONCALL_KEY, ONCALL = api_key("olga", ["oncall"])
HOSTILE = "<script>alert('x')</script>"
VALUE = {"currency": "EUR", "true_positive": 120, "false_positive": -40, "false_negative": -2000}


def item(prediction_id: str, **features: object) -> dict[str, object]:
    return {
        "prediction_id": prediction_id,
        "model_id": "credit-risk",
        "model_version": "1.0.0",
        "timestamp": "2026-11-30T10:02:11.512000Z",
        "features": features or {"income": 5400.0, "region": "north"},
        "prediction": True,
        "score": 0.52,
        "reason": "low_confidence",
    }


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[SME, BO, ONCALL])
    services.models = [
        model("credit-risk", "risk-team", "high", ("1.0.0", "champion"), ("1.1.0", "shadow")),
        model("fraud", "risk-team", "critical", ("3.0.0", "champion")),
    ]
    services.review_queue["credit-risk"] = [item("p-17"), item("p-18", region=HOSTILE)]
    services.business_values["credit-risk"] = VALUE
    return services


@pytest.fixture
def client(stand_in: StandIn) -> TestClient:
    with TestClient(console_app(stand_in)) as client:
        return client


def sign_in(client: TestClient, key: str) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
    assert token
    return client.post("/signin", data={"csrf": token[1], "key": key}).text


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form token"
    return found[1]


def flag(client: TestClient, page: str, **fields: str) -> object:
    prediction = re.search(r'name="prediction_id" value="([^"]+)"', page)
    assert prediction
    form = {"csrf": csrf_of(page), "model_id": "credit-risk", "prediction_id": prediction[1]}
    return client.post("/review/flag", data={**form, **fields})


def test_an_sme_sees_the_next_item_with_its_features_and_the_flag_form(client: TestClient) -> None:
    sign_in(client, SME_KEY)
    page = client.get("/review").text
    assert 'id="prediction-id">p-17<' in page
    assert re.search(r"income</td>\s*<td[^>]*>5400.0<", page)
    assert "0.520" in page and "low_confidence" in page and "Leased to you until" in page
    assert [b for b in re.findall(r'name="flag" value="(\w+)"', page)] == [
        "incorrect",
        "unexpected",
        "harmful",
        "ok",
    ]
    assert '<label for="comment">' in page and '<label for="actual">' in page
    assert "false positive, worth -€40 instead of €120" in page  # a positive prediction
    assert 'href="/review"' in page and 'href="/health"' in page


def test_a_flag_is_sent_as_the_principal_and_the_next_item_follows(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, SME_KEY)
    page = client.get("/review").text
    done = flag(client, page, flag="harmful", comment="approved a known fraud", actual="false")
    assert done.status_code == 200  # type: ignore[attr-defined]
    [sent] = stand_in.feedback
    assert sent["prediction_id"] == "p-17" and sent["flag"] == "harmful"
    assert sent["reviewer"] == "ana" and sent["comment"] == "approved a known fraud"
    assert sent["actual"] is False and re.fullmatch(r"[0-9a-f]{32}", sent["feedback_id"])
    text = done.text  # type: ignore[attr-defined]
    assert "Flagged p-17 as harmful" in text and 'id="prediction-id">p-18<' in text
    assert "1 of 1 judgements flagged harmful (100.0 %)" in text
    assert "approved a known fraud" in text


def test_a_forged_or_replayed_flag_changes_nothing(client: TestClient, stand_in: StandIn) -> None:
    sign_in(client, SME_KEY)
    page = client.get("/review").text
    forged = client.post(
        "/review/flag", data={"model_id": "credit-risk", "prediction_id": "p-17", "flag": "ok"}
    )
    assert forged.status_code == 403 and "security token" in forged.text
    other = TestClient(client.app)  # another browser's session replaying this page's token
    sign_in(other, BO_KEY)
    replayed = flag(other, page, flag="ok")
    assert replayed.status_code == 403  # type: ignore[attr-defined]
    assert not stand_in.feedback
    assert not [p for m, p, _ in stand_in.calls if m == "POST"]


def test_event_text_is_escaped(client: TestClient, stand_in: StandIn) -> None:
    stand_in.review_queue["credit-risk"].reverse()  # the hostile item first
    sign_in(client, SME_KEY)
    page = client.get("/review").text
    flag(client, page, flag="unexpected", comment=HOSTILE)
    shown = client.get("/review").text
    assert HOSTILE not in page and HOSTILE not in shown
    assert "&lt;script&gt;" in page and "&lt;script&gt;" in shown


def test_a_role_without_review_gets_a_page_naming_the_roles(client: TestClient) -> None:
    sign_in(client, ONCALL_KEY)
    page = client.get("/review")
    assert page.status_code == 403
    assert "(oncall) may not review predictions: that needs sme or admin" in page.text
    assert 'href="/review"' not in client.get("/health").text


def test_a_model_outside_the_scope_is_not_found(client: TestClient, stand_in: StandIn) -> None:
    page = sign_in(client, SME_KEY)
    assert client.get("/review?model_id=fraud").status_code == 404
    answer = client.post(
        "/review/flag",
        data={"csrf": csrf_of(page), "model_id": "fraud", "prediction_id": "p-1", "flag": "ok"},
    )
    assert answer.status_code == 404 and "No model &#39;fraud&#39; in your key" in answer.text
    assert not stand_in.feedback


def test_an_unknown_flag_is_refused(client: TestClient, stand_in: StandIn) -> None:
    sign_in(client, SME_KEY)
    answer = flag(client, client.get("/review").text, flag="terrible")
    assert answer.status_code == 422 and not stand_in.feedback  # type: ignore[attr-defined]


def test_an_empty_queue_says_so(client: TestClient, stand_in: StandIn) -> None:
    stand_in.review_queue["credit-risk"] = []
    sign_in(client, SME_KEY)
    page = client.get("/review").text
    assert "The queue is empty" in page and "/review/flag" not in page
    assert "No expert has judged this model" in page


def test_the_summary_counts_agreement_and_business_terms(
    client: TestClient, stand_in: StandIn
) -> None:
    stand_in.review_queue["credit-risk"] = [item(f"p-{i}") for i in range(4)]
    for key, flags in ((SME_KEY, ["incorrect", "incorrect", "ok"]), (BO_KEY, ["incorrect", "ok"])):
        browser = TestClient(client.app)
        sign_in(browser, key)
        page = browser.get("/review?model_id=credit-risk").text
        for chosen in flags:  # each answer is the next item's page
            page = flag(browser, page, flag=chosen).text  # type: ignore[attr-defined]
    sign_in(client, SME_KEY)
    page = client.get("/review").text
    assert "3 of 5 judgements flagged incorrect (60.0 %)" in page
    assert "2 of 5 judgements flagged ok (40.0 %)" in page
    # 3 incorrect: all false positives (each 40 below a true negative's 0) or all false
    # negatives (each 2,120 below a true positive's 120)
    assert "The 3 judged incorrect cost between €120 and €6,360" in page
    assert "Agreement on 2 item(s) judged by two or more experts (2 pair(s)" in page
    assert "50 % of pairs agree" in page and "Cohen's kappa: ana &amp; bo 0.00." in page


def test_a_model_without_a_business_value_gets_counts_only(
    client: TestClient, stand_in: StandIn
) -> None:
    del stand_in.business_values["credit-risk"]
    sign_in(client, SME_KEY)
    flag(client, client.get("/review").text, flag="incorrect")
    page = client.get("/review").text
    assert "no business value definition" in page and "€" not in page


def test_the_true_outcome_is_read_as_the_command_line_reads_it() -> None:
    assert [typed_label(t) for t in ("true", " FALSE ", "3", "0.5", "cat", "  ")] == [
        True,
        False,
        3,
        0.5,
        "cat",
        None,
    ]


def test_money_and_the_other_tasks_terms() -> None:
    assert money(-1640, "EUR") == "-€1,640" and money(2.5, "CHF") == "CHF 2.50"
    readme = {"judgements": 205, "counts": {"incorrect": 41}, "rates": {"incorrect": 0.2}}
    value = {**VALUE, "true_negative": 0, "false_positive": -40}  # the README's example
    assert flag_terms(readme, value, "binary", "3")[-1].startswith(
        "The 41 judged incorrect cost between €1,640 and €86,920 against right calls"
    )
    summary = {"judgements": 4, "counts": {"incorrect": 2, "ok": 2}, "rates": {"incorrect": 0.5}}
    matrix = {"matrix": {"cat": {"cat": 10, "dog": -5}, "dog": {"dog": 8, "cat": 0}}}
    [_, _, line] = flag_terms(summary, matrix, "multiclass", "2")
    assert line == (
        "By version 2's value matrix a wrong label costs between €8 and €15 against the right"
        " one; the 2 judged incorrect: between €16 and €30."
    )
    [*_, line] = flag_terms(summary, {"cost_per_unit_error": 3}, "regression", "2")
    assert "each unit of error costs €3" in line and "do not say how large" in line


def test_the_new_pages_and_forms_need_a_session(client: TestClient, stand_in: StandIn) -> None:
    for path in ("/review", "/health"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/signin"
    for path in ("/review/flag", "/alerts/fp-1/silence", "/silences/s-1/expire"):
        answer = client.post(path, data={"csrf": "x", "flag": "ok"}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/signin"
    assert not stand_in.calls


def test_a_drifted_item_says_which_group_drifted_and_on_what(
    client: TestClient, stand_in: StandIn
) -> None:
    drifted = {
        **item("p-40"),
        "reason": "drifted",
        "drift": {
            "window_start": "2026-11-30T10:00:00Z",
            "window_end": "2026-11-30T11:00:00Z",
            "segment": "region",
            "group": HOSTILE,
            "drifted": ["income", "age"],
        },
    }
    whole = {**item("p-41"), "reason": "drifted", "drift": {"window_start": "x", "window_end": "y"}}
    stand_in.review_queue["credit-risk"] = [drifted, whole]
    sign_in(client, SME_KEY)
    page = client.get("/review").text
    why = page.split('id="why">')[1].split("</dd>")[0]
    assert why.startswith("drifted: the group region = &lt;script&gt;")
    assert why.endswith("drifted in its window (income, age)")
    sent = flag(client, page, flag="ok")
    assert sent.status_code == 200, sent.text  # type: ignore[attr-defined]
    assert 'id="why">drifted: its window drifted<' in sent.text  # type: ignore[attr-defined]
