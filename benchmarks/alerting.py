"""Alerting: how soon a drift report becomes a notification, and what 1,000 versions cost.

Alerting runs as processes (``python -m alerting``) against the running Kafka and Redis, each
with its own consumer group, Redis prefix (``bench:alerting:<run>``), alerts topic and reports
topic, and notifies a webhook receiver in this process (arrival times are its clock).

1. A report published -> its notification received, ``group_wait`` 0: 200 drifted reports,
   50 ms apart, of 200 model versions (each its own group), registered ones and then
   unregistered ids (the catalog is asked about each of those). Target: p99 <= 1 s.
2. The whole stack, a drifted window closable -> the webhook (``benchmarks.alerting_stack``).
   Target: p99 <= 5 s.
3. 1,000 registered model versions of 20 features reporting once a minute (20 drifted),
   published at once after a first minute that set their rule state: the time alerting takes
   to commit them all and notify the drifted ones, and its CPU seconds meanwhile.
   Target: keeps up on one core (< 60 CPU-seconds a minute).

The model versions of 1 and 3 are put on ``vigil.models.v1`` and tombstoned at the end.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.alerting_stack import (
    LATENESS,
    PER_TICK,
    ROUNDS,
    TICK,
    WINDOW,
    idempotency_redis,
    stack_topics,
    window_to_webhook,
)
from benchmarks.common import (
    Webhook,
    admin_key,
    cpu_seconds,
    delete_topics,
    firing,
    forget,
    forget_versions,
    free_port,
    machine,
    model_version,
    percentiles,
    publish_versions,
    serve,
    stop,
    webhook,
)
from vigil.adapters.bus import ensure_topics, new_producer, publish
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import FeatureDrift, FeatureSpec, ModelVersion, WindowReport, utcnow
from vigil.wire.topics import METRICS, Topic

LATENCY_REPORTS, GAP = 200, 0.05
FLEET, FLEET_FEATURES, FLEET_DRIFTED = 1_000, 20, 20
REPORTS = Codec(WindowReport)


@dataclass
class Run:
    """One run of the benchmark, and what it leaves behind until its end."""

    settings: VigilSettings
    key: str
    logs: Path
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    topics: list[str] = field(default_factory=list)
    versions: list[ModelVersion] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"bench:alerting:{self.id}"

    def register(self, model_ids: Sequence[str], features: int) -> None:
        """Model versions of ``features`` numeric features, on the models topic."""
        spec = [FeatureSpec(name=f"f{i}", type="numeric") for i in range(features)]
        versions = [model_version(m, spec, severity="medium") for m in model_ids]
        self.versions += versions
        asyncio.run(publish_versions(self.settings, versions))


def window_report(model_id: str, start: datetime, features: int, drifted: int) -> WindowReport:
    """A window report as the drift detector writes it (the shape of ``tests.samples``'
    ``report_at``), its first ``drifted`` features drifted."""
    names = [f"f{i}" for i in range(features)]
    return WindowReport(
        report_id=f"{model_id}/1/{int(start.timestamp())}",
        model_id=model_id,
        model_version="1",
        window_start=start,
        window_end=start + timedelta(minutes=1),
        event_count=1000,
        reference_source="production",
        features=[
            FeatureDrift(
                feature=name,
                type="numeric",
                count=1000,
                missing=3,
                out_of_range=2,
                statistics={"psi": 0.31 if i < drifted else 0.02},
                drift_statistic="psi",
                threshold=0.2,
                drifted=i < drifted,
            )
            for i, name in enumerate(names)
        ],
        drifted_features=names[:drifted],
        drift_share=drifted / features,
        created_at=utcnow(),
    )


@contextmanager
def alerting(run: Run, tag: str, hook: Webhook) -> Iterator[tuple[int, Topic]]:
    """One ``python -m alerting`` on a reports topic of its own, ``hook`` subscribed to every
    model: its pid and that topic."""
    reports = replace(METRICS, name=f"bench.{METRICS.name}.{run.id}.{tag}")
    events = f"bench.alerts.{run.id}.{tag}"
    run.topics += [reports.name, events]
    asyncio.run(ensure_topics(run.settings.kafka_bootstrap, [reports]))
    port = free_port()
    env = {
        **os.environ,
        "VIGIL_KAFKA_BOOTSTRAP": run.settings.kafka_bootstrap,
        "VIGIL_ALERTING_PORT": str(port),
        "VIGIL_ALERTING_GROUP_ID": f"bench-alerting-{run.id}-{tag}",
        "VIGIL_ALERTING_REDIS_PREFIX": f"{run.prefix}:{tag}",
        "VIGIL_ALERTING_EVENTS_TOPIC": events,
        "VIGIL_ALERTING_REPORTS_TOPIC": reports.name,
        "VIGIL_ALERTING_ALLOWED_NETWORKS": "127.0.0.0/8",
        "VIGIL_ALERTING_GROUP_WAIT_SECONDS": "0",
    }
    log = run.logs / f"alerting-{tag}.log"
    process = serve("alerting", env, port, log)
    try:
        made = httpx.post(
            f"http://127.0.0.1:{port}/v1/subscriptions",
            json={"name": "bench", "channel": "webhook", "url": hook.url, "models": ["*"]},
            headers={"Authorization": f"Bearer {run.key}"},
            timeout=10,
        )
        made.raise_for_status()
        # One report through first: the consumer has its partitions, the pipeline is warm.
        warm = f"bench-warm-{run.id}-{tag}"
        asyncio.run(_publish_spaced(run.settings, reports, [window_report(warm, utcnow(), 1, 1)]))
        if not hook.wait_for(firing(warm, "model_id"), 1, 60):
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"alerting notified nothing in 60 s:\n{tail}")
        yield process.pid, reports
    finally:
        stop(process)


async def _publish_spaced(
    settings: VigilSettings, topic: Topic, reports: Sequence[WindowReport]
) -> dict[str, float]:
    """Publish one report every GAP seconds; when each was handed to the producer."""
    producer = new_producer(settings.kafka_bootstrap, "bench-alerting", linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    try:
        for report in reports:
            start = time.time()
            sent[report.model_id] = start
            await publish(producer, topic, REPORTS, [report], lambda r: r.key)
            await asyncio.sleep(max(0.0, start + GAP - time.time()))
    finally:
        await producer.stop()
    return sent


def _latencies(run: Run, hook: Webhook, topic: Topic, prefix: str) -> list[float]:
    models = [f"{prefix}{i}" for i in range(LATENCY_REPORTS)]
    reports = [window_report(m, utcnow(), 1, 1) for m in models]
    sent = asyncio.run(_publish_spaced(run.settings, topic, reports))
    mine = firing(prefix, "model_id")
    hook.wait_for(mine, len(models), 60)
    arrived = hook.first(mine)
    return [arrived[m] - sent[m] for m in models if m in arrived]


def report_to_webhook(run: Run) -> None:
    known, unknown = f"bench-known-{run.id}-", f"bench-unknown-{run.id}-"
    run.register([f"{known}{i}" for i in range(LATENCY_REPORTS)], 1)
    with webhook() as hook, alerting(run, "latency", hook) as (_, topic):
        print(
            f"1. report published -> webhook, group_wait 0: {LATENCY_REPORTS} model versions, "
            f"one drifted report each, {GAP * 1000:.0f} ms apart   (target p99 <= 1 s)"
        )
        for label, prefix in (("registered", known), ("unregistered", unknown)):
            seconds = _latencies(run, hook, topic, prefix)
            print(
                f"   {label:>12}: {len(seconds)} of {LATENCY_REPORTS} notified, "
                f"{percentiles(seconds)}"
            )


def stack_to_webhook(run: Run) -> None:
    run.topics += stack_topics(run.id)
    with webhook() as hook:
        seconds = window_to_webhook(run.settings, run.key, run.logs, run.id, run.prefix, hook)
    print(
        f"2. whole stack, drifted window closable (end + {LATENESS} s lateness) -> webhook: "
        f"{len(seconds)} of {ROUNDS} rounds notified ({WINDOW} s windows of "
        f"{WINDOW * PER_TICK / TICK:,.0f} predictions, a new model version each)"
    )
    if seconds:
        print(f"   {percentiles(seconds)}   (target p99 <= 5 s)")


async def _minute(
    settings: VigilSettings, topic: Topic, group: str, reports: Sequence[WindowReport]
) -> float:
    """Publish a minute's reports at once; seconds until ``group`` committed them all."""
    start = time.monotonic()
    producer = new_producer(settings.kafka_bootstrap, "bench-alerting", max_batch_size=256_000)
    await producer.start()
    try:
        await publish(producer, topic, REPORTS, reports, lambda r: r.key)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            if all(tp in committed and committed[tp].offset >= o for tp, o in ends.items()):
                return time.monotonic() - start
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


