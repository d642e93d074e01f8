"""The console's server time per page: the fleet of 1,000 model versions, a model page of 30
days, and a drift window's page.

The console runs in this process (FastAPI's TestClient, its lifespan included) with its
services answered by an ``httpx.MockTransport`` from JSON built beforehand, so the time is the
console's own: its calls made concurrently, the answers decoded, the page shaped and rendered.
The answers are as big as the targets say: ``GET /v1/models`` and ``GET /v1/fleet`` with 1,000
versions (500 models of two versions, 200 firing alerts); a model page over 30 days of
one-minute windows of 50 features, which the registry answers as a heat map of 200 columns by
50 features, 720 hourly performance reports (with fairness over two groups) and a comparison.
Each page is requested ``--rounds`` times after one warm-up; the median and p95 are printed.
Targets: the fleet under 1 s, the model page under 2 s. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import httpx
import orjson
from fastapi.testclient import TestClient

from benchmarks.common import machine
from console.api import create_app
from console.config import Settings
from console.sessions import Session, SessionStore
from console.upstream import Services
from console.web import SESSION_COOKIE, Console
from vigil.adapters.keyring import MemoryKeyring
from vigil.wire.access import ApiKey, hash_key, key_id_of, new_key

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
FEATURES = [f"f{i}" for i in range(50)]
MODELS = 500  # of two versions each: 1,000 versions


class OneSession(SessionStore):
    """The benchmark's one signed-in session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def save(self, session_id: str, session: Session, seconds: int) -> None:
        self.session = session

    async def load(self, session_id: str, seconds: int) -> Session | None:
        return self.session

    async def drop(self, session_id: str) -> None:
        pass


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _listing() -> list[dict[str, Any]]:
    return [
        {
            "model_id": f"m-{m}",
            "owner": f"team-{m % 7}",
            "purpose": "decisions",
            "task": "binary",
            "severity": ("critical", "high", "medium", "low")[m % 4],
            "versions": [
                {"version": "1", "status": "champion", "reference": None, "team": "core"},
                {"version": "2", "status": "shadow", "reference": None},
            ],
        }
        for m in range(MODELS)
    ]


def _fleet() -> dict[str, Any]:
    versions = []
    for m in range(MODELS):
        for v in ("1", "2"):
            versions.append(
                {
                    "model_id": f"m-{m}",
                    "version": v,
                    "traffic": {
                        "bucket_seconds": 3600,
                        "since": _iso(NOW - timedelta(days=1)),
                        "counts": [(m * 7 + h * 13) % 500 for h in range(24)],
                    },
                    "drift": {
                        "window_end": _iso(NOW),
                        "dataset_drift": m % 10 == 0,
                        "drifted_features": ["f1", "f2"] if m % 5 == 0 else [],
                        "drift_share": 0.04,
                    },
                    "performance": {
                        "window_end": _iso(NOW),
                        "metric": "accuracy",
                        "value": 0.9,
                        "reference": 0.91,
                        "degraded": ["accuracy"] if m % 9 == 0 else [],
                        "value_per_prediction": -1.2,
                        "reference_value_per_prediction": -1.0,
                        "currency": "EUR",
                        "estimated": {"accuracy": 0.89},
                    },
                    "performance_readable": True,
                    "last_label_at": _iso(NOW - timedelta(minutes=m % 60)),
                }
            )
    return {"generated_at": _iso(NOW), "versions": versions}


def _alerts(model_id: str | None) -> list[dict[str, Any]]:
    return [
        {
            "fingerprint": f"fp-{m}",
            "status": "firing",
            "severity": "high",
            "model_id": f"m-{m}",
            "model_version": "1",
            "rule": "feature_drift",
            "feature": "f1",
            "summary": "f1 drifted",
            "starts_at": _iso(NOW - timedelta(hours=1)),
            "updated_at": _iso(NOW),
        }
        for m in range(0, MODELS, 2 if model_id is None else MODELS)
        if model_id is None or f"m-{m}" == model_id
    ][:200]


