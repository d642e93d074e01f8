"""`make demo`: a model is registered, serves normal then drifted traffic, on-call is paged;
then the true outcomes arrive, and the loss is paged and told in money.

Runs against the stack `make up` started. It replays ten minutes of a credit-risk model's
predictions (1,000 a minute, event time in the recent past): six normal minutes, then four in
which applicants' income is 40 % higher. A webhook served by this script is subscribed to the
model; the alerts that reach it are printed, with the drift reports behind them. Then the
repayments of every loan come back as labels (the drifted applicants repay far less often than
their scores say): the version's business-value floor pages, and the window's performance is
printed in euros, next to what Vigil estimated from the scores before any label came. Last, an
expert takes predictions from the review queue and flags one harmful, which pages on-call. A
retrained version runs in shadow on the same requests throughout, and is compared with the
champion (paired on the requests, McNemar) once the labels are in.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from vigil.wire.codec import Codec, DecodeError
from vigil.wire.performance import PerformanceReport

HOST = "http://127.0.0.1"
REGISTRY = f"{HOST}:{os.environ.get('VIGIL_REGISTRY_PORT', '8000')}"
LOGGER = f"{HOST}:{os.environ.get('VIGIL_PREDICTION_LOGGER_PORT', '8001')}"
ALERTING = f"{HOST}:{os.environ.get('VIGIL_ALERTING_PORT', '8003')}"
FEEDBACK = f"{HOST}:{os.environ.get('VIGIL_FEEDBACK_PORT', '8002')}"
MINUTES_NORMAL, MINUTES_DRIFTED, PER_MINUTE = 6, 4, 1000
WAIT_SECONDS = 600
KAFKA = os.environ.get("VIGIL_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
METRICS = "vigil.metrics.v1"
# What a loan is worth: approved and repaid, approved and defaulted, declined (either way).
VALUE = {"currency": "EUR", "true_positive": 500.0, "false_positive": -1000.0,
         "true_negative": 0.0, "false_negative": -100.0}  # fmt: skip

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

    stamp = int(time.time())
    version, shadow = f"1.0.{stamp}", f"2.0.{stamp}"
    for number, status in ((version, "champion"), (shadow, "shadow")):
        http.post(
            f"{REGISTRY}/v1/models",
            json={
                "model_id": "credit-risk",
                "version": number,
                "status": status,
                "task": "binary",
                "features": [
                    {"name": "income", "type": "numeric", "min": 0},
                    {"name": "age", "type": "numeric", "min": 18, "max": 100},
                    {"name": "region", "type": "categorical"},
                ],
                "risk": {"probability": 3, "impact": 4},
                "owner": "risk-team",
                "purpose": "loan approval",
                "business_value": VALUE,
            },
        ).raise_for_status()
    print(f"registered credit-risk {version} (risk 3 x 4: high), a loan worth +€500 repaid,")
    print("  -€1,000 defaulted, -€100 declined though it would have been repaid;")
    print(f"  and {shadow} in shadow: a retrained model scoring the same requests, not serving")
    # The business owner's floor: below €0 per labelled prediction, page.
    http.put(
        f"{REGISTRY}/v1/models/credit-risk/versions/{version}/rules",
        json=[
            {
                "name": "value-floor",
                "signal": "value_per_prediction",
                "condition": "below",
                "threshold": 0.0,
                "severity": "high",
            }
        ],
    ).raise_for_status()
    print("added an alert rule: value per labelled prediction below €0 pages (high)")
    metrics_start = asyncio.run(_end_offsets())
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
            # One message per model version, sent 5 s after its first alert (default 30 s),
            # and its changes at most every 10 s (default 5 min), for a short demo.
            "group_wait_seconds": 5,
            "group_interval_seconds": 10,
        },
    ).raise_for_status()
    print(f"subscribed a webhook ({hook}) to credit-risk alerts, medium and up")

    start = (time.time() // 60 - MINUTES_NORMAL - MINUTES_DRIFTED - 1) * 60
    repaid: dict[str, bool] = {}  # what the bank learns later, by prediction id
    for minute in range(MINUTES_NORMAL + MINUTES_DRIFTED):
        drifted = minute >= MINUTES_NORMAL
        rows = applicants(rng, PER_MINUTE, 1.4 if drifted else 1.0)
        # The model's probability of repayment rises with income, and is right on normal
        # applicants; the drifted ones repay far less often than it says.
        scores = [repayment_score(row["income"]) for row in rows]
        events = [
            {
                "prediction_id": f"{version}-{minute}-{i}",
                "model_id": "credit-risk",
                "model_version": version,
                "timestamp": start + minute * 60 + i * 59 / PER_MINUTE,
                "features": row,
                "prediction": score > 0.5,
                "score": score,
                "tags": {"request_id": f"{stamp}-{minute}-{i}", "variant": "champion"},
            }
            for i, (row, score) in enumerate(zip(rows, scores, strict=True))
        ]
        # The shadow scores each request too: it learnt that income alone says less.
        cautious = [shadow_score(row["income"]) for row in rows]
        shadows = [
            {
                **event,
                "prediction_id": f"{shadow}-{minute}-{i}",
                "model_version": shadow,
                "prediction": score > 0.5,
                "score": score,
                "tags": {"request_id": f"{stamp}-{minute}-{i}", "variant": "shadow"},
            }
            for i, (event, score) in enumerate(zip(events, cautious, strict=True))
        ]
        for event, score in zip(events, scores, strict=True):
            chance = score * (0.4 if drifted else 1.0)
            repaid[str(event["prediction_id"])] = bool(rng.random() < chance)
        app.post(f"{LOGGER}/v1/predictions", json=events).raise_for_status()
        app.post(f"{LOGGER}/v1/predictions", json=shadows).raise_for_status()
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
    send_outcomes(app, repaid)
    wait_for("value-floor", 180, "feedback_joiner")
    show_performance(version, metrics_start)
    compare(http, version, shadow)
    an_expert_flags(admin)
    server.shutdown()


def repayment_score(income: float) -> float:
    """The model: a probability of repayment from income alone."""
    return round(float(1 / (1 + np.exp(-(income - 40_000) / 12_000))), 4)


def shadow_score(income: float) -> float:
    """The shadow: the same model retrained to ask for more income before approving."""
    return round(float(1 / (1 + np.exp(-(income - 60_000) / 12_000))), 4)


def compare(http: httpx.Client, champion: str, shadow: str) -> None:
    """The shadow against the champion on the requests both scored (labels join the champion's
    predictions; the registry pairs them by request id)."""
    print(f"\n{shadow} (shadow) against {champion} (champion), on the same requests:")
    deadline = time.monotonic() + 120
    while True:
        answer = http.get(
            f"{REGISTRY}/v1/models/credit-risk/comparison",
            params={"versions": f"{champion},{shadow}"},
        )
        answer.raise_for_status()
        found = answer.json()
        if found["shared"]["labelled"] or time.monotonic() > deadline:
            break
        time.sleep(2)
    accuracy, shared = found["accuracy"], found["shared"]
    print(
        f"  {shared['requests']:,} shared requests, {shared['labelled']:,} labelled;"
        f" they disagree on {shared['disagreement_rate']:.1%}"
    )
    if accuracy:
        print(
            f"  accuracy {accuracy['first']:.3f} -> {accuracy['second']:.3f}"
            f" ({found['test']}, difference {accuracy['difference']:+.3f}"
            f" [{accuracy['low']:+.3f}, {accuracy['high']:+.3f}], p = {accuracy['p_value']:.2g})"
        )
    print(f"  verdict: {found['verdict']} ({found.get('verdict_of', '')})")
    if found["verdict"] == "better":
        print(f"  promote it: POST /v1/models/credit-risk/versions/{shadow}/promote")
    else:
        print("  it stays in shadow: promoting it would take a better verdict")


def send_outcomes(app: httpx.Client, repaid: dict[str, bool]) -> None:
    """The loans' outcomes, as the bank's label pipeline would send them."""
    print(f"\nthe repayments come back: {len(repaid):,} labels (source ground_truth)")
    items = [
        {"prediction_id": pid, "model_id": "credit-risk", "actual": ok, "source": "ground_truth"}
        for pid, ok in repaid.items()
    ]
    for first in range(0, len(items), 2000):
        app.post(f"{FEEDBACK}/v1/feedback", json=items[first : first + 2000]).raise_for_status()


def wait_for(rule: str, seconds: float, log: str) -> None:
    """Wait for ``rule`` to page (other alerts that come meanwhile are passed over)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            alert = received.get(timeout=1)
        except queue.Empty:
            continue
        if alert["rule"] == rule and alert["status"] == "firing":
            print(f"  [{alert['severity'].upper()}] firing: {alert['summary']}")
            return
    raise SystemExit(f"{rule} did not page within {seconds:g} s; see .run/{log}.log")


