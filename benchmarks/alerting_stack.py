"""The whole stack, from a drifted window to the webhook (figure 2 of ``benchmarks.alerting``).

Every service runs as its own process, as ``tests/e2e/stack.py`` runs them, with 5 s windows
and 1 s of lateness. One model is registered through the registry with ``ROUNDS`` versions,
each with a reference. Round k sends version k's drifted predictions through the prediction
logger as the clock runs (event times are now, 1,500 in its window), then 2.5 s of normal ones
that carry the watermark past the window's end + lateness, the moment it can close. A new
version per round is a new alert group, told at once; re-firing one version's alert would wait
for its group_interval instead.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tests.e2e.stack import Stack, stack_env

from benchmarks.common import Webhook, firing, start_group_at_end
from vigil.adapters.settings import VigilSettings
from vigil.wire.topics import METRICS, drift_topics

ROUNDS = int(os.environ.get("BENCH_ALERTING_ROUNDS", 20))
WINDOW, LATENESS, IDLE_CLOSE = 5, 1, 2
# Predictions every TICK seconds: enough for a verdict (1,000 events a window by default).
TRAIL, TICK, PER_TICK = 2.5, 0.2, 60
FEATURES = [f"x{i}" for i in range(5)]


def stack_topics(run_id: str) -> list[str]:
    """The topics a stack of this run creates (its alerts topic, the drift detector's)."""
    return [f"bench.alerts.{run_id}.stack", *(t.name for t in drift_topics(_app(run_id)))]


def _app(run_id: str) -> str:
    return f"bench-drift-{run_id}"


def window_to_webhook(
    settings: VigilSettings, key: str, logs: Path, run_id: str, prefix: str, hook: Webhook
) -> list[float]:
    """Seconds from each round's window being closable to its first notification."""
    group = f"bench-alerting-{run_id}-stack"
    env = stack_env(
        VIGIL_DRIFT_APP_ID=_app(run_id),
        VIGIL_DRIFT_WINDOW_SECONDS=str(WINDOW),
        VIGIL_DRIFT_LATENESS_SECONDS=str(LATENESS),
        VIGIL_DRIFT_IDLE_CLOSE_SECONDS=str(IDLE_CLOSE),
        VIGIL_ALERTING_GROUP_WAIT_SECONDS="0",
        VIGIL_ALERTING_GROUP_ID=group,
        VIGIL_ALERTING_REDIS_PREFIX=f"{prefix}:stack",
        VIGIL_ALERTING_EVENTS_TOPIC=f"bench.alerts.{run_id}.stack",
        VIGIL_PREDICTION_LOGGER_REDIS_PREFIX=f"{prefix}:seen",
        VIGIL_IDEMPOTENCY_REDIS_URL=idempotency_redis(),
        VIGIL_BOOTSTRAP_ADMIN_KEY=key,
        VIGIL_ADMIN_KEY_FILE=str(logs / "admin.key"),
    )
    # Alerting reads vigil.metrics.v1 from here on, not what other runs left there.
    asyncio.run(start_group_at_end(settings, group, METRICS))
    stack = Stack(logs, env)
    model_id = f"bench-stack-{run_id}"
    try:
        stack.start()
        _register(stack, key, model_id)
        made = httpx.post(
            stack.url("alerting") + "/v1/subscriptions",
            json={"name": "bench", "channel": "webhook", "url": hook.url, "models": [model_id]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        _ok(made)
        time.sleep(2)  # the versions reach every service's catalog
        logger = stack.url("prediction_logger") + "/v1/predictions"
        closable = asyncio.run(_drive(logger, key, model_id))
        mine = firing(model_id, "model_version")
        hook.wait_for(mine, ROUNDS, 15)
        arrived = hook.first(mine)
    except Exception:
        for service in stack.processes:  # the logs go with the benchmark's temporary directory
            print(f"--- {service} ---\n{stack.tail(service)}")
        raise
    finally:
        stack.stop()
    return [arrived[str(k + 1)] - at for k, at in enumerate(closable) if str(k + 1) in arrived]


def idempotency_redis() -> str:
    # `make bench` exports it (deploy/redis.sh runs that Redis beside the state one).
    return os.environ.get("VIGIL_IDEMPOTENCY_REDIS_URL", "redis://127.0.0.1:6380/0")


def _register(stack: Stack, key: str, model_id: str) -> None:
    """Register versions 1..ROUNDS of one model through the registry, each with a reference."""
    rng = np.random.default_rng(5)
    http = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"})
    registry = stack.url("registry")
    for n in range(1, ROUNDS + 1):
        made = http.post(
            registry + "/v1/models",
            json={
                "model_id": model_id,
                "version": str(n),
                "task": "binary",
                "features": [{"name": f, "type": "numeric"} for f in FEATURES],
                "risk": {"probability": 3, "impact": 3},
                "owner": "bench",
                "purpose": "alerting benchmark",
            },
        )
        _ok(made)
        rows = rng.normal(size=(2000, len(FEATURES))).round(4).tolist()
        reference = [dict(zip(FEATURES, row, strict=True)) for row in rows]
        url = f"{registry}/v1/models/{model_id}/versions/{n}/reference"
        _ok(http.post(url, json=reference))


def _ok(response: httpx.Response) -> None:
    if response.is_error:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")


def _predictions(
    model_id: str, version: str, rng: np.random.Generator, shift: float, at: float, seq: int
) -> list[dict[str, Any]]:
    """PER_TICK predictions at ``at``; the first two features shifted by ``shift`` sigma."""
    values = rng.normal(size=(PER_TICK, len(FEATURES)))
    values[:, :2] += shift
    return [
        {
            "prediction_id": f"{model_id}-{version}-{seq}-{i}",
            "model_id": model_id,
            "model_version": version,
            "timestamp": at,
            "features": dict(zip(FEATURES, row, strict=True)),
            "prediction": bool(i % 2),
            "score": 0.5,
        }
        for i, row in enumerate(values.round(4).tolist())
    ]


async def _drive(url: str, key: str, model_id: str) -> list[float]:
    """Send the rounds' predictions as the clock runs; when each round's window can close."""
    rng = np.random.default_rng(11)
    first = math.ceil(time.time() / WINDOW) * WINDOW + WINDOW
    tick, seq = float(first), 0
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        while tick < first + WINDOW * ROUNDS + TRAIL:
            await asyncio.sleep(max(0.0, tick - time.time()))
            now = time.time()
            current = int((now - first) // WINDOW)  # round k sends version k + 1
            batch = []
            if current < ROUNDS:
                batch += _predictions(model_id, str(current + 1), rng, 1.5, now, seq)
            if 1 <= current <= ROUNDS and now - (first + WINDOW * current) < TRAIL:
                batch += _predictions(model_id, str(current), rng, 0.0, now, seq)
            if batch:
                _ok(await client.post(url, json=batch))
            tick, seq = tick + TICK, seq + 1
    return [first + WINDOW * (k + 1) + LATENESS for k in range(ROUNDS)]
