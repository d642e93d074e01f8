"""Shared pieces of the benchmarks: the machine line, a registered 20-feature model, events;
for benchmarks that run services as processes, an admin key, a webhook receiver, CPU time."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from vigil.adapters.bus import new_producer, publish
from vigil.adapters.settings import VigilSettings
from vigil.drift.reference import build_reference
from vigil.wire.access import ALL_MODELS, ApiKey, hash_key, new_key
from vigil.wire.codec import Codec
from vigil.wire.records import FeatureSpec, ModelVersion, RiskAssessment, Severity, utcnow
from vigil.wire.topics import KEYS, MODELS, Topic

FEATURES = [f"f{i}" for i in range(20)]


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}"


async def register_model(
    settings: VigilSettings,
    features: list[FeatureSpec] | None = None,
    reference: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """Publish a model version straight to the models topic: 20 numeric features unless
    ``features`` says otherwise, with a reference profile of ``reference`` rows if given."""
    model_id = f"bench-{uuid.uuid4().hex[:8]}"
    spec = features or [FeatureSpec(name=f, type="numeric") for f in FEATURES]
    await publish_versions(settings, [model_version(model_id, spec, reference)])
    return model_id


def model_version(
    model_id: str,
    features: list[FeatureSpec],
    reference: Sequence[Mapping[str, Any]] | None = None,
    severity: Severity = "low",
) -> ModelVersion:
    """Version "1" of ``model_id``, owned by "bench", of risk tier ``severity``."""
    now = utcnow()
    return ModelVersion(
        model_id=model_id,
        version="1",
        task="binary",
        features=features,
        reference=build_reference(features, reference, "uploaded", now) if reference else None,
        owner="bench",
        risk=RiskAssessment(probability=1, impact=1, severity=severity),
        created_at=now,
        updated_at=now,
    )


async def publish_versions(settings: VigilSettings, versions: Sequence[ModelVersion]) -> None:
    """Register ``versions`` as the registry does: their records on the models topic."""
    producer = new_producer(settings.kafka_bootstrap, "bench", max_batch_size=256_000)
    await producer.start()
    try:
        await publish(producer, MODELS, Codec(ModelVersion), versions, lambda v: v.key)
    finally:
        await producer.stop()


async def forget_versions(settings: VigilSettings, versions: Sequence[ModelVersion]) -> None:
    """Tombstones for ``versions`` on the compacted models topic: every catalog drops them."""
    producer = new_producer(settings.kafka_bootstrap, "bench")
    await producer.start()
    try:
        sent = [await producer.send(MODELS.name, None, key=v.key.encode()) for v in versions]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def events(model_id: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, len(FEATURES))).round(4).tolist()
    run = uuid.uuid4().hex[:8]
    return [
        {
            "prediction_id": f"{run}-{i}",
            "model_id": model_id,
            "model_version": "1",
            "timestamp": 1_790_000_000 + i / 1000,
            "features": dict(zip(FEATURES, row, strict=True)),
            "prediction": i % 2 == 0,
            "score": 0.5,
        }
        for i, row in enumerate(values)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def admin_key(settings: VigilSettings) -> Iterator[str]:
    """An admin key of the benchmark's own on ``vigil.keys.v1`` (services read keys from
    there), expiring within the hour and revoked when the block ends."""
    key_id, secret = new_key()
    now = utcnow()
    record = ApiKey(
        id=key_id,
        principal=f"bench-{key_id[:6]}",
        roles=["admin"],
        models=[ALL_MODELS],
        key_hash=hash_key(secret),
        created_at=now,
        expires_at=now + timedelta(hours=1),
    )
    asyncio.run(_publish_key(settings, record))
    try:
        yield secret
    finally:
        revoked = record.model_copy(update={"revoked_at": utcnow(), "revoked_by": "bench"})
        asyncio.run(_publish_key(settings, revoked))


async def _publish_key(settings: VigilSettings, record: ApiKey) -> None:
    producer = new_producer(settings.kafka_bootstrap, "bench-keys")
    await producer.start()
    try:
        await publish(producer, KEYS, Codec(ApiKey), [record], lambda k: k.id)
    finally:
        await producer.stop()


async def start_group_at_end(settings: VigilSettings, group: str, topic: Topic) -> None:
    """Commit ``group``'s offsets at ``topic``'s current end: its consumer reads what follows."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Webhook:
    """A webhook receiver: every alert it was sent, with the wall-clock time it arrived."""

    url: str = ""
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first(self, key: Callable[[dict[str, Any]], str | None]) -> dict[str, float]:
        """When the first alert of each ``key(alert)`` (None: not counted) arrived."""
        found: dict[str, float] = {}
        with self.lock:
            for at, alert in self.received:
                k = key(alert)
                if k is not None and k not in found:
                    found[k] = at
        return found

    def wait_for(
        self, key: Callable[[dict[str, Any]], str | None], count: int, seconds: float
    ) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.first(key)) >= count:
                return True
            time.sleep(0.05)
        return len(self.first(key)) >= count


def firing(prefix: str, label: str) -> Callable[[dict[str, Any]], str | None]:
    """For ``Webhook.first``: ``label`` of a firing alert of a model whose id starts with
    ``prefix``; None for any other alert."""

    def key(alert: dict[str, Any]) -> str | None:
        if alert["status"] != "firing" or not str(alert["model_id"]).startswith(prefix):
            return None
        return str(alert[label])

    return key


@contextmanager
def webhook() -> Iterator[Webhook]:
    """Serve a webhook on a free loopback port for the duration of the block."""
    found = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            at = time.time()
            alerts = json.loads(body).get("alerts", [])
            with found.lock:
                found.received += [(at, a) for a in alerts]
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_port}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def serve(module: str, env: Mapping[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """``python -m module`` with ``env``, once its ``/healthz`` on ``port`` answers."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module], env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(process)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{module} did not become healthy:\n{tail}")


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def forget(redis_url: str, prefix: str) -> int:
    """Delete every Redis key under ``prefix:``; how many there were."""
    redis = Redis.from_url(redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.unlink(*keys[start : start + 1000])
        return len(keys)
    finally:
        await redis.aclose()


async def delete_topics(settings: VigilSettings, names: Sequence[str]) -> None:
    """Delete the benchmark's own topics (those that exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        gone = [n for n in names if n in existing]
        if gone:
            await admin.delete_topics(gone)
    finally:
        await admin.close()


def percentiles(seconds: Sequence[float]) -> str:
    p50, p95, p99 = np.percentile(seconds, [50, 95, 99])
    return f"p50 {p50:.2f} s, p95 {p95:.2f} s, p99 {p99:.2f} s, max {max(seconds):.2f} s"