def an_expert_flags(admin: httpx.Client) -> None:
    """An expert takes predictions from the review queue and flags one as harmful."""
    expert = key_for(admin, "sme", "demo-expert")
    answer = expert.get(
        f"{FEEDBACK}/v1/review-queue", params={"model_id": "credit-risk", "limit": 3}
    )
    answer.raise_for_status()
    items = answer.json()["items"]
    if not items:
        raise SystemExit("the review queue handed out nothing; see .run/feedback.log")
    print(f"\nan expert (role sme) takes {len(items)} predictions from the review queue:")
    for item in items:
        income = item["features"].get("income")
        print(
            f"  {item['prediction_id']}: income {income:,.0f}, approved {item['prediction']},"
            f" score {item['score']} ({item['reason'].replace('_', ' ')})"
        )
    flagged = items[0]
    expert.post(
        f"{FEEDBACK}/v1/feedback",
        json={
            "prediction_id": flagged["prediction_id"],
            "model_id": "credit-risk",
            "flag": "harmful",
            "comment": "approved on an income the applicant could not document",
            "source": "sme",
        },
    ).raise_for_status()
    print(f"  and flags {flagged['prediction_id']} harmful: on a high-tier model, that pages")
    wait_for("harmful_flag", 240, "feedback")


def show_performance(version: str, start: dict[TopicPartition, int]) -> None:
    """Each window's first report (before labels) and last one, in money."""
    reports = asyncio.run(_performance_reports(version, start))
    for report_id in sorted({r.report_id for r in reports}):
        revisions = sorted((r for r in reports if r.report_id == report_id), key=_revision)
        before, after = revisions[0], revisions[-1]
        print(
            f"\nwindow {after.window_start:%H:%M}-{after.window_end:%H:%M}: "
            f"{after.predictions:,} predictions, {after.labelled:,} labelled "
            f"(revision {after.revision})"
        )
        if before.estimated_value is not None:
            print(
                f"  estimated from the scores, before any label: accuracy "
                f"{before.estimated.get('accuracy', float('nan')):.3f}, value "
                f"{_euros(before.estimated_value)}"
            )
        matrix = after.confusion_matrix.rows
        defaulted = matrix[0][1] if len(matrix) == 2 else 0
        print(
            f"  realised: accuracy {after.metrics.get('accuracy', float('nan')):.3f}, "
            f"approved {defaulted:,} loans that defaulted, value {_euros(after.value or 0)} "
            f"({_euros(after.value_per_prediction or 0, 2)} per prediction)"
        )


