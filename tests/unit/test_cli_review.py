"""``vigil review``, ``vigil compare`` and ``vigil promote``: what they ask the services and what
they send."""

from __future__ import annotations

import json

import httpx
import pytest

from vigil.cli import main

ITEM = {
    "prediction_id": "p-7",
    "model_id": "credit-risk",
    "model_version": "1.0.0",
    "features": {"income": 52000},
    "prediction": True,
    "score": 0.52,
    "reason": "low_confidence",
}


class Services:
    """What the feedback service and the registry would answer, and what they were sent."""

    def __init__(self, items: list[dict[str, object]]) -> None:
        self.items = items
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if request.url.path == "/v1/review-queue":
            handed, self.items = self.items[:1], self.items[1:]
            return httpx.Response(200, json={"model_id": "credit-risk", "items": handed})
        if request.url.path == "/v1/feedback":
            return httpx.Response(200, json={"accepted": 1, "feedback_ids": ["f-1"]})
        if request.url.path.endswith("/comparison"):
            return httpx.Response(200, json={"verdict": "no significant difference"})
        if request.url.path.endswith("/promote"):
            return httpx.Response(200, json={"promoted": {"version": "2.0.0"}, "demoted": []})
        return httpx.Response(404, json={"detail": "no such route"})


def _run(services: Services, *argv: str) -> int:
    client = httpx.Client(transport=httpx.MockTransport(services))
    return main(["--key", "vgl_k", "--feedback-url", "http://feedback", *argv], client=client)


def test_a_flag_from_the_options_goes_to_the_feedback_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    services = Services([ITEM, {**ITEM, "prediction_id": "p-8"}])
    code = _run(
        services,
        "review",
        "credit-risk",
        "--count",
        "3",
        "--flag",
        "harmful",
        "--comment",
        "approved a fraud",
        "--actual",
        "false",
    )
    assert code == 0
    posted = [json.loads(r.content) for r in services.sent if r.method == "POST"]
    assert [p["prediction_id"] for p in posted] == ["p-7", "p-8"]  # then the queue was empty
    assert posted[0] == {
        "prediction_id": "p-7",
        "model_id": "credit-risk",
        "flag": "harmful",
        "source": "sme",
        "comment": "approved a fraud",
        "actual": False,
    }
    assert all(r.headers["authorization"] == "Bearer vgl_k" for r in services.sent)
    assert json.loads(capsys.readouterr().out)["judged"] == 2


def test_a_flag_typed_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["Incorrect", "declined a good customer", "1"])
    monkeypatch.setattr("builtins.input", lambda _: next(answers))
    services = Services([ITEM])
    assert _run(services, "review", "credit-risk") == 0
    (posted,) = [json.loads(r.content) for r in services.sent if r.method == "POST"]
    assert (posted["flag"], posted["comment"], posted["actual"]) == (
        "incorrect",
        "declined a good customer",
        1,
    )


def test_compare_asks_the_registry_for_both_versions(capsys: pytest.CaptureFixture[str]) -> None:
    services = Services([])
    code = _run(
        services,
        "--url",
        "http://registry",
        "compare",
        "credit-risk",
        "1.0.0",
        "2.0.0",
        "--since",
        "2026-11-30T00:00:00Z",
    )
    assert code == 0
    (request,) = services.sent
    assert request.url.host == "registry"
    assert request.url.params["versions"] == "1.0.0,2.0.0"
    assert request.url.params["since"] == "2026-11-30T00:00:00Z"
    assert json.loads(capsys.readouterr().out)["verdict"] == "no significant difference"


def test_promote_sends_the_reason_and_the_version_it_was_compared_with(
    capsys: pytest.CaptureFixture[str],
) -> None:
    services = Services([])
    argv = ["--url", "http://registry", "promote", "credit-risk", "2.0.0"]
    code = _run(services, *argv, "--reason", "better in November", "--compared-with", "1.0.0")
    assert code == 0
    (request,) = services.sent
    assert (request.method, request.url.path) == (
        "POST",
        "/v1/models/credit-risk/versions/2.0.0/promote",
    )
    assert json.loads(request.content) == {
        "reason": "better in November",
        "compared_with": "1.0.0",
    }
    assert json.loads(capsys.readouterr().out)["promoted"]["version"] == "2.0.0"


def test_promote_needs_a_reason() -> None:
    with pytest.raises(SystemExit):
        _run(Services([]), "promote", "credit-risk", "2.0.0")
