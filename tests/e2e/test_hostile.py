"""The hostile corpus (``hostile_cases``) against a running stack, as an outside checker would.

Every service runs as its own process (the archive too), in a working directory of the run's
own. The drift detector and the archive read a private copy of the predictions topic (so that
poison reaches no other test's workers); what the prediction logger accepted is copied there
from ``vigil.predictions.v1`` byte for byte, as Kafka would have delivered it.

Each HTTP case must be refused with a 4xx naming the problem (or, for the few valid ones,
stored exactly once as documented); each Kafka record must be dead-lettered with a reason,
ignored and counted, or processed. Afterwards valid traffic still reaches a report, an alert
and the archive exactly once, every process is alive with no server error in its log, and
nothing was written outside the run's directories.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.e2e import hostile_cases as corpus
from tests.e2e.hostile_cases import (
    ESCAPE,
    MODEL,
    OTHER,
    RUN,
    VERSION,
    WINDOW0,
    HttpCase,
    KafkaCase,
)
from tests.e2e.stack import Stack, stack_env
from tests.kafka_tools import end_offsets
from tests.webhook import WebhookInbox, webhook_inbox
from vigil.adapters.bus import ensure_topics
from vigil.adapters.settings import VigilSettings
from vigil.wire import topics as catalogue
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent, PredictionEvent
from vigil.wire.topics import (
    DEADLETTER,
    FEEDBACK,
    METRICS,
    MODELS,
    PREDICTIONS,
    SCHEMAS,
    drift_topics,
)

pytestmark = pytest.mark.e2e

APP_ID = f"hostile-drift-{RUN}"
PRIVATE_PREDICTIONS = f"hostile-predictions-{RUN}"
PARTIALS, STATE = (t.name for t in drift_topics(APP_ID))
KEYS = getattr(catalogue, "KEYS", None)  # API keys, where this tree has them
WINDOW1 = WINDOW0 + 2 * corpus.MINUTE  # the drifted traffic that must still raise an alert
API_SERVICES = ("registry", "prediction_logger", "feedback", "alerting")
CATALOG_READERS = ("registry", "prediction_logger", "alerting", "drift_detector")
TOPIC_OF = {
    "predictions": PRIVATE_PREDICTIONS,
    "partials": PARTIALS,
    "state": STATE,
    "metrics": METRICS.name,
    "models": MODELS.name,
    "schemas": SCHEMAS.name,
    **({"keys": KEYS.name} if KEYS is not None else {}),
}
SINGLE_PARTITION = {MODELS.name, SCHEMAS.name, *([KEYS.name] if KEYS is not None else [])}
PRIVATE = {"predictions", "partials", "state"}  # no other test's consumer reads these
Where = tuple[str, int, int]  # topic, partition, offset


# -- the run: its stack, its topics, what it stored ----------------------------------------


@dataclass
class Ledger:
    """What the stack accepted: prediction ids and feedback ids, and the expected values."""

    predictions: set[str] = field(default_factory=set)
    feedback: set[str] = field(default_factory=set)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    feedback_stored: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Run:
    stack: Stack
    inbox: WebhookInbox
    base: Path
    work: Path
    archive: Path
    bootstrap: str
    headers: dict[str, str]
    start: dict[str, dict[TopicPartition, int]]
    produced: dict[str, Where] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)

    def http(self) -> httpx.Client:
        return httpx.Client(timeout=30, headers=self.headers)


async def _produce(
    bootstrap: str, records: list[tuple[str, bytes | None, bytes | None]]
) -> list[Where]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024, acks="all"
    )
    await producer.start()
    try:
        where = []
        for topic, key, value in records:
            # The followers read partition 0 of these (created with one; auto-created, more).
            partition = 0 if topic in SINGLE_PARTITION else None
            meta = await producer.send_and_wait(topic, key=key, value=value, partition=partition)
            where.append((topic, meta.partition, meta.offset))
        return where
    finally:
        await producer.stop()


def produce_cases(
    bootstrap: str, cases: list[KafkaCase], run: Run | None = None
) -> dict[str, Where]:
    records = [(TOPIC_OF[c.topic], c.key, c.value) for c in cases]
    where = asyncio.run(_produce(bootstrap, records))
    produced = {kafka_id(c): spot for c, spot in zip(cases, where, strict=True)}
    if run is not None:
        run.produced.update(produced)
    return produced


def kafka_id(case: KafkaCase) -> str:
    return f"{case.topic}: {case.name}"


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        await admin.delete_topics([n for n in names if n in existing])
    finally:
        await admin.close()


def _cleanup_records() -> list[tuple[str, bytes | None, bytes | None]]:
    """Tombstones for every UTF-8 key this run wrote on the shared compacted topics."""
    models = [c.key for c in corpus.model_kafka_cases() if c.key is not None and _utf8(c.key)]
    models += [f"{m}/{VERSION}".encode() for m in (MODEL, OTHER)]
    models += [v.key.encode() for v in corpus.state_versions()]
    schemas = [c.key for c in corpus.schema_kafka_cases() if c.key is not None and _utf8(c.key)]
    records: list[tuple[str, bytes | None, bytes | None]] = [(MODELS.name, k, None) for k in models]
    records += [(SCHEMAS.name, k, None) for k in schemas]
    if KEYS is not None:
        records += [
            (KEYS.name, c.key, None)
            for c in corpus.key_kafka_cases()
            if c.key is not None and _utf8(c.key)
        ]
    return records


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


@pytest.fixture(scope="module")
def run(infra: VigilSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    bootstrap = infra.kafka_bootstrap
    auth = _admin_headers(bootstrap)
    base = tmp_path_factory.mktemp("hostile")
    logs, work, archive = base / "logs", base / "work", base / "archive"
    logs.mkdir()
    work.mkdir()
    private = [replace(PREDICTIONS, name=PRIVATE_PREDICTIONS), *drift_topics(APP_ID)]
    asyncio.run(ensure_topics(bootstrap, private))
    start = {
        name: asyncio.run(end_offsets(bootstrap, name))
        for name in (PREDICTIONS.name, FEEDBACK.name, DEADLETTER.name)
    }
    # Changelog poison is read when the merger starts: its versions and records come first.
    versions = corpus.state_versions()
    codec = Codec(type(versions[0]))
    asyncio.run(
        _produce(bootstrap, [(MODELS.name, v.key.encode(), codec.encode(v)) for v in versions])
    )
    produced = produce_cases(bootstrap, corpus.state_kafka_cases())
    env = stack_env(
        VIGIL_DRIFT_APP_ID=APP_ID,
        VIGIL_DRIFT_PREDICTIONS_TOPIC=PRIVATE_PREDICTIONS,
        VIGIL_DRIFT_WINDOW_SECONDS="60",
        VIGIL_DRIFT_LATENESS_SECONDS="5",
        VIGIL_DRIFT_IDLE_CLOSE_SECONDS="3",
        VIGIL_ARCHIVE_TOPIC=PRIVATE_PREDICTIONS,
        VIGIL_ARCHIVE_URL=str(archive),
        VIGIL_ARCHIVE_MAX_SECONDS="1",
        **corpus.LIMITS,
    )
    stack = Stack(logs, env, workers=("archive",), cwd=work)
    with contextlib.ExitStack() as exits:
        inbox = exits.enter_context(webhook_inbox())
        try:
            stack.start()
            state = Run(
                stack,
                inbox,
                base,
                work,
                archive,
                bootstrap,
                auth,
                start,
                produced,
            )
            _set_up_models(state)
            yield state
        finally:
            stack.stop()
            asyncio.run(_delete_topics(bootstrap, [t.name for t in private]))
            asyncio.run(_produce(bootstrap, _cleanup_records()))


def _admin_headers(bootstrap: str) -> dict[str, str]:
    """The run's admin key (tests/conftest.py ``session_admin`` stores it, then revokes it)."""
    from tests.access import SESSION

    return dict(SESSION)