def _euros(amount: float, decimals: int = 0) -> str:
    sign = "\u2212" if amount < 0 else "+"
    return f"{sign}\u20ac{abs(amount):,.{decimals}f}"


def _revision(report: PerformanceReport) -> int:
    return report.revision


async def _end_offsets() -> dict[TopicPartition, int]:
    """Where the metrics topic ends now (reports after this are the demo's)."""
    consumer = AIOKafkaConsumer(METRICS, bootstrap_servers=KAFKA)
    await consumer.start()
    try:
        parts = [TopicPartition(METRICS, p) for p in sorted(await _partitions(consumer))]
        return dict(await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer) -> set[int]:
    for _ in range(50):
        found = consumer.partitions_for_topic(METRICS)
        if found:
            return set(found)
        await asyncio.sleep(0.1)
    raise SystemExit(f"no partitions found for {METRICS}")


async def _performance_reports(
    version: str, start: dict[TopicPartition, int]
) -> list[PerformanceReport]:
    """The version's performance reports published since ``start``."""
    codec = Codec(PerformanceReport)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    found: list[PerformanceReport] = []
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        quiet = 0
        while quiet < 3:  # until three empty polls in a row: the end of what is there
            batches = await consumer.getmany(timeout_ms=1000)
            quiet = 0 if batches else quiet + 1
            for messages in batches.values():
                for m in messages:
                    try:
                        report = codec.decode(m.value)
                    except DecodeError:
                        continue  # window and traffic reports share the topic
                    if report.model_version == version:
                        found.append(report)
    finally:
        await consumer.stop()
    return found


if __name__ == "__main__":
    main()