def fleet_cpu(run: Run) -> None:
    prefix = f"bench-fleet-{run.id}-"
    models = [f"{prefix}{i}" for i in range(FLEET)]
    run.register(models, FLEET_FEATURES)
    minute = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=5)
    every = FLEET // FLEET_DRIFTED
    with webhook() as hook, alerting(run, "fleet", hook) as (pid, topic):
        group = f"bench-alerting-{run.id}-fleet"
        first = [window_report(m, minute, FLEET_FEATURES, 0) for m in models]
        asyncio.run(_minute(run.settings, topic, group, first))  # the versions' rule state
        idle_at, idle_cpu = time.monotonic(), cpu_seconds(pid)
        time.sleep(3)
        idle = (cpu_seconds(pid) - idle_cpu) / (time.monotonic() - idle_at)
        later = minute + timedelta(minutes=1)
        reports = [
            window_report(m, later, FLEET_FEATURES, int(i % every == 0))
            for i, m in enumerate(models)
        ]
        start, cpu = time.monotonic(), cpu_seconds(pid)
        committed = asyncio.run(_minute(run.settings, topic, group, reports))
        hook.wait_for(firing(prefix, "model_id"), FLEET_DRIFTED, 30)
        elapsed, used = time.monotonic() - start, cpu_seconds(pid) - cpu
        notified = len(hook.first(firing(prefix, "model_id")))
    print(
        f"3. {FLEET:,} registered model versions x {FLEET_FEATURES} features reporting once a "
        f"minute, {FLEET_DRIFTED} drifted, published at once (after a first minute)"
    )
    print(
        f"   {FLEET:,} reports handled in {elapsed:.1f} s using {used:.2f} CPU-seconds "
        f"= {used / 60:.1%} of one core over a minute   (target: keeps up on one core, < 60)"
    )
    print(
        f"   all committed after {committed:.1f} s, {notified} of {FLEET_DRIFTED} drifted "
        f"notified; idle, alerting uses {idle:.3f} CPU-seconds a second"
    )


def _clean_up(run: Run) -> None:
    """The run's model versions, Redis keys and topics go, each step tried on its own."""
    steps = [
        forget_versions(run.settings, run.versions),
        forget(run.settings.redis_url, run.prefix),
        forget(idempotency_redis(), run.prefix),
        delete_topics(run.settings, run.topics),
    ]
    for step in steps:
        try:
            asyncio.run(step)
        except Exception as exc:
            print(f"   clean-up incomplete ({type(exc).__name__}: {exc}); run {run.id}")


def main() -> None:
    settings = VigilSettings()
    print(f"Alerting ({machine()})")
    with tempfile.TemporaryDirectory() as logs, admin_key(settings) as key:
        run = Run(settings, key, Path(logs))
        try:
            report_to_webhook(run)
            stack_to_webhook(run)
            fleet_cpu(run)
        finally:
            _clean_up(run)


if __name__ == "__main__":
    main()
