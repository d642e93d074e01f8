"""The console's fleet summary, model page and window page through TestClient, on the registry
and alerting stood in over HTTP (tests/console_standin.py), and the fleet's pure logic."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from console.handlers import fleet_index, fleet_rows, select_rows, worst_first
from tests.access import api_key
from tests.console_model_data import HOSTILE_FEATURE, heatmap, stock
from tests.console_standin import StandIn, alert, console_app, model

SME_KEY, SME = api_key("ana", ["sme"], ["credit-risk", "hostile"])
ONCALL_KEY, ONCALL = api_key("olga", ["oncall"])
PRODUCER_KEY, PRODUCER = api_key("app", ["producer"], ["credit-risk"])


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[SME, ONCALL, PRODUCER])
    credit = model(
        "credit-risk", "risk-team", "high", ("1.0.0", "champion"), ("1.1.0", "challenger")
    )
    credit["versions"][0]["reassessment_overdue"] = True
    services.models = [
        credit,
        model("hostile", "growth", "low", ("1.0.0", "champion")),
        model("secret", "others", "critical", ("1.0.0", "champion")),
    ]
    stock(services, "credit-risk")
    stock(services, "hostile", 3, [HOSTILE_FEATURE])
    services.add_alert(alert("fp-credit", "credit-risk", "1.0.0", "high"))
    services.add_alert(alert("fp-secret", "secret", "1.0.0", "high"))
    return services


@pytest.fixture
def client(stand_in: StandIn) -> TestClient:
    with TestClient(console_app(stand_in)) as client:
        return client


def sign_in(client: TestClient, key: str) -> str:
    form = client.get("/signin").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token
    return client.post("/signin", data={"csrf": token[1], "key": key}).text


def paths(stand_in: StandIn) -> list[str]:
    return [path for _, path, _ in stand_in.calls]


def test_the_fleet_reads_one_summary_instead_of_one_call_per_version(
    client: TestClient, stand_in: StandIn
) -> None:
    page = sign_in(client, SME_KEY)
    assert paths(stand_in).count("/v1/fleet") == 1
    assert not [p for p in paths(stand_in) if p.endswith("/performance")]
    row = re.search(r'data-model="credit-risk" data-version="1.0.0">.*?</tr>', page, re.S)
    assert row
    assert "5160 predictions in 24 h" in row[0] and "<polyline" in row[0]
    assert "dataset drift</span> income" in row[0]
    assert "2026-11-30 11:55" in row[0] and "reassessment overdue" in row[0]
    assert 'href="/models/credit-risk?version=1.0.0"' in row[0]
    assert 'data-model="secret"' not in page


def test_the_fleet_filters_by_state_and_puts_drift_before_calm(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, SME_KEY)
    drifting = client.get("/fleet?state=drifting").text
    assert re.findall(r'data-model="([^"]+)" data-version="([^"]+)"', drifting) == [
        ("credit-risk", "1.0.0"),
        ("hostile", "1.0.0"),
    ]
    overdue = client.get("/fleet?state=overdue").text
    assert re.findall(r'data-model="([^"]+)" data-version', overdue) == ["credit-risk"]
    quiet = client.get("/fleet?state=quiet").text
    assert re.findall(r'data-version="([^"]+)"', quiet) == ["1.1.0"]


def test_without_a_fleet_summary_the_fleet_still_lists_every_version(
    client: TestClient, stand_in: StandIn
) -> None:
    stand_in.fleet.clear()
    page = sign_in(client, PRODUCER_KEY)  # no performance, no alerts
    assert "do not read performance" in page and "accuracy" not in page
    row = re.search(r'data-version="1.0.0">.*?</tr>', page, re.S)
    assert row and 'class="traffic">—' in row[0] and "no window yet" in row[0]


def test_worst_first_ranks_drift_and_degradation_above_the_tier() -> None:
    models = [
        model("calm", "a", "critical", ("1", "champion")),
        model("drifting", "a", "low", ("1", "champion")),
        model("degraded", "a", "low", ("1", "champion")),
    ]
    summary = fleet_index(
        {
            "versions": [
                {"model_id": "drifting", "version": "1", "drift": {"dataset_drift": True}},
                {
                    "model_id": "degraded",
                    "version": "1",
                    "performance_readable": True,
                    "performance": {"metric": "accuracy", "value": 0.7, "degraded": ["accuracy"]},
                },
            ]
        }
    )
    rows = fleet_rows(models, [], summary)
    assert [r.model_id for r in worst_first(rows)] == ["degraded", "drifting", "calm"]
    assert [r.model_id for r in select_rows(rows, state="degraded")] == ["degraded"]
    assert [r.model_id for r in select_rows(rows, state="quiet")] == ["calm"]


def test_the_model_page_shows_the_champion_with_every_section(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, SME_KEY)
    page = client.get("/models/credit-risk")
    assert page.status_code == 200
    text = page.text
    assert "version 1.0.0 · champion" in text
    assert len(re.findall(r'<a href="/models/credit-risk/versions/1.0.0/windows/', text)) == 22
    assert 'aria-label="income, 2026-11-30 01:00: psi 0.02, not drifted"' in text
    assert 'data-series="realised"' in text and 'data-series="estimated"' in text
    assert 'class="line reference dashed"' in text
    assert "0.400 [0.360, 0.440]" in text and "beyond tolerance" in text
    assert "Verdict: <strong>better</strong>" in text
    assert 'data-fingerprint="fp-credit"' in text and "fp-secret" not in text
    assert "/v1/models/credit-risk/comparison" in paths(stand_in)


def test_another_version_is_compared_with_the_champion(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, SME_KEY)
    stand_in.heatmaps[("credit-risk", "1.1.0")] = heatmap("credit-risk", "1.1.0", 2)
    page = client.get("/models/credit-risk?version=1.1.0&days=90").text
    assert "version 1.1.0 · challenger" in page
    assert '<option value="30" selected>' in page  # at most 30 days
    assert page.count('<a href="/models/credit-risk/versions/1.1.0/windows/') == 2
    assert "/v1/models/credit-risk/versions/1.1.0/drift/heatmap" in paths(stand_in)


def test_a_model_outside_the_scope_is_not_found_like_one_that_does_not_exist(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, SME_KEY)
    stand_in.calls.clear()
    secret, unknown = client.get("/models/secret"), client.get("/models/no-such-model")
    assert secret.status_code == unknown.status_code == 404
    assert secret.text.replace("secret", "X") == unknown.text.replace("no-such-model", "X")
    window = client.get("/models/secret/versions/1.0.0/windows/2026-11-30T10:17:00+00:00")
    assert window.status_code == 404
    assert paths(stand_in) == [
        "/v1/models/secret",
        "/v1/models/no-such-model",
        "/v1/models/secret",
        "/v1/models/secret/versions/1.0.0/drift/windows/2026-11-30T10:17:00+00:00",
    ]


def test_a_key_without_performance_or_alerts_sees_notes_not_errors(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, PRODUCER_KEY)
    page = client.get("/models/credit-risk")
    assert page.status_code == 200
    assert page.text.count("Your key&#39;s roles do not read performance.") == 3
    assert "Your key&#39;s roles do not read alerts." in page.text
    assert 'id="heatmap"' in page.text
    assert not [p for p in paths(stand_in) if p.endswith(("performance", "fairness", "comparison"))]


def test_a_section_the_registry_refuses_is_a_note(client: TestClient, stand_in: StandIn) -> None:
    sign_in(client, ONCALL_KEY)  # oncall reads alerts and models, not performance
    del stand_in.heatmaps[("credit-risk", "1.0.0")]
    page = client.get("/models/credit-risk").text
    assert "No drift: no heat map" in page
    assert "do not read performance" in page and 'data-fingerprint="fp-credit"' in page


def test_the_window_page_puts_the_asked_feature_first_with_its_distribution(
    client: TestClient, stand_in: StandIn
) -> None:
    sign_in(client, SME_KEY)
    start = stand_in.heatmaps[("credit-risk", "1.0.0")]["columns"][5]["window_start"]
    path = f"/models/credit-risk/versions/1.0.0/windows/{quote(start, safe='')}?feature=region"
    page = client.get(path)
    assert page.status_code == 200
    sections = re.findall(r'<section class="feature([^"]*)" data-feature="([^"]+)"', page.text)
    assert sections == [(" focused", "region"), (" drifted", "income")]
    assert page.text.count('class="win-bar"') == 3 + 4  # region and unseen; income's 4 bins
    assert "60.0 %" in page.text  # region north: 60 of 98
    missing = client.get("/models/credit-risk/versions/1.0.0/windows/2020-01-01T00:00:00+00:00")
    assert missing.status_code == 404 and "No drift: no window" in missing.text


def test_text_from_events_is_escaped(client: TestClient) -> None:
    sign_in(client, SME_KEY)
    page = client.get("/models/hostile").text
    assert HOSTILE_FEATURE not in page
    assert "&lt;script&gt;alert(&#34;feature&#34;)&lt;/script&gt;" in page
    assert "?feature=%3Cscript%3Ealert%28%22feature%22%29%3C%2Fscript%3E" in page


def test_drift_by_segment_is_asked_from_the_model_page(
    client: TestClient, stand_in: StandIn
) -> None:
    """The version's segments are offered; the chosen one's groups are shown as the registry
    judged them, and a group too small says it was not judged."""
    stand_in.versions["credit-risk"][0]["segments"] = [{"name": "region"}]
    stand_in.versions["credit-risk"][0]["sensitive_attributes"] = ["age"]
    stand_in.segment_drift[("credit-risk", "1.0.0", "region")] = {
        "segment": "region",
        "events": 2100,
        "truncated": False,
        "min_events": 100,
        "groups": [
            {
                "group": "us",
                "events": 2000,
                "judged": True,
                "dataset_drift": True,
                "drifted_features": ["income"],
            },
            {
                "group": "<b>eu</b>",
                "events": 40,
                "judged": False,
                "dataset_drift": False,
                "drifted_features": ["income"],
            },
        ],
    }
    sign_in(client, SME_KEY)
    page = client.get("/models/credit-risk").text
    assert '<option value="region"' in page and '<option value="age"' in page
    assert 'id="segment-drift"' not in page  # nothing asked yet
    asked = client.get("/models/credit-risk", params={"segment": "region"}).text
    us = re.search(r'<tr data-group="us">(.*?)</tr>', asked, re.S)
    assert us and "income" in us[1] and "yes" in us[1]
    assert "&lt;b&gt;eu&lt;/b&gt;" in asked and "<b>eu</b>" not in asked
    assert "(under 100: not judged)" in asked
    assert "/v1/models/credit-risk/versions/1.0.0/drift/segments" in paths(stand_in)
    missing = client.get("/models/credit-risk", params={"segment": "channel"}).text
    assert "No drift by segment: no segment" in missing
