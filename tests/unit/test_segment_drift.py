"""Drift asked per segment: the archive's inference tables (written by the archive's own code
into a temporary directory) read back for one version and period, each group judged against
the reference as the detector judges a window; only the group whose income moved drifts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from archive.handlers import ArchiveFiles, Row
from registry.api import Registry, create_app
from registry.config import Settings
from registry.handlers import reference_from_rows
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.samples import MODEL, PREDICTION, T0
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.wire.records import ModelVersion
from vigil.wire.segments import SegmentSpec

OUTSIDER, OUTSIDER_RECORD = api_key("sme-b", ["sme"], ["another-model"])
PATH = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/drift/segments"
PERIOD = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=2)).isoformat()}


def _rows(rng: np.random.Generator, n: int) -> list[dict[str, object]]:
    regions = rng.choice(["eu", "us"], n)
    incomes = rng.lognormal(10, 0.3, n)
    return [{"income": float(i), "region": str(r)} for i, r in zip(incomes, regions, strict=True)]


def _version() -> ModelVersion:
    rng = np.random.default_rng(1)
    declared = MODEL.model_copy(
        update={
            "segments": [SegmentSpec(name="region"), SegmentSpec(name="channel", tag=True)],
            "segment_cross": ["region", "channel"],
        }
    )
    reference, errors = reference_from_rows(declared, _rows(rng, 4000), T0 - timedelta(days=1))
    assert reference is not None, errors
    return declared.model_copy(update={"reference": reference})


def _archive(root: Path) -> None:
    """Two hours of predictions: in "us" the income doubled; "eu" as the reference."""
    rng = np.random.default_rng(2)
    rows = []
    for i, row in enumerate(_rows(rng, 4000)):
        if row["region"] == "us":
            row["income"] = float(row["income"]) * 2  # type: ignore[arg-type]
        event = PREDICTION.model_copy(
            update={
                "prediction_id": f"p{i}",
                "timestamp": T0 + timedelta(seconds=i),
                "features": row,
                "tags": {"channel": "web" if i % 2 else "app"},
            }
        )
        rows.append(Row(event, 0, i))
    other_day = PREDICTION.model_copy(update={"timestamp": T0 + timedelta(days=3)})
    ArchiveFiles(str(root)).write_chunk("vigil.predictions.v1", 0, [*rows, Row(other_day, 0, 9999)])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    _archive(tmp_path)
    registry = Registry(FakeBus(), FakeCatalog([_version()]))
    settings = Settings(registry_archive_url=str(tmp_path))
    app = create_app(settings=settings, adapters=registry, guard=fake_guard(OUTSIDER_RECORD))
    with TestClient(app, headers=ADMIN) as client:
        yield client


def test_only_the_group_that_moved_drifts(client: TestClient) -> None:
    answer = client.get(PATH, params={"segment": "region", **PERIOD})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["events"] == 4000 and body["truncated"] is False
    groups = {g["group"]: g for g in body["groups"]}
    assert set(groups) == {"eu", "us"}
    assert groups["us"]["drifted_features"] == ["income"] and groups["us"]["judged"]
    # The segment's own feature is one value in each group: not judged.
    assert [f["feature"] for f in groups["us"]["features"]] == ["income"]
    assert groups["eu"]["drifted_features"] == []
    assert groups["eu"]["events"] + groups["us"]["events"] == 4000


def test_a_tag_segment_and_the_crossed_pair_group_by_tags_too(client: TestClient) -> None:
    tags = client.get(PATH, params={"segment": "channel", **PERIOD}).json()
    assert {g["group"] for g in tags["groups"]} == {"web", "app"}
    crossed = client.get(PATH, params={"segment": "region x channel", **PERIOD}).json()
    by_group = {g["group"]: g for g in crossed["groups"]}
    assert set(by_group) == {"eu x web", "eu x app", "us x web", "us x app"}
    assert by_group["us x web"]["drifted_features"] == ["income"]
    assert by_group["eu x app"]["drifted_features"] == []


def test_bad_questions_are_refused_naming_the_problem(client: TestClient) -> None:
    unknown = client.get(PATH, params={"segment": "colour", **PERIOD})
    assert unknown.status_code == 422 and "region" in unknown.text
    long = {"since": T0.isoformat(), "until": (T0 + timedelta(days=40)).isoformat()}
    assert client.get(PATH, params={"segment": "region", **long}).status_code == 422
    assert (
        client.get(PATH, params={"segment": "region"}, headers=bearer(OUTSIDER)).status_code == 403
    )
