"""`make demo`: a model is registered, serves normal then drifted traffic, on-call is paged.

Runs against the stack `make up` started. It replays ten minutes of a credit-risk model's
predictions (1,000 a minute, event time in the recent past): six normal minutes, then four in
which applicants' income is 40 % higher. A webhook served by this script is subscribed to the
model; the alerts that reach it are printed, with the drift reports behind them.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np

HOST = "http://127.0.0.1"
REGISTRY = f"{HOST}:{os.environ.get('VIGIL_REGISTRY_PORT', '8000')}"
LOGGER = f"{HOST}:{os.environ.get('VIGIL_PREDICTION_LOGGER_PORT', '8001')}"
ALERTING = f"{HOST}:{os.environ.get('VIGIL_ALERTING_PORT', '8003')}"
MINUTES_NORMAL, MINUTES_DRIFTED, PER_MINUTE = 6, 4, 1000
WAIT_SECONDS = 600

received: queue.Queue[dict[str, Any]] = queue.Queue()


class Webhook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        for alert in body["alerts"]:
            received.put(alert)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def applicants(rng: np.random.Generator, n: int, income_factor: float) -> list[dict[str, Any]]:
    income = rng.lognormal(10.8, 0.35, n) * income_factor
    age = rng.normal(41, 12, n).clip(18, 90)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    return [
        {"income": round(float(i), 2), "age": round(float(a)), "region": str(r)}
        for i, a, r in zip(income, age, region, strict=True)
    ]


def admin_key() -> str:
    """The admin key `make up` wrote (or VIGIL_API_KEY)."""
    if os.environ.get("VIGIL_API_KEY"):
        return os.environ["VIGIL_API_KEY"]
    path = os.path.join(os.environ.get("VIGIL_RUN_DIR", ".run"), "admin.key")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        raise SystemExit(
            f"no admin key in {path}: an admin key existed before this stack first started."
            " Set VIGIL_API_KEY to an admin key (or restart with VIGIL_BOOTSTRAP_ADMIN_KEY)."
        ) from None


def key_for(admin: httpx.Client, role: str, name: str) -> httpx.Client:
    """A client holding a new key of ``role`` for credit-risk, made with the admin key."""
    made = admin.post(
        f"{REGISTRY}/v1/keys",
        json={"name": name, "roles": [role], "models": ["credit-risk"], "expires_in_days": 1},
    )
    made.raise_for_status()
    return httpx.Client(timeout=30, headers={"authorization": f"Bearer {made.json()['key']}"})


def main() -> None:
    rng = np.random.default_rng(2026)
    admin = httpx.Client(timeout=30, headers={"authorization": f"Bearer {admin_key()}"})
    # One key per role, as the people and the application behind them would hold.
    http = key_for(admin, "data_scientist", "demo-data-scientist")
    app = key_for(admin, "producer", "demo-credit-app")
    oncall = key_for(admin, "oncall", "demo-oncall")
    print("made keys for a data scientist, the credit application and on-call (admin key)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_port}/alerts"

    version = f"1.0.{int(time.time())}"
    http.post(
        f"{REGISTRY}/v1/models",
        json={
            "model_id": "credit-risk",
            "version": version,
            "task": "binary",
            "features": [
                {"name": "income", "type": "numeric", "min": 0},
                {"name": "age", "type": "numeric", "min": 18, "max": 100},
                {"name": "region", "type": "categorical"},
            ],
            "risk": {"probability": 3, "impact": 4},
            "owner": "risk-team",
            "purpose": "loan approval",
        },
    ).raise_for_status()
    print(f"registered credit-risk {version} (risk 3 x 4: high)")
    http.post(
        f"{REGISTRY}/v1/models/credit-risk/versions/{version}/reference",
        json=applicants(rng, 5000, 1.0),
    ).raise_for_status()
    print("uploaded a reference sample of 5,000 applicants")
    oncall.post(
        f"{ALERTING}/v1/subscriptions",
        json={
            "name": "demo on-call",
            "channel": "webhook",
            "url": hook,
            "models": ["credit-risk"],
            "min_severity": "medium",
            # One message per model version, sent 5 s after its first alert (default 30 s).
            "group_wait_seconds": 5,
        },
    ).raise_for_status()
    print(f"subscribed a webhook ({hook}) to credit-risk alerts, medium and up")

    start = (time.time() // 60 - MINUTES_NORMAL - MINUTES_DRIFTED - 1) * 60
    for minute in range(MINUTES_NORMAL + MINUTES_DRIFTED):
        drifted = minute >= MINUTES_NORMAL
        rows = applicants(rng, PER_MINUTE, 1.4 if drifted else 1.0)
        events = [
            {
                "model_id": "credit-risk",
                "model_version": version,
                "timestamp": start + minute * 60 + i * 59 / PER_MINUTE,
                "features": row,
                "prediction": bool(row["income"] > 45_000),
                "score": float(rng.random()),
            }
            for i, row in enumerate(rows)
        ]
        app.post(f"{LOGGER}/v1/predictions", json=events).raise_for_status()
        print(
            f"  minute {minute + 1:2d}: sent {PER_MINUTE} predictions"
            + ("  (income +40 %)" if drifted else "")
        )

    print("waiting for the drift detector to close the windows and alerting to page ...")
    # On a machine whose topic already holds much traffic (tests, benchmarks), a detector
    # started for the first time reads that history first; it is said, not hidden.
    deadline = time.monotonic() + WAIT_SECONDS
    alerts: list[dict[str, Any]] = []
    waited = 0
    while time.monotonic() < deadline and not alerts:
        try:
            alerts.append(received.get(timeout=1))
        except queue.Empty:
            waited += 1
            if waited % 30 == 0:
                print(f"  still waiting after {waited} s (see .run/drift_detector.log)")
    time.sleep(1)
    while not received.empty():
        alerts.append(received.get())
    if not alerts:
        raise SystemExit(f"no alert arrived within {WAIT_SECONDS} s; see .run/drift_detector.log")
    print(f"\n{len(alerts)} alert(s) reached the webhook:")
    for alert in alerts:
        print(f"  [{alert['severity'].upper()}] {alert['status']}: {alert['summary']}")
        details = alert["details"]
        print(
            f"      window {details['window_start']} .. {details['window_end']}, "
            f"{details['events']} events, fingerprint {alert['fingerprint']}"
        )
    server.shutdown()


if __name__ == "__main__":
    main()