def _profile(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "numeric",
        "count": 5000,
        "missing": 0,
        "bin_edges": [float(e) for e in range(9)],
        "bin_counts": [500] * 10,
    }


def _model(model_id: str) -> dict[str, Any]:
    def version(number: str, status: str) -> dict[str, Any]:
        return {
            "model_id": model_id,
            "version": number,
            "status": status,
            "task": "binary",
            "owner": "team",
            "risk": {"probability": 3, "impact": 4, "severity": "high"},
            "lineage": {"training_data": "s3://data", "code_version": "abc"},
            "reference": {
                "source": "uploaded",
                "row_count": 5000,
                "created_at": _iso(NOW - timedelta(days=60)),
                "version": 1,
                "features": [_profile(f) for f in FEATURES],
            },
            "created_at": _iso(NOW - timedelta(days=60)),
            "updated_at": _iso(NOW),
        }

    return {"model_id": model_id, "versions": [version("1", "champion"), version("2", "shadow")]}


def _heatmap(model_id: str) -> dict[str, Any]:
    since, columns = NOW - timedelta(days=30), 200
    step = timedelta(days=30) / columns
    return {
        "model_id": model_id,
        "version": "1",
        "since": _iso(since),
        "until": _iso(NOW),
        "resolution_seconds": step.total_seconds(),
        "features": FEATURES,
        "statistics": dict.fromkeys(FEATURES, "psi"),
        "thresholds": dict.fromkeys(FEATURES, 0.2),
        "columns": [
            {
                "start": _iso(since + c * step),
                "end": _iso(since + (c + 1) * step),
                "windows": 216,
                "events": 216000,
                "late_events": 0,
                "dataset_drift": c % 50 == 0,
                "drift_share": 0.02,
                "multivariate_drifted": False,
                "values": [((c * 31 + f * 17) % 100) / 200 for f in range(len(FEATURES))],
                "drifted": [(c * 31 + f * 17) % 100 > 60 for f in range(len(FEATURES))],
                "quality": {
                    "missing_rate": 0.01,
                    "out_of_range_rate": 0.0,
                    "unseen_rate": 0.0,
                    "type_violation_rate": 0.0,
                },
                "window_start": _iso(since + c * step),
            }
            for c in range(columns)
        ],
    }


def _fairness() -> list[dict[str, Any]]:
    groups = [
        {
            "group": g,
            "predictions": 3000,
            "labelled": 2000,
            "rates": {"selection_rate": 0.3, "true_positive_rate": 0.7},
            "rates_low": {"selection_rate": 0.28, "true_positive_rate": 0.68},
            "rates_high": {"selection_rate": 0.32, "true_positive_rate": 0.72},
        }
        for g in ("a", "b")
    ]
    measure = {"value": 0.9, "low": 0.8, "high": 1.0, "lowest": "a", "highest": "b"}
    return [
        {
            "attribute": "region",
            "min_group_size": 100,
            "groups": groups,
            "measures": {"disparate_impact": measure},
            "violations": [],
        }
    ]


def _performance() -> list[dict[str, Any]]:
    return [
        {
            "report_id": f"p-{h}",
            "model_id": "m-0",
            "model_version": "1",
            "window_start": _iso(NOW - timedelta(hours=720 - h)),
            "window_end": _iso(NOW - timedelta(hours=719 - h)),
            "revision": 3,
            "task": "binary",
            "predictions": 6000,
            "labelled": 5000,
            "label_coverage": 0.83,
            "metrics": {"accuracy": 0.9, "precision": 0.8, "recall": 0.7, "f1": 0.75},
            "estimated": {"accuracy": 0.89, "f1": 0.74},
            "reference_metrics": {"accuracy": 0.91, "f1": 0.76},
            "metrics_low": {"accuracy": 0.89},
            "metrics_high": {"accuracy": 0.91},
            "degraded": [],
            "value": -6000.0,
            "value_per_prediction": -1.2,
            "reference_value_per_prediction": -1.0,
            "estimated_value": -6200.0,
            "currency": "EUR",
            "fairness": _fairness(),
            "created_at": _iso(NOW),
        }
        for h in range(720)
    ]