def _set_up_models(run: Run) -> None:
    with run.http() as http:
        registry = run.stack.url("registry")
        for model_id in (MODEL, OTHER):
            # A small window may still judge drift (the default needs 1,000 events).
            body = corpus.registration(model_id, drift={"min_events": 100})
            answer = http.post(f"{registry}/v1/models", json=body)
            assert answer.status_code == 201, answer.text
        answer = http.post(
            f"{registry}/v1/models/{MODEL}/versions/{VERSION}/reference",
            json=corpus.reference_rows(),
        )
        assert answer.status_code == 200, answer.text
        answer = http.post(
            run.stack.url("alerting") + "/v1/subscriptions",
            json={
                "name": "hostile on-call",
                "channel": "webhook",
                "url": run.inbox.url,
                "models": [MODEL],
                "min_severity": "low",
            },
        )
        assert answer.status_code == 201, answer.text


# -- HTTP ----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def _chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def request_bytes(case: HttpCase, port: int, auth: dict[str, str]) -> bytes:
    body = case.payload()
    target = case.target if isinstance(case.target, bytes) else case.target.encode()
    lines = [
        case.method.encode() + b" " + target + b" HTTP/1.1",
        b"Host: 127.0.0.1:%d" % port,
        b"Connection: close",
    ]
    names = {name.lower() for name, _ in case.headers}
    for name, text in auth.items():
        if name.lower() not in names:
            lines.append(f"{name}: {text}".encode())
    for name, value in case.headers:
        raw = value if isinstance(value, bytes) else value.encode()
        lines.append(name.encode() + b": " + raw)
    if case.framing == "length" and (body or case.method in ("POST", "PUT", "PATCH")):
        lines.append(b"Content-Length: %d" % len(body))
    elif case.framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        body = _chunked(body)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(port: int, request: bytes, timeout: float = 30) -> Answer:
    """Send ``request`` as is and read the answer, while the request may still be sending (a
    server that refuses a large body early answers before it has read it all)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send() -> None:
        with contextlib.suppress(OSError):
            sock.sendall(request)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    data = b""
    try:
        while not _complete(data):
            chunk = sock.recv(256 * 1024)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        sock.close()
        sender.join(timeout=10)
    return _parse(data)


def _split(data: bytes) -> tuple[int, dict[str, str], bytes] | None:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def _complete(data: bytes) -> bool:
    split = _split(data)
    if split is None:
        return False
    _, headers, rest = split
    if "content-length" in headers:
        return len(rest) >= int(headers["content-length"])
    if headers.get("transfer-encoding") == "chunked":
        return rest.endswith(b"0\r\n\r\n")
    return False


def _parse(data: bytes) -> Answer:
    split = _split(data)
    if split is None:
        return Answer(0, {}, data)
    status, headers, rest = split
    if headers.get("transfer-encoding") == "chunked":
        body, cursor = b"", rest
        while cursor:
            size_line, _, cursor = cursor.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            body, cursor = body + cursor[:size], cursor[size + 2 :]
        rest = body
    return Answer(status, headers, rest)


def _http_params() -> list[Any]:
    cases = [*corpus.http_cases(), *_auth_cases()]
    names = Counter(c.name for c in cases)
    assert not [n for n, k in names.items() if k > 1], "case names must be unique"
    return [
        pytest.param(
            c, id=c.name, marks=[pytest.mark.xfail(reason=c.xfail, strict=False)] if c.xfail else []
        )
        for c in cases
    ]


def _auth_cases() -> list[HttpCase]:
    """Bogus keys, on one route of each API: 401 naming the Authorization header."""
    if KEYS is None:
        return []
    routes = {
        "registry": ("GET", "/v1/models", b""),
        "prediction_logger": (
            "POST",
            "/v1/predictions",
            corpus.J(corpus.prediction(f"{MODEL}-auth")),
        ),
        "feedback": ("POST", "/v1/feedback", corpus.J(corpus.feedback(f"{MODEL}-auth"))),
        "alerting": ("GET", "/v1/subscriptions", b""),
    }
    keys: dict[str, str | bytes] = {
        "no scheme": "vgl_0000000000000000_" + "x" * 43,
        "unknown key": "Bearer vgl_0123456789abcdef_" + "x" * 43,
        "5000-character key": "Bearer " + "k" * 5000,
        "key with NUL": b"Bearer vgl_\x00" + b"x" * 40,
        "non-UTF-8 key": b"Bearer \xff\xfe\xfd",
    }
    cases = []
    for service, (method, path, body) in routes.items():
        cases.append(
            HttpCase(
                f"{service}: no API key",
                service,
                method,
                path,
                body,
                (("Authorization", ""),),
                expect=frozenset({401}),
                mentions=("authorization",),
            )
        )
        for label, value in keys.items():
            cases.append(
                HttpCase(
                    f"{service}: API key {label}",
                    service,
                    method,
                    path,
                    body,
                    (("Authorization", value),),
                    expect=frozenset({400, 401}),
                )
            )
    return cases


def _check_answer(case: HttpCase, answer: Answer) -> None:
    where = f"{case.method} {case.target!r:.120}: {answer.status} {answer.text[:600]}"
    assert answer.status, f"no answer: {where}"
    assert answer.status < 500, f"a server error for client input: {where}"
    assert answer.status in case.expect, f"expected {sorted(case.expect)}: {where}"
    content_type = answer.headers.get("content-type", "")
    assert "html" not in content_type, where
    if answer.status < 400:
        return
    text = answer.text.lower()
    assert text.strip(), f"a refusal that does not say why: {where}"
    if "json" in content_type:
        body = json.loads(answer.body)
        assert body.get("detail"), where
    for word in case.mentions:
        assert word.lower() in text, f"the answer does not name {word!r}: {where}"


@pytest.mark.parametrize("case", _http_params())
def test_hostile_http(case: HttpCase, run: Run) -> None:
    port = run.stack.ports[case.service]
    answer = exchange(port, request_bytes(case, port, run.headers))
    _check_answer(case, answer)
    if 200 <= answer.status < 300 and case.service == "prediction_logger":
        body = json.loads(answer.body)
        assert body["rejected"] == 0, body
        run.ledger.predictions.update(body["prediction_ids"])
        run.ledger.stored.update(case.stores)
        assert set(case.stores) <= set(body["prediction_ids"]), body
    if 200 <= answer.status < 300 and case.service == "feedback":
        body = json.loads(answer.body)
        assert case.stores, "an accepted feedback case names its prediction ids (stores)"
        run.ledger.feedback.update(body["feedback_ids"])
        run.ledger.feedback_stored.update(case.stores)


# -- Kafka ---------------------------------------------------------------------------------


def _kafka_cases() -> list[KafkaCase]:
    return corpus.kafka_cases()


def _kafka_params() -> list[Any]:
    cases = _kafka_cases()
    names = Counter(kafka_id(c) for c in cases)
    assert not [n for n, k in names.items() if k > 1], "case names must be unique"
    return [
        pytest.param(
            c,
            id=kafka_id(c),
            marks=[pytest.mark.xfail(reason=c.xfail, strict=False)] if c.xfail else [],
        )
        for c in cases
    ]


_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+|NaN)$")


def scrape(url: str) -> dict[tuple[str, str], float]:
    """Counter samples of ``url``/metrics by (name, reason label)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    samples: dict[tuple[str, str], float] = defaultdict(float)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            samples[(match.group(1), labels.get("reason", ""))] += float(match.group(3))
    return samples


