"""`vigil rules apply` and `vigil rules get` against the registry API on fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.api import Registry, create_app
from tests.access import ADMIN_KEY, fake_guard
from tests.samples import MODEL
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.cli import main

SECOND = MODEL.model_copy(update={"version": "2.0.0"})
RULES_YAML = f"""
- model_id: {MODEL.model_id}
  version: {MODEL.version}
  rules:
    - name: feature_drift          # a default's name: replaces it
      signal: feature_drift
      condition: above
      threshold: 0.5
      for_windows: 2
    - name: income-gaps
      signal: missing_rate
      condition: above
      threshold: 0.1
      features: [income]
      severity: critical
- model_id: {MODEL.model_id}
  version: "2.0.0"
  rules:
    - {{name: event_count_drop, signal: event_count, condition: change_below,
       threshold: -0.5, enabled: false}}
"""


@pytest.fixture
def registry() -> Iterator[TestClient]:
    adapters = Registry(FakeBus(), FakeCatalog([MODEL, SECOND]))
    with TestClient(create_app(adapters=adapters, guard=fake_guard())) as client:
        yield client


def _run(
    registry: TestClient, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, object, str]:
    code = main(["--url", "http://registry", "--key", ADMIN_KEY, *argv], client=registry)
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else None, err


def test_rules_from_a_yaml_file_are_applied_to_each_version(
    registry: TestClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML)
    code, applied, _ = _run(registry, capsys, "rules", "apply", str(path))
    assert code == 0 and isinstance(applied, list)
    assert [a["version"] for a in applied] == [MODEL.version, "2.0.0"]
    code, got, _ = _run(registry, capsys, "rules", "get", MODEL.model_id, MODEL.version)
    assert code == 0 and isinstance(got, dict)
    rules = {r["name"]: r for r in got["rules"]}
    assert rules["feature_drift"]["for_windows"] == 2
    assert rules["income-gaps"]["severity"] == "critical"
    _, second, _ = _run(registry, capsys, "rules", "get", MODEL.model_id, "2.0.0")
    assert isinstance(second, dict)
    assert "event_count_drop" not in {r["name"] for r in second["rules"]}


def test_one_mapping_is_a_file_too_and_a_refusal_names_the_version(
    registry: TestClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        f"model_id: {MODEL.model_id}\nversion: {MODEL.version}\n"
        "rules: [{name: x, signal: accuracy, condition: above, threshold: 1}]\n"
    )
    code, _, err = _run(registry, capsys, "rules", "apply", str(path))
    assert code == 1 and f"{MODEL.model_id} {MODEL.version}: 422" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [("rules: [", "cannot read"), ("- model_id: m\n  rules: []\n", "item 0 is not a mapping")],
)
def test_a_malformed_file_is_refused_before_anything_is_sent(
    registry: TestClient,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    text: str,
    message: str,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    code, _, err = _run(registry, capsys, "rules", "apply", str(path))
    assert code == 1 and message in err