def _window(model_id: str, start: str) -> dict[str, Any]:
    return {
        "report_id": "w",
        "model_id": model_id,
        "model_version": "1",
        "window_start": start,
        "window_end": start,
        "event_count": 1000,
        "reference_source": "uploaded",
        "features": [
            {
                "feature": f,
                "type": "numeric",
                "count": 1000,
                "missing": 0,
                "statistics": {"psi": 0.1, "ks": 0.05, "ks_pvalue": 0.2},
                "drift_statistic": "psi",
                "threshold": 0.2,
                "drifted": False,
                "bin_counts": [100] * 10,
            }
            for f in FEATURES
        ],
        "created_at": start,
    }


def answers() -> Callable[[httpx.Request], httpx.Response]:
    """The services' answers, encoded once; the handler only looks them up."""
    fixed = {
        "/v1/models": orjson.dumps(_listing()),
        "/v1/fleet": orjson.dumps(_fleet()),
        "/v1/alerts": orjson.dumps(_alerts(None)),
        "/v1/models/m-0": orjson.dumps(_model("m-0")),
        "/v1/models/m-0/versions/1/drift/heatmap": orjson.dumps(_heatmap("m-0")),
        "/v1/models/m-0/versions/1/performance": orjson.dumps(_performance()),
        "/v1/models/m-0/versions/1/fairness": orjson.dumps(_performance()),
        "/v1/models/m-0/comparison": orjson.dumps({"verdict": "no significant difference"}),
    }
    model_alerts = orjson.dumps(_alerts("m-0"))

    def handle(request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)
        if path == "/v1/alerts" and "model_id" in request.url.params:
            body = model_alerts
        elif "/drift/windows/" in path:
            body = orjson.dumps(_window("m-0", path.rsplit("/", 1)[1]))
        else:
            body = fixed.get(path, b"")
        if not body:
            return httpx.Response(404, json={"detail": f"no route {path}"})
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return handle


def timed(client: TestClient, path: str, rounds: int) -> tuple[list[float], int]:
    """Seconds per request (after one warm-up) and the page's size in bytes."""
    first = client.get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:300])
    seconds = []
    for _ in range(rounds):
        began = time.perf_counter()
        client.get(path)
        seconds.append(time.perf_counter() - began)
    return seconds, len(first.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    key = new_key()[1]
    record = ApiKey(
        id=key_id_of(key),
        principal="bench",
        roles=["admin"],
        models=["*"],
        key_hash=hash_key(key),
        created_at=NOW - timedelta(days=1),
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(answers()))
    services = Services(http, "http://registry", "http://alerting", "http://feedback")
    console = Console(OneSession(Session(key=key, csrf="x")), MemoryKeyring([record]), services)
    window = quote(_iso(NOW - timedelta(days=10)), safe="")
    pages = {
        "fleet, 1,000 versions": "/fleet",
        "model page, 30 days (200 x 50 heat map, 720 reports)": "/models/m-0?days=30",
        "window page, 50 features": f"/models/m-0/versions/1/windows/{window}",
    }
    print(f"console pages, server time per request ({machine()}), {args.rounds} rounds")
    with TestClient(create_app(Settings(), console)) as client:
        client.cookies.set(SESSION_COOKIE, "bench")
        for name, path in pages.items():
            seconds, size = timed(client, path, args.rounds)
            ordered = sorted(seconds)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            print(
                f"  {name}: median {statistics.median(seconds) * 1000:.0f} ms,"
                f" p95 {p95 * 1000:.0f} ms, page {size / 1e6:.2f} MB"
            )


if __name__ == "__main__":
    main()
