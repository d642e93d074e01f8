"""The console on the real stack, in Debian's Chromium: every service its own process on the
real Kafka and Redis, traffic and labels sent over HTTP as applications and label pipelines
send them, then one person with one key (on-call, expert, data scientist and auditor for the
model) signs in and does what the issue's check does: reads the fleet, opens the model page and
its heat map and performance chart, acknowledges the drift alert (the history names them), flags
a prediction from the review page, and downloads the auditor's report naming the promotion."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.access import SESSION, bearer
from tests.e2e.stack import Stack, stack_env
from tests.kafka_tools import private_copy
from vigil.adapters.settings import VigilSettings
from vigil.wire.topics import JOINS, PERFORMANCE_PARTIALS, PERFORMANCE_WINDOWS

pytestmark = pytest.mark.e2e
sync_api = pytest.importorskip("playwright.sync_api")
MINUTE = 60
PREDICTIONS = 1500  # per window


@pytest.fixture(scope="module")
def stack(infra: VigilSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = Path(tmp_path_factory.mktemp("console-e2e"))
    run = uuid.uuid4().hex[:8]
    bootstrap = infra.kafka_bootstrap
    topics = {
        name: private_copy(bootstrap, topic, run).name
        for name, topic in (
            ("CHANGELOG", JOINS),
            ("PARTIALS", PERFORMANCE_PARTIALS),
            ("WINDOWS", PERFORMANCE_WINDOWS),
        )
    }
    env = stack_env(
        VIGIL_DRIFT_WINDOW_SECONDS="60",
        VIGIL_DRIFT_LATENESS_SECONDS="5",
        VIGIL_DRIFT_IDLE_CLOSE_SECONDS="3",
        VIGIL_JOINER_GROUP_ID=f"e2e-joiner-{run}",
        VIGIL_JOINER_WORKER_ID=f"e2e-joiner-{run}",
        VIGIL_JOINER_STATE_DIR=str(logs / "joiner"),
        **{f"VIGIL_JOINER_{name}_TOPIC": topic for name, topic in topics.items()},
        VIGIL_REGISTRY_METRICS_GROUP=f"e2e-registry-metrics-{run}",
        VIGIL_REGISTRY_PERFORMANCE_REDIS_PREFIX=f"e2e:{run}:performance:",
        VIGIL_REGISTRY_DRIFT_REDIS_PREFIX=f"e2e:{run}:drift:",
        VIGIL_REGISTRY_PAIRS_GROUP=f"e2e-registry-pairs-{run}",
        VIGIL_REGISTRY_PAIRS_REDIS_PREFIX=f"e2e:{run}:pairs:",
        VIGIL_CONSOLE_REDIS_PREFIX=f"e2e:{run}:console",
    )
    running = Stack(logs, env, workers=("feedback_joiner",), console=True)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def _rows(rng: np.random.Generator, n: int, income_shift: float = 0.0) -> list[dict[str, Any]]:
    incomes = rng.lognormal(10.5, 0.4, n) * (1 + income_shift)
    ages = rng.normal(42, 11, n)
    regions = rng.choice(["eu", "us", "apac"], n, p=[0.5, 0.3, 0.2])
    return [
        {"income": float(i), "age": float(a), "region": str(r)}
        for i, a, r in zip(incomes, ages, regions, strict=True)
    ]


def _register(http: httpx.Client, url: str, model_id: str, version: str, status: str) -> None:
    registered = http.post(
        url + "/v1/models",
        json={
            "model_id": model_id,
            "version": version,
            "task": "binary",
            "features": [
                {"name": "income", "type": "numeric"},
                {"name": "age", "type": "numeric"},
                {"name": "region", "type": "categorical"},
            ],
            "risk": {"probability": 4, "impact": 5},
            "owner": "risk-team",
            "purpose": "loans",
            "status": status,
            "performance": {"window_seconds": 60},
        },
    )
    assert registered.status_code == 201, registered.text


def _wait(what: str, found: Callable[[], Any], stack: Stack, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(1)
    logs = "\n".join(f"--- {s}\n{stack.tail(s, 15)}" for s in stack.processes)
    raise AssertionError(f"{what} within {seconds} s; the services' logs:\n{logs}")


def _traffic(stack: Stack, model_id: str, key: str) -> None:
    """A normal window then one whose income shifted, and a label for most predictions."""
    rng = np.random.default_rng(11)
    app = httpx.Client(timeout=30, headers=bearer(key))
    start = (time.time() // MINUTE) * MINUTE - 10 * MINUTE
    events = []
    for window, shift in ((0, 0.0), (1, 0.6)):
        for i, row in enumerate(_rows(rng, PREDICTIONS, shift)):
            positive = bool(rng.random() < 0.4)
            events.append(
                {
                    "prediction_id": f"{model_id}-{window}-{i}",
                    "model_id": model_id,
                    "model_version": "1.0.0",
                    "timestamp": start + window * MINUTE + i * 50 / PREDICTIONS,
                    "features": row,
                    "prediction": positive,
                    "score": 0.8 if positive else 0.2,
                }
            )
    for at in range(0, len(events), 500):
        sent = app.post(
            stack.url("prediction_logger") + "/v1/predictions", json=events[at : at + 500]
        )
        assert sent.status_code == 200 and sent.json()["accepted"] == 500, sent.text
    labels = [
        {
            "feedback_id": f"label-{e['prediction_id']}",
            "prediction_id": e["prediction_id"],
            "model_id": model_id,
            "actual": e["prediction"] if k % 5 else not e["prediction"],
            "source": "ground_truth",
        }
        for k, e in enumerate(events)
        if k % 3
    ]
    for at in range(0, len(labels), 500):
        sent = app.post(stack.url("feedback") + "/v1/feedback", json=labels[at : at + 500])
        assert sent.status_code == 200, sent.text


def test_a_person_uses_the_console_on_the_real_stack(
    stack: Stack, browser: object, screenshot: Callable[[object, str], Path], tmp_path: Path
) -> None:
    model_id = f"e2e-console-{uuid.uuid4().hex[:6]}"
    registry = stack.url("registry")
    admin = httpx.Client(timeout=30, headers=SESSION)
    _register(admin, registry, model_id, "1.0.0", "champion")
    _register(admin, registry, model_id, "1.1.0", "shadow")
    reference = admin.post(
        registry + f"/v1/models/{model_id}/versions/1.0.0/reference",
        json=_rows(np.random.default_rng(3), 4000),
    )
    assert reference.status_code == 200, reference.text
    keys = {}
    for name, roles in (
        ("app", ["producer"]),
        ("olga", ["oncall", "sme", "data_scientist", "auditor"]),
    ):
        made = admin.post(
            registry + "/v1/keys",
            json={"name": f"{name}-{model_id}", "roles": roles, "models": [model_id]},
        )
        assert made.status_code == 201, made.text
        keys[name] = made.json()["key"]
    person = f"olga-{model_id}"
    olga = httpx.Client(timeout=30, headers=bearer(keys["olga"]))
    promoted = olga.post(
        registry + f"/v1/models/{model_id}/versions/1.1.0/promote",
        json={"reason": "retrained on October <b>data</b>"},
    )
    assert promoted.status_code == 200, promoted.text
    demoted_back = olga.post(
        registry + f"/v1/models/{model_id}/versions/1.0.0/promote",
        json={"reason": "roll back: the shadow is not labelled yet"},
    )
    assert demoted_back.status_code == 200, demoted_back.text

    _traffic(stack, model_id, keys["app"])
    alerting = stack.url("alerting")
    firing = _wait(
        "a drift alert",
        lambda: [
            a
            for a in olga.get(alerting + "/v1/alerts", params={"model_id": model_id}).json()
            if a["rule"] == "feature_drift" and a["status"] == "firing"
        ],
        stack,
    )
    version = f"{registry}/v1/models/{model_id}/versions/1.0.0"
    _wait(
        "two drift windows in the registry's heat map",
        lambda: (
            len(
                olga.get(version + "/drift/heatmap", params={"columns": 50})
                .json()
                .get("columns", [])
            )
            >= 2
        ),
        stack,
    )
    _wait(
        "a performance report with labels",
        lambda: any(r["labelled"] for r in olga.get(version + "/performance").json()),
        stack,
    )

    console = stack.url("console")
    expect = sync_api.expect
    context = browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(console + "/fleet")
    page.fill("#key", keys["olga"])
    page.click("button:has-text('Sign in')")
    expect(page).to_have_url(console + "/fleet")
    row = page.locator(f"tr[data-model='{model_id}'][data-version='1.0.0']")
    expect(row).to_contain_text("champion")
    expect(page.locator(f"tr[data-model='{model_id}'][data-version='1.1.0']")).to_contain_text(
        "challenger"
    )
    expect(row.locator(".drift")).to_contain_text("income")
    screenshot(page, "fleet")

    row.locator("td[data-label=Model] a").click()
    expect(page.locator("h1")).to_contain_text(model_id)
    expect(page.locator("#heatmap tr[data-feature=income] a").first).to_be_visible()
    assert page.locator("#heatmap a").count() >= 2 * 3
    expect(page.locator("#metric-chart path[data-series=realised]")).to_have_count(1)
    screenshot(page, "model")

    page.click("nav >> text=Alerts")
    alert = page.locator(f"#firing tr[data-fingerprint='{firing[0]['fingerprint']}']")
    alert.locator("input[name=comment]").fill("looking at the income feed")
    alert.locator("button:has-text('Acknowledge')").click()
    acknowledged = page.locator(f"#acknowledged tr[data-fingerprint='{firing[0]['fingerprint']}']")
    expect(acknowledged).to_contain_text(f"acknowledged by {person}")
    acknowledged.locator("a:has-text('History')").click()
    expect(page.locator("#history tr", has_text="ack")).to_contain_text(person)
    screenshot(page, "history")

    page.goto(f"{console}/review?model_id={model_id}")
    expect(page.locator("#item")).to_be_visible(timeout=30_000)
    prediction_id = page.locator("#prediction-id").inner_text().strip()
    page.fill("#comment", "approved though the income looks made up")
    page.click("button[value=harmful]")
    expect(page.locator(".notice")).to_contain_text("harmful")
    screenshot(page, "review")
    feedback = stack.url("feedback")
    summary = _wait(
        "the flag in the feedback summary",
        lambda: [
            f
            for f in olga.get(feedback + f"/v1/models/{model_id}/feedback-summary").json()["flags"]
            if f["prediction_id"] == prediction_id
        ],
        stack,
        60,
    )
    assert (summary[0]["flag"], summary[0]["reviewer"]) == ("harmful", person)

    page.goto(f"{console}/models/{model_id}")
    page.click("#report-link")
    expect(page).to_have_url(f"{console}/models/{model_id}/report")
    promotions = page.locator("#promotions tr.promotion")
    expect(promotions).to_have_count(2)
    expect(promotions.nth(0)).to_contain_text("retrained on October <b>data</b>")
    screenshot(page, "report")
    with page.expect_download() as info:
        page.click("#download-json")
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    document = json.loads(saved.read_text())
    assert [p["version"] for p in document["promotions"]] == ["1.1.0", "1.0.0"]
    assert all(p["principal"] == person for p in document["promotions"]), document["promotions"]

    # The audit trail page, on the registry's own trail: both promotions, by this person.
    page.goto(f"{console}/models/{model_id}")
    page.click("#audit-link")
    calls = page.locator("#audit tbody tr", has_text="promote")
    expect(calls).to_have_count(2)
    expect(calls.first).to_contain_text(person)
    expect(calls.first).to_contain_text("allowed (200)")
    screenshot(page, "audit")
    assert not [p for p in problems if not re.search(r"favicon", p)], problems
    context.close()
