"""The console's health page: Prometheus text summed up per process (from metrics made with
prometheus_client under the names Vigil's processes use), and the page over the stand-in."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from console.config import METRICS_ENDPOINTS
from console.health import quantile, summarise_metrics
from tests.access import api_key
from tests.console_standin import StandIn, console_app

ROOT = Path(__file__).resolve().parents[2]
PRODUCER_KEY, PRODUCER = api_key("credit-app", ["producer"])
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def drift_worker_metrics() -> str:
    """What a drift detector's /metrics says after some work (same names, labels, buckets)."""
    registry = CollectorRegistry()
    records_in = Counter("vigil_stage_records_in_total", "", ["stage", "topic"], registry=registry)
    records_out = Counter(
        "vigil_stage_records_out_total", "", ["stage", "topic"], registry=registry
    )
    dead = Counter("vigil_stage_dead_lettered_total", "", ["stage"], registry=registry)
    lag = Gauge("vigil_stage_consumer_lag", "", ["stage", "topic", "partition"], registry=registry)
    http = Histogram(
        "vigil_http_request_seconds",
        "",
        ["method", "route", "status"],
        buckets=HTTP_BUCKETS,
        registry=registry,
    )
    close = Histogram(
        "vigil_drift_window_close_seconds",
        "",
        buckets=(1, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
        registry=registry,
    )
    records_in.labels("profiler", "vigil.predictions.v1").inc(1000)
    records_in.labels("merger", "vigil.partials.v1").inc(40)
    records_out.labels("profiler", "vigil.partials.v1").inc(40)
    records_out.labels("merger", "vigil.metrics.v1").inc(4)
    dead.labels("profiler").inc(3)
    for partition, behind in (("0", 10), ("1", 250), ("2", 0)):
        lag.labels("profiler", "vigil.predictions.v1", partition).set(behind)
    for _ in range(90):
        http.labels("GET", "/v1/status", "200").observe(0.003)
    for _ in range(10):
        http.labels("GET", "/readyz", "503").observe(0.2)
    for seconds in (12, 12, 14, 40):
        close.observe(seconds)
    return generate_latest(registry).decode()


def alerting_metrics() -> str:
    registry = CollectorRegistry()
    sent = Counter(
        "vigil_alerting_notifications_total", "", ["channel", "outcome"], registry=registry
    )
    sent.labels("webhook", "delivered").inc(7)
    sent.labels("slack", "delivered").inc(2)
    sent.labels("slack", "refused").inc(1)
    Counter("vigil_alerting_reports_dead_lettered_total", "", ["reason"], registry=registry).labels(
        "unreadable"
    ).inc(2)
    return generate_latest(registry).decode()


def test_a_drift_workers_numbers_are_summed_up() -> None:
    found = summarise_metrics("drift_detector", "http://x/metrics", drift_worker_metrics())
    assert found.up and not found.error
    assert found.events_in == {"merger": 40, "profiler": 1000}
    assert found.events_out == {"merger": 4, "profiler": 40}
    [lag] = found.lag
    assert (lag.stage, lag.topic, lag.total, lag.worst_partition, lag.worst) == (
        "profiler",
        "vigil.predictions.v1",
        260,
        "1",
        250,
    )
    assert found.dead_letters == 3
    assert found.http is not None and found.http.count == 100
    # the 95th of 100 requests is among the ten in the (0.1, 0.25] bucket: the 5th of them
    assert found.http.p95 == pytest.approx(0.1 + 0.15 * 5 / 10)
    assert found.window_close is not None and found.window_close.count == 4
    # rank 0.95 * 4 = 3.8: three windows closed within 15 s, the fourth in (30, 60]
    assert found.window_close.p95 == pytest.approx(30 + 30 * (3.8 - 3))


def test_alerting_notifications_by_outcome_and_its_dead_letters() -> None:
    found = summarise_metrics("alerting", "http://x/metrics", alerting_metrics())
    assert found.notifications == {"delivered": 9, "refused": 1}
    assert found.dead_letters == 2 and found.http is None and not found.lag


def test_quantiles_follow_prometheus() -> None:
    assert quantile(0.5, {0.1: 0.0, 0.2: 10.0, math.inf: 10.0}) == pytest.approx(0.15)
    assert quantile(0.95, {1.0: 5.0, 2.0: 5.0, math.inf: 100.0}) == 2.0  # +Inf: highest bound
    assert quantile(0.95, {1.0: 0.0, math.inf: 0.0}) is None


def test_unreadable_metrics_read_as_down() -> None:
    found = summarise_metrics("archive", "http://x/metrics", "vigil_up{ 1\n")
    assert not found.up and found.error.startswith("unreadable metrics")


def test_the_default_endpoints_are_the_ones_prometheus_scrapes() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    scraped = {
        job["job_name"]: f"http://{job['static_configs'][0]['targets'][0]}/metrics"
        for job in config["scrape_configs"]
    }
    assert scraped == METRICS_ENDPOINTS


@pytest.fixture
def stand_in() -> StandIn:
    services = StandIn(keys=[PRODUCER])
    services.metrics["registry"] = drift_worker_metrics()
    services.metrics["alerting"] = alerting_metrics().replace("delivered", "<b>delivered</b>")
    services.down.add("feedback")
    return services


def test_the_health_page_shows_each_process_up_or_down(stand_in: StandIn) -> None:
    with TestClient(console_app(stand_in)) as client:
        assert client.get("/health", follow_redirects=False).headers["location"] == "/signin"
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
        assert token
        client.post("/signin", data={"csrf": token[1], "key": PRODUCER_KEY})
        page = client.get("/health").text
    registry = re.search(r'id="service-registry".*?</section>', page, re.S)
    feedback = re.search(r'id="service-feedback".*?</section>', page, re.S)
    assert registry and feedback and "2 of 3 process(es) answering" in page
    assert "up</span>" in registry[0] and "profiler 1,000" in registry[0]
    assert "profiler on vigil.predictions.v1: 260 (worst partition 1: 250)" in registry[0]
    assert "100, p95 175 ms" in registry[0] and "4 window(s), p95 54.0 s" in registry[0]
    assert "down</span>" in feedback[0] and "feedback refused the connection" in feedback[0]
    assert "<b>" not in page and "&lt;b&gt;delivered&lt;/b&gt; 9" in page
    # /metrics is open: the signed-in key is never sent to it
    assert {key for _, path, key in stand_in.calls if path == "/metrics"} == {""}