IGNORED_METRIC = {
    "models": ("vigil_catalog_records_ignored_total", CATALOG_READERS),
    "schemas": ("vigil_schema_records_ignored_total", ("drift_detector",)),
    "keys": ("vigil_keyring_records_ignored_total", API_SERVICES),
}


@dataclass
class Observed:
    """What became of the Kafka cases."""

    letters: dict[Where, list[str]] = field(default_factory=lambda: defaultdict(list))
    ignored: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)  # topic > service
    archived: Counter[str] = field(default_factory=Counter)  # prediction ids
    checks: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0


def archived_rows(root: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*.parquet")):
        rows += pq.read_table(path, columns=["prediction_id", "model_id"]).to_pylist()
    return rows


def _check(run: Run, what: str) -> bool:
    kind, _, subject = what.partition(":")
    with run.http() as http:
        if kind in ("registered", "unregistered"):
            url = f"{run.stack.url('registry')}/v1/models/{subject}/versions/{VERSION}"
            code = http.get(url).status_code
            return code == 200 if kind == "registered" else code == 404
        if kind == "alert":
            found = http.get(
                run.stack.url("alerting") + "/v1/alerts", params={"model_id": subject}
            ).json()
            return bool(found)
    raise AssertionError(f"unknown check {what}")


def _satisfied(case: KafkaCase, run: Run, seen: Observed) -> bool:
    if case.xfail or case.outcome == "survived":
        return True
    spot = run.produced[kafka_id(case)]
    if case.outcome == "dead_letter" and len(seen.letters.get(spot, [])) < case.letters:
        return False
    if case.outcome == "ignored":
        expected = _expected_ignored(case.topic)[case.reason]
        services = seen.ignored.get(case.topic, {})
        if not services or any(c[case.reason] < expected for c in services.values()):
            return False
    if case.check == "archived":
        pid = _prediction_id(case)
        if seen.archived[pid] < 1:
            return False
    elif case.check and not seen.checks.get(case.check):
        return False
    return True


def _expected_ignored(topic: str) -> Counter[str]:
    return Counter(
        c.reason
        for c in _kafka_cases()
        if c.topic == topic and c.outcome == "ignored" and not c.xfail
    )


def _prediction_id(case: KafkaCase) -> str:
    assert case.value is not None
    return Codec(PredictionEvent).decode(case.value).prediction_id


async def _collect_letters(
    bootstrap: str,
    start: dict[TopicPartition, int],
    into: Observed,
    until: Callable[[], bool],
    seconds: float,
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + seconds
        last_check = 0.0
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for batch in batches.values():
                for letter in batch:
                    headers = {k: v for k, v in letter.headers}
                    source = headers.get("vigil.source.topic", b"").decode()
                    if source not in TOPIC_OF.values():
                        continue
                    spot = (
                        source,
                        int(headers.get("vigil.source.partition", b"-1")),
                        int(headers.get("vigil.source.offset", b"-1")),
                    )
                    into.letters[spot].append(headers.get("vigil.reason", b"").decode())
            if time.monotonic() - last_check > 1.0:
                last_check = time.monotonic()
                if await asyncio.to_thread(until):
                    return
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
def observed(run: Run) -> Observed:
    """Produce every Kafka case (the changelog's were produced before the stack started) and
    wait until each has had its effect, or 60 s."""
    cases = [c for c in _kafka_cases() if c.topic != "state"]
    watched = {"models", "schemas", "keys"}
    before = {
        topic: {s: scrape(run.stack.url(s)) for s in IGNORED_METRIC[topic][1]}
        for topic in watched
        if topic != "keys" or KEYS is not None
    }
    began = time.monotonic()
    # Schemas first: the PredictionEvent-named one is then known when its record is read.
    order = ["schemas", "keys", "models", "predictions", "partials", "metrics"]
    for topic in order:
        batch = [c for c in cases if c.topic == topic]
        produce_cases(run.bootstrap, batch, run)
    seen = Observed()
    all_cases = _kafka_cases()

    def settled() -> bool:
        for topic, services in before.items():
            metric = IGNORED_METRIC[topic][0]
            now = {s: scrape(run.stack.url(s)) for s in services}
            seen.ignored[topic] = {
                s: Counter(
                    {
                        reason: now[s][(metric, reason)] - services[s].get((metric, reason), 0.0)
                        for (name, reason) in now[s]
                        if name == metric
                    }
                )
                for s in services
            }
        seen.archived = Counter(r["prediction_id"] for r in archived_rows(run.archive))
        for check in {c.check for c in all_cases if c.check and c.check != "archived"}:
            if not seen.checks.get(check):
                seen.checks[check] = _check(run, check)
        return all(_satisfied(c, run, seen) for c in all_cases)

    asyncio.run(_collect_letters(run.bootstrap, run.start[DEADLETTER.name], seen, settled, 60))
    settled()
    seen.seconds = time.monotonic() - began
    return seen


@pytest.mark.parametrize("case", _kafka_params())
def test_hostile_kafka(case: KafkaCase, run: Run, observed: Observed) -> None:
    spot = run.produced[kafka_id(case)]
    letters = observed.letters.get(spot, [])
    alive = run.stack.exited()
    assert not alive, f"processes exited: {alive}"
    if case.outcome == "dead_letter":
        assert len(letters) >= case.letters, f"dead letters of {spot}: {letters}"
        if case.topic in PRIVATE:
            assert len(letters) == case.letters, f"dead letters of {spot}: {letters}"
        for reason in letters:
            assert reason, "a dead letter without a reason"
            assert case.reason.lower() in reason.lower(), letters
    if case.outcome == "ignored":
        expected = _expected_ignored(case.topic)[case.reason]
        for service, counts in observed.ignored[case.topic].items():
            assert counts[case.reason] >= expected, (service, dict(counts))
    if case.outcome == "processed":
        assert not letters, f"dead-lettered: {letters}"
    if case.check == "archived":
        pid = _prediction_id(case)
        assert observed.archived[pid] == 1, (pid, observed.archived[pid])
    elif case.check:
        assert observed.checks.get(case.check), case.check


# -- afterwards ----------------------------------------------------------------------------


def _drifted_traffic() -> list[dict[str, Any]]:
    return [
        corpus.prediction(
            f"{MODEL}-flow-{i}",
            timestamp=WINDOW1 + i * 0.15,
            features={"x": 5.0 + i / 100, "c": "a" if i % 2 else "b"},
        )
        for i in range(300)
    ]


async def _read_range(
    bootstrap: str, topic: str, start: dict[TopicPartition, int], keys: set[bytes]
) -> list[Any]:
    """The records of ``topic`` from ``start`` to its current end whose key is in ``keys``."""
    end = await end_offsets(bootstrap, topic)
    pending = {tp for tp in end if end[tp] > start.get(tp, 0)}
    if not pending:  # nothing written (and aiokafka cannot stop a consumer assigned nothing)
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    found = []
    try:
        consumer.assign(list(pending))
        for tp in pending:
            consumer.seek(tp, start.get(tp, 0))
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=500, max_records=50_000)
            for tp, batch in batches.items():
                found += [m for m in batch if m.key in keys and m.offset < end[tp]]
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        assert not pending, f"could not read {topic} to its end"
        return found
    finally:
        await consumer.stop()


def test_valid_traffic_still_flows_once_end_to_end(run: Run, observed: Observed) -> None:
    with run.http() as http:
        answer = http.post(
            run.stack.url("prediction_logger") + "/v1/predictions", json=_drifted_traffic()
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 300
        run.ledger.predictions.update(answer.json()["prediction_ids"])
        for service in ("prediction_logger", "drift_detector"):
            assert http.get(run.stack.url(service) + "/readyz").status_code == 200, service

    # Every accepted prediction is on vigil.predictions.v1 exactly once, as documented.
    ledger = run.ledger
    keys = {pid.encode() for pid in ledger.predictions}
    stored = asyncio.run(
        _read_range(run.bootstrap, PREDICTIONS.name, run.start[PREDICTIONS.name], keys)
    )
    copies = Counter(m.key.decode() for m in stored)
    assert set(copies) == ledger.predictions, ledger.predictions ^ set(copies)
    assert [pid for pid, n in copies.items() if n > 1] == []
    codec = Codec(PredictionEvent)
    events = {m.key.decode(): codec.decode(m.value) for m in stored}
    for pid, fields in ledger.stored.items():
        for name, value in fields.items():
            assert getattr(events[pid], name) == value, (pid, name, getattr(events[pid], name))

    # So is every accepted piece of feedback on vigil.feedback.v1 (keyed by prediction_id).
    feedback_keys = {pid.encode() for pid in ledger.feedback_stored}
    letters = asyncio.run(
        _read_range(run.bootstrap, FEEDBACK.name, run.start[FEEDBACK.name], feedback_keys)
    )
    feedback = [Codec(FeedbackEvent).decode(m.value) for m in letters]
    copies = Counter(f.feedback_id for f in feedback if f.feedback_id in ledger.feedback)
    assert set(copies) == ledger.feedback, ledger.feedback ^ set(copies)
    assert [fid for fid, n in copies.items() if n > 1] == []
    for item in feedback:
        for name, value in ledger.feedback_stored.get(item.prediction_id, {}).items():
            assert getattr(item, name) == value, (item, name)

    # What was stored reaches the drift detector and the archive, as Kafka delivers it.
    asyncio.run(_produce(run.bootstrap, [(PRIVATE_PREDICTIONS, m.key, m.value) for m in stored]))

    def alerted(alerts: list[dict[str, Any]]) -> bool:
        return any(a["model_id"] == MODEL and a["feature"] == "x" for a in alerts)

    assert run.inbox.wait_for(alerted, 60), (
        run.stack.tail("drift_detector") + "\n" + run.stack.tail("alerting")
    )
    # One feature_drift alert for x, once its report is handled (the dataset drift and the
    # data-quality rules may fire too, and may page first; a dataset drift inhibits it).
    deadline = time.monotonic() + 30
    drift: list[tuple[str, str]] = []
    while time.monotonic() < deadline and not drift:
        with run.http() as http:
            listed = http.get(
                run.stack.url("alerting") + "/v1/alerts", params={"model_id": MODEL}
            ).json()
        drift = [(a["feature"], a["status"]) for a in listed if a["rule"] == "feature_drift"]
        time.sleep(0.5)
    assert drift == [("x", "firing")], listed

    deadline = time.monotonic() + 30
    archived: Counter[str] = Counter()
    while time.monotonic() < deadline:
        archived = Counter(
            r["prediction_id"] for r in archived_rows(run.archive) if r["model_id"] == MODEL
        )
        if ledger.predictions <= set(archived):
            break
        time.sleep(0.5)
    missing = ledger.predictions - set(archived)
    assert not missing, f"{len(missing)} accepted predictions never archived"
    assert [pid for pid in ledger.predictions if archived[pid] != 1] == []


_SERVER_ERRORS = (
    "Exception in ASGI application",
    "Task exception was never retrieved",
    " CRITICAL ",
    '" 500',
)


def test_every_service_is_alive_and_logged_no_server_error(run: Run, observed: Observed) -> None:
    assert run.stack.exited() == {}, {s: run.stack.tail(s) for s in run.stack.exited()}
    with run.http() as http:
        for service in (*API_SERVICES, "drift_detector"):
            started = time.monotonic()
            assert http.get(run.stack.url(service) + "/healthz", timeout=5).status_code == 200
            assert time.monotonic() - started < 5, f"{service} stalls"
    for service in run.stack.processes:
        log = run.stack.log(service)
        found = [line for line in log.splitlines() if any(e in line for e in _SERVER_ERRORS)]
        assert not found, f"{service}: {found[:5]}"
    # The API services handle hostile input without a traceback.
    for service in ("registry", "prediction_logger", "feedback"):
        assert "Traceback" not in run.stack.log(service), run.stack.tail(service, 80)


def test_nothing_is_written_outside_the_run_directories(run: Run, observed: Observed) -> None:
    assert sorted(os.listdir(run.work)) == [], "the services wrote into their working directory"
    root = run.archive.resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root), path
        top = path.relative_to(root).parts[0]
        assert top == "_manifests" or top.startswith("model="), path
    escapes = [
        ancestor / ESCAPE
        for place in (root, run.work.resolve())
        for ancestor in (place, *place.parents)
    ] + [Path("/etc") / ESCAPE, Path("/tmp") / ESCAPE]
    assert [p for p in escapes if p.exists() or p.is_symlink()] == []
    outside = [p for p in run.base.rglob(f"*{ESCAPE}*") if not p.resolve().is_relative_to(root)]
    assert outside == [], outside


def test_the_corpus_is_large_enough() -> None:
    http, kafka = len(_http_params()), len(_kafka_params())
    assert http + kafka >= 120, (http, kafka)
    topics = {c.topic for c in _kafka_cases()}
    assert {"predictions", "partials", "state", "metrics", "models", "schemas"} <= topics
    assert datetime.now(UTC).year < 2999
