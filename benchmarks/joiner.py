"""The feedback joiner, one worker: predictions indexed/s and labels joined/s with Avro decoding
included, resident memory as predictions pile up, disk per million predictions, and the time to
restore the state from the changelog on a fresh machine.

Targets: >= 50,000 predictions/s indexed and >= 20,000 labels/s joined per worker; resident
memory flat over 10M predictions; disk and restore time per million predictions stated.

1. The logic alone (``Joining.absorb`` + ``flush`` + ``committed`` on its RocksDB store, records
   made in memory, no Kafka): what decoding and the join cost without the broker, then a
   cProfile of the same (its top 15 functions by own time, indexing and joining apart, and
   where the costliest is called from).
2. On the local broker, in topics of this run's own (copies of the catalogue's, same
   partitions and configuration; deleted at the end): ``--predictions`` PredictionEvents of 20
   numeric features, Avro-encoded as the prediction logger writes them, keyed by
   ``prediction_id``. One worker process (the joiner and reporter stages wired as
   ``python -m feedback_joiner`` wires them, a new consumer group) indexes them: the rate from
   its first record read to the commit that covers the last; resident memory every
   ``--rss-every`` predictions; the state directory's size once they are all committed, and the
   changelog's on the broker. Then ``--labels`` FeedbackEvents (true outcomes, as the feedback
   service encodes them) for the first predictions, and a second worker process of the same
   group on an *empty* state directory (a fresh machine): the restore of the store from the
   changelog (one record per prediction id, as a compacted changelog holds), then the labels
   joined/s. The worker's own methods are wrapped to read these (``Watch``), its code unchanged.

The model version is held in an in-memory catalog (the service follows ``vigil.models.v1``
into the same ``ModelCatalog``): nothing is written to the shared topics but the stages' writer
schemas. The defaults take about a minute. ``--predictions 10000000 --labels 0`` is the memory
target's run (about 5 minutes, ~7.5 GB of broker disk while it runs; with labels, its restore
of 10M ids gets the worker expelled from its group again and again, and the benchmark stops it
after ``MAX_ASSIGNMENTS``). ``--profile-workers`` profiles the worker processes too (Kafka
client included; their rates are then lower).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import FEATURES, delete_topics, machine, model_version
from feedback_joiner.config import Settings
from feedback_joiner.handlers import Joining, Topics
from feedback_joiner.store import RocksJoinStore
from feedback_joiner.worker import joiner_stage, reporter_stage
from vigil.adapters.bus import ensure_topics, new_producer, send_keyed
from vigil.adapters.catalog import ModelCatalog
from vigil.adapters.stage import Stage
from vigil.adapters.stage_logic import Assigned, Message, Output
from vigil.adapters.tasks import stop_tasks
from vigil.wire.codec import Codec
from vigil.wire.partitioning import partitions_for_keys
from vigil.wire.records import FeatureSpec, FeedbackEvent, PredictionEvent
from vigil.wire.topics import (
    FEEDBACK,
    JOINS,
    METRICS,
    OUTCOMES,
    PERFORMANCE_PARTIALS,
    PERFORMANCE_WINDOWS,
    PREDICTIONS,
    Topic,
)

INDEX_TARGET = 50_000  # predictions/s per worker
JOIN_TARGET = 20_000  # labels/s per worker
CHUNK = 100_000  # events generated and produced at a time
BASE_MICROS = int((time.time() - 86_400) * 1_000_000)  # event time of the first prediction
PER_SECOND = 2_000  # predictions per second of event time: 7.2M per hourly window
LABEL_DELAY = 3_600 * 1_000_000  # a label comes an hour after its prediction (event time)
PREDICTION_CODEC = Codec(PredictionEvent)
FEEDBACK_CODEC = Codec(FeedbackEvent)
MIB = 1024 * 1024
OURS = ("/libs/", "/services/")  # where the code a profile should point at lives
REPORT = "@bench "  # the worker process's lines for this script start with it
# Assignments after which a worker that keeps being rebalanced is stopped and reported stuck.
MAX_ASSIGNMENTS = 4


# -- the events -------------------------------------------------------------------------------


def _id(run: str, i: int) -> str:
    return f"{run}-{i:023d}"  # 32 characters, as uuid4().hex ids


def predictions(run: str, model_id: str, first: int, n: int) -> list[tuple[bytes, bytes]]:
    """Predictions ``first`` .. ``first + n - 1`` as (key, Avro value): 20 numeric features."""
    rng = np.random.default_rng(first)
    values = rng.normal(size=(n, len(FEATURES))).round(4).tolist()
    scores = rng.random(n).round(6).tolist()
    messages = []
    for i, (row, score) in enumerate(zip(values, scores, strict=True)):
        pid = _id(run, first + i)
        event = {
            "prediction_id": pid,
            "model_id": model_id,
            "model_version": "1",
            "timestamp": BASE_MICROS + (first + i) * 1_000_000 // PER_SECOND,
            "features": dict(zip(FEATURES, row, strict=True)),
            "prediction": score >= 0.5,
            "score": score,
            "tags": {},
            "sample_rate": None,
        }
        messages.append((pid.encode(), PREDICTION_CODEC.encode_dict(event)))
    return messages


def labels(run: str, model_id: str, first: int, n: int) -> list[tuple[bytes, bytes]]:
    """True outcomes for predictions ``first`` .. ``first + n - 1`` as the feedback service
    writes them (each with its own feedback_id), keyed by prediction_id."""
    rng = np.random.default_rng(10**9 + first)
    actual = (rng.random(n) < 0.5).tolist()
    messages = []
    for i, outcome in enumerate(actual):
        pid = _id(run, first + i)
        event = {
            "feedback_id": f"f-{pid}",
            "prediction_id": pid,
            "model_id": model_id,
            "actual": outcome,
            "flag": None,
            "comment": None,
            "reviewer": "bench",
            "source": "ground_truth",
            "timestamp": BASE_MICROS + (first + i) * 1_000_000 // PER_SECOND + LABEL_DELAY,
        }
        messages.append((pid.encode(), FEEDBACK_CODEC.encode_dict(event)))
    return messages


def _catalog(model_id: str) -> ModelCatalog:
    catalog = ModelCatalog()
    catalog.apply(model_version(model_id, [FeatureSpec(name=f, type="numeric") for f in FEATURES]))
    return catalog


def _rss() -> tuple[float, float]:
    """This process's resident memory and its peak so far, MiB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


ROCKS_MEMORY = {  # what RocksDB holds in memory, by the property that says how much
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "table readers": "rocksdb.estimate-table-readers-mem",
}


def _rocks(store: RocksJoinStore) -> dict[str, float]:
    """MiB RocksDB holds in memory, over the store's open databases (and the block cache
    they share, index and filter blocks included)."""
    found = {
        name: sum(db.property_int_value(prop) or 0 for db in store.dbs.values()) / MIB
        for name, prop in ROCKS_MEMORY.items()
    }
    return {**found, "block cache": store.cache.get_usage() / MIB}


def _disk(path: Path) -> int:
    """Bytes on disk under ``path`` (allocated blocks, as ``du``)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


# -- 1. the logic alone -------------------------------------------------------------------------


def _records(topic: str, messages: Sequence[tuple[bytes, bytes]], partitions: int) -> list[Message]:
    chosen = partitions_for_keys([k for k, _ in messages], partitions)
    return [
        Message(topic, p, i, k, v)
        for i, ((k, v), p) in enumerate(zip(messages, chosen, strict=True))
    ]


@dataclass
class LogicRun:
    logic: Joining
    store: RocksJoinStore
    topics: Topics


def _logic(directory: str, model_id: str) -> LogicRun:
    topics = Topics("p", "f", "o", "c", "x")
    store = RocksJoinStore(directory)
    logic = Joining(store, topics, timedelta(days=30), versions=_catalog(model_id))
    assigned = Assigned([("p", p) for p in range(PREDICTIONS.partitions)], {}, {})
    asyncio.run(logic.on_assigned(assigned))
    return LogicRun(logic, store, topics)


async def _drive(logic: Joining, records: Sequence[Message], batch: int = 20_000) -> None:
    """What the stage does, without Kafka: absorb batches, flush when due, commit."""
    for start in range(0, len(records), batch):
        await logic.absorb(records[start : start + batch])
        if logic.due(time.monotonic()):
            logic.committed(await logic.flush())
    output: Output = await logic.flush()
    logic.committed(output)


def _timed(logic: Joining, records: Sequence[Message]) -> float:
    start = time.perf_counter()
    asyncio.run(_drive(logic, records))
    return len(records) / (time.perf_counter() - start)


def _profile(logic: Joining, records: Sequence[Message], title: str) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(_drive(logic, records))
    profiler.disable()
    print(_top(profiler, f"{title}: {len(records):,} records"))


def _top(profiler: cProfile.Profile, title: str) -> str:
    """The profile's top 15 functions by own time, and where the first one is called from."""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    body = out.getvalue()
    table = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in table.values())
    lines = [
        f"\n  cProfile, {title}, {total:.2f} s own time in all",
        "  top 15 by own time (tottime); cumtime includes callees",
        *(f"  {line}" for line in body[body.index("   ncalls") :].rstrip().splitlines()),
        *_callers(table, total),
    ]
    return "\n".join(lines)


def _name(func: tuple[str, int, str]) -> str:
    path, line, name = func
    return f"{Path(path).name}:{line}({name})" if line else name


def _callers(table: dict[Any, Any], total: float) -> list[str]:
    """Where the function of most own time is called from: up its chain of single callers,
    then the callers that share it (time in a C extension, e.g. fastavro's reader, counts as
    its Python caller's)."""
    top = max(table, key=lambda f: table[f][2])
    chain = [top]
    while len(table[chain[-1]][4]) == 1 and len(chain) < 6:
        (caller,) = table[chain[-1]][4]
        if caller not in table or not any(d in caller[0] for d in OURS):
            break
        chain.append(caller)
    via = " <- ".join(_name(f) for f in chain[1:])
    lines = [
        f"  {_name(top)} ({table[top][2] / total:.0%} of the own time) is called by"
        + (f" {via}, which is called by:" if via else ":")
    ]
    for caller, (_, n, _, cum) in sorted(table[chain[-1]][4].items(), key=lambda c: -c[1][3]):
        lines.append(f"    {_name(caller)}: {n:,} calls, {cum:.2f} s cumulative")
    return lines


def logic_alone(n: int, profiled: int) -> dict[str, float]:
    run, model_id = uuid.uuid4().hex[:8], "bench-joiner"
    total = n + profiled
    topics = Topics("p", "f", "o", "c", "x")
    preds = _records(topics.predictions, predictions(run, model_id, 0, total), 6)
    labs = _records(topics.feedback, labels(run, model_id, 0, total), 6)
    with tempfile.TemporaryDirectory(prefix="bench-joiner-") as directory:
        setup = _logic(directory, model_id)
        rates = {
            "index": _timed(setup.logic, preds[:n]),
            "join": _timed(setup.logic, labs[:n]),
        }
        print(
            f"\nthe logic alone (absorb + flush + committed, RocksDB store, no Kafka), {n:,}"
            f" predictions then {n:,} labels:"
        )
        print(
            f"  {rates['index']:,.0f} predictions/s indexed, {rates['join']:,.0f} labels/s joined"
        )
        if profiled:
            _profile(setup.logic, preds[n:], "indexing")
            _profile(setup.logic, labs[n:], "joining")
        setup.store.close()
    return rates


# -- 2. one worker process on the broker ---------------------------------------------------------


def _topics(run: str) -> dict[str, Topic]:
    """This run's copies of the joiner's topics, by setting name."""
    originals = {
        "joiner_predictions_topic": PREDICTIONS,
        "joiner_feedback_topic": FEEDBACK,
        "joiner_outcomes_topic": OUTCOMES,
        "joiner_changelog_topic": JOINS,
        "joiner_partials_topic": PERFORMANCE_PARTIALS,
        "joiner_windows_topic": PERFORMANCE_WINDOWS,
        "joiner_metrics_topic": METRICS,
    }
    return {k: replace(t, name=f"bench.{t.name}.{run}") for k, t in originals.items()}


async def _produce(settings: Settings, topic: str, make: Any, n: int) -> float:
    """Write ``make(first, count)`` messages in chunks; messages/s including encoding."""
    producer = new_producer(settings.kafka, "bench-joiner", linger_ms=20, max_batch_size=512_000)
    await producer.start()
    start = time.perf_counter()
    try:
        for first in range(0, n, CHUNK):
            await send_keyed(producer, topic, make(first, min(CHUNK, n - first)))
    finally:
        await producer.stop()
    return n / (time.perf_counter() - start)


@dataclass
class WorkerSpec:
    mode: str  # "index": count predictions; "join": count labels
    target: int
    rss_every: int
    model_id: str
    state_dir: str
    env: dict[str, str]
    profile: bool = False  # run the worker under cProfile (slower) and report its top functions


def _report(**fields: Any) -> None:
    print(REPORT + json.dumps(fields), flush=True)


class Watch:
    """What the benchmark reads of a running joiner: its stage's and logic's methods wrapped,
    the service's code unchanged underneath."""

    def __init__(self, spec: WorkerSpec, stage: Stage, store: RocksJoinStore) -> None:
        assert isinstance(stage.logic, Joining)
        self.spec, self.logic, self.store = spec, stage.logic, store
        self.done = asyncio.Event()
        self.done_at = 0.0
        self.next_sample = spec.rss_every
        # Each assignment: changelog records read, seconds in all, seconds writing the store.
        self.restores: list[dict[str, float]] = []
        # The longest the logic held the event loop (heartbeats wait meanwhile), by step.
        self.held = {"absorb": 0.0, "flush": 0.0}
        self.restoring = False
        self.stuck = False
        logic = self.logic
        self._assign, self._write = stage._assign, store.write
        self._on_assigned, self._absorb = logic.on_assigned, logic.absorb
        self._flush, self._committed = logic.flush, logic.committed
        stage._assign = self.assign  # type: ignore[method-assign]
        store.write = self.write  # type: ignore[method-assign]
        logic.on_assigned = self.on_assigned  # type: ignore[method-assign]
        logic.absorb = self.absorb  # type: ignore[method-assign]
        logic.flush = self.flush  # type: ignore[method-assign]
        logic.committed = self.committed  # type: ignore[method-assign]

    async def assign(self, partitions: Any) -> None:  # read the changelog, fill the store
        self.restores.append({"entries": 0, "store": 0.0})
        start = time.perf_counter()
        await self._assign(partitions)
        self.restores[-1]["seconds"] = time.perf_counter() - start
        self.restores[-1]["peak"] = _rss()[1]
        _report(event="restored", **self.restores[-1])
        if len(self.restores) > MAX_ASSIGNMENTS and not self.done.is_set():
            self.stuck = True  # rebalanced again and again: report that rather than wait
            self.done_at = time.monotonic()
            self.done.set()

    async def on_assigned(self, assigned: Assigned) -> Any:
        restore, current = assigned.restore, self.restores[-1] if self.restores else {}
        current["entries"] = len(assigned.changelog)
        if restore is not None:

            async def counted() -> Any:
                async for batch in restore():
                    current["entries"] = current.get("entries", 0) + len(batch)
                    yield batch

            assigned = replace(assigned, restore=counted)
        self.restoring = True
        try:
            return await self._on_assigned(assigned)
        finally:
            self.restoring = False

    def write(self, partition: int, changes: Any) -> None:
        start = time.perf_counter()
        self._write(partition, changes)
        if self.restoring and self.restores:
            self.restores[-1]["store"] += time.perf_counter() - start

    async def absorb(self, records: Sequence[Any]) -> None:
        start = time.perf_counter()
        await self._absorb(records)
        self.held["absorb"] = max(self.held["absorb"], time.perf_counter() - start)

    async def flush(self) -> Output:
        start = time.perf_counter()
        output: Output = await self._flush()
        self.held["flush"] = max(self.held["flush"], time.perf_counter() - start)
        return output

    def committed(self, output: Output) -> None:
        self._committed(output)
        counts = self.logic.counts
        count = counts.indexed if self.spec.mode == "index" else counts.joined
        while count >= self.next_sample:
            _report(event="rss", count=self.next_sample, rss=_rss()[0], rocks=_rocks(self.store))
            self.next_sample += self.spec.rss_every
        if count >= self.spec.target and not self.done.is_set():
            self.done_at = time.monotonic()
            self.done.set()


async def _worker(spec: WorkerSpec) -> None:
    """One joiner worker (in its own process) until ``target`` is committed; reports on stdout."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()  # from the environment, as the service reads it
    catalog = _catalog(spec.model_id)
    store = RocksJoinStore(settings.joiner_state_dir, settings.joiner_block_cache_mb * MIB)
    joiner = joiner_stage(settings, store, catalog)
    reporter = reporter_stage(settings, catalog)
    watch = Watch(spec, joiner, store)
    profiler = cProfile.Profile() if spec.profile else None
    if profiler is not None:
        profiler.enable()
    await joiner.start()
    await reporter.start()
    tasks = [asyncio.create_task(joiner.run()), asyncio.create_task(reporter.run())]
    waiting = asyncio.create_task(watch.done.wait())
    await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if profiler is not None:
        profiler.disable()
    for task in tasks:
        if task.done():
            task.result()  # a stage that stopped says why
    first_read = joiner.first_read if joiner.first_read is not None else watch.done_at
    seconds = watch.done_at - first_read
    counts = watch.logic.counts
    rss, peak = _rss()
    disk_open = _disk(Path(spec.state_dir))
    await stop_tasks(tasks)
    await joiner.stop()
    await reporter.stop()
    store.close()
    _report(
        event="done",
        count=counts.indexed if spec.mode == "index" else counts.joined,
        stuck=watch.stuck,
        seconds=seconds,
        rss=rss,
        peak=peak,
        restores=watch.restores,
        held=watch.held,
        disk_open=disk_open,
        disk_closed=_disk(Path(spec.state_dir)),
        dead_lettered=joiner.dead_lettered,
        counts=vars(counts),
        profile=_top(profiler, f"the {spec.mode} worker process") if profiler else "",
    )


def _run_worker(spec: WorkerSpec, log: Path) -> dict[str, Any]:
    """Run a worker process; print its memory samples as they come; its final report."""
    with log.open("ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.joiner", "--worker", json.dumps(vars(spec))],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, **spec.env},
        )
    assert process.stdout is not None
    final: dict[str, Any] | None = None
    samples: list[tuple[int, float]] = []
    for line in process.stdout:
        if not line.startswith(REPORT):
            continue
        fields = json.loads(line[len(REPORT) :])
        if fields["event"] == "rss":
            samples.append((fields["count"], fields["rss"]))
            count, what = fields["count"], "indexed" if spec.mode == "index" else "joined"
            rocks = ", ".join(f"{k} {v:,.0f}" for k, v in fields["rocks"].items())
            print(
                f"    resident memory, {count:>11,} {what}: {fields['rss']:,.0f} MiB"
                f" (RocksDB: {rocks} MiB)"
            )
        elif fields["event"] == "restored" and fields["entries"]:
            print(
                f"    restored {fields['entries']:,} changelog records in {fields['seconds']:.1f} s"
                f" ({fields['seconds'] * 1e6 / fields['entries']:.1f} s per million; writing the"
                f" store {fields['store']:.1f} s); peak resident {fields['peak']:,.0f} MiB"
            )
        elif fields["event"] == "done":
            final = fields
    process.wait()
    if final is None or process.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the joiner worker failed ({process.returncode}):\n{tail}")
    rate = final["count"] / final["seconds"] if final["seconds"] > 0 else 0.0
    what = "predictions indexed" if spec.mode == "index" else "labels joined"
    print(
        f"  {final['count']:,} {what} in {final['seconds']:.1f} s: {rate:,.0f}/s"
        + (
            f"; STUCK: stopped after {len(final['restores'])} assignments, each reading the"
            " changelog again (the group expelled the worker while it restored)"
            if final["stuck"]
            else ""
        )
    )
    if final.get("profile"):
        print(final["profile"])
    return final | {"samples": samples}


def _broker_bytes(topic: str) -> int | None:
    """Bytes of ``topic``'s partitions in the local broker's data directory, if it is here."""
    data = Path(os.environ.get("VIGIL_RUN_DIR", ".run")) / "kafka-data"
    dirs = list(data.glob(f"{topic}-*"))
    return sum(_disk(d) for d in dirs) if dirs else None


@dataclass
class Figures:
    index: dict[str, Any]
    join: dict[str, Any] | None  # None: no labels, no restore
    rss: list[tuple[int, float]]
    changelog_bytes: int | None


def on_the_broker(
    n: int, n_labels: int, rss_every: int, keep: Path, profile: bool = False
) -> Figures:
    settings = Settings()
    run = uuid.uuid4().hex[:8]
    model_id = f"bench-joiner-{run}"
    topics = _topics(run)
    asyncio.run(ensure_topics(settings.kafka, topics.values()))
    state_dir = keep / "state"
    env = {
        "VIGIL_JOINER_GROUP_ID": f"bench-joiner-{run}",
        "VIGIL_JOINER_WORKER_ID": "w1",
        "VIGIL_JOINER_STATE_DIR": str(state_dir),
        **{f"VIGIL_{k.upper()}": t.name for k, t in topics.items()},
    }
    rss: list[tuple[int, float]] = []
    try:
        print(f"\none worker process on the local broker (topics bench.*.{run}, deleted after):")
        produced_p = asyncio.run(
            _produce(
                settings,
                topics["joiner_predictions_topic"].name,
                lambda first, count: predictions(run, model_id, first, count),
                n,
            )
        )
        print(f"  {n:,} predictions written ({produced_p:,.0f}/s with encoding); indexing:")
        spec = WorkerSpec("index", n, rss_every, model_id, str(state_dir), env, profile)
        index = _run_worker(spec, keep / "worker-index.log")
        rss = index["samples"]
        changelog = _broker_bytes(topics["joiner_changelog_topic"].name)
        join = _restore_and_join(settings, topics, spec, n_labels, run, keep) if n_labels else None
    finally:
        asyncio.run(delete_topics(settings, [t.name for t in topics.values()]))
    return Figures(index, join, rss, changelog)


def _restore_and_join(
    settings: Settings, topics: dict[str, Topic], spec: WorkerSpec, n: int, run: str, keep: Path
) -> dict[str, Any]:
    """Labels for the first ``n`` predictions, then a worker on an empty state directory."""
    rate = asyncio.run(
        _produce(
            settings,
            topics["joiner_feedback_topic"].name,
            lambda first, count: labels(run, spec.model_id, first, count),
            n,
        )
    )
    print(
        f"  {n:,} labels written ({rate:,.0f}/s with encoding); a second worker on an empty"
        " state directory restores, then joins:"
    )
    shutil.rmtree(spec.state_dir)
    return _run_worker(replace(spec, mode="join", target=n), keep / "worker-join.log")


# -- the summary --------------------------------------------------------------------------------


def _flat(samples: Sequence[tuple[int, float]]) -> tuple[str, str, bool | None]:
    """Resident memory from the first sample to the last, and whether it stays flat over the
    second half of the run (within 5 %): the first half covers start-up and the stores'
    memtables filling up."""
    if len(samples) < 4:
        return "—", "too few samples", None
    half = samples[len(samples) // 2 - 1][1]
    last = samples[-1][1]
    every = samples[1][0] - samples[0][0]
    return (
        f"{samples[0][1]:,.0f} -> {last:,.0f} MiB",
        f"sampled every {every:,} predictions: {', '.join(f'{r:,.0f}' for _, r in samples)} MiB;"
        f" {last - half:+,.0f} MiB over the second half",
        last - half <= 0.05 * last,
    )


Row = tuple[str, str, str, str, str]  # figure, target, measured, verdict, detail


def _rebalances(worker: dict[str, Any]) -> str:
    """The assignments after the first: each read the changelog again (in the timed span)."""
    held = worker["held"]
    longest = (
        f"; the logic held the event loop up to {held['absorb']:.1f} s in one absorb,"
        f" {held['flush']:.1f} s in one flush (the consumer's session times out after 10 s)"
    )
    again = worker["restores"][1:]
    if not again:
        return longest
    seconds = sum(r.get("seconds", 0.0) for r in again)
    return (
        f"; {len(again)} rebalance(s) on the way, each reading the changelog again"
        f" ({seconds:.1f} s in all; --logs DIR keeps the worker's log)"
    ) + longest


def _rows(n: int, figures: Figures) -> list[Row]:
    index, join = figures.index, figures.join
    index_rate = index["count"] / index["seconds"]
    per_million = 1e6 / index["count"]
    rows: list[Row] = [
        (
            "predictions indexed/s",
            f">= {INDEX_TARGET:,}",
            f"{index_rate:,.0f}",
            "met" if index_rate >= INDEX_TARGET else "NOT met",
            f"{index['count']:,} in {index['seconds']:.1f} s, first read to last commit"
            + _rebalances(index),
        )
    ]
    if join is not None:
        join_rate = join["count"] / join["seconds"] if join["seconds"] > 0 else 0.0
        rows.append(
            (
                "labels joined/s",
                f">= {JOIN_TARGET:,}",
                f"{join_rate:,.0f}",
                "met" if join_rate >= JOIN_TARGET and not join["stuck"] else "NOT met",
                ("STUCK in a rebalance loop, stopped: " if join["stuck"] else "")
                + f"{join['count']:,} in {join['seconds']:.1f} s, first read to last commit"
                + _rebalances(join),
            )
        )
    measured, detail, flat = _flat(figures.rss)
    verdict = "not judged" if flat is None else "flat" if flat else "growing"
    verdict += f" over {n / 1e6:g}M" if n < 10_000_000 else ""
    rows.append(("resident memory, indexing", "flat over 10M", measured, verdict, detail))
    labelled = (
        f"; {join['count']:,} of them labelled: {join['disk_closed'] * per_million / MIB:,.0f} MiB"
        if join is not None
        else ""
    )
    rows.append(
        (
            "state dir per million predictions",
            "stated",
            f"{index['disk_closed'] * per_million / MIB:,.0f} MiB",
            "",
            f"RocksDB, closed ({index['disk_open'] * per_million / MIB:,.0f} MiB while open,"
            f" write-ahead log and memtables included){labelled}",
        )
    )
    if figures.changelog_bytes is not None:
        rows.append(
            (
                "changelog per million predictions",
                "stated",
                f"{figures.changelog_bytes * per_million / MIB:,.0f} MiB",
                "",
                "the compacted changelog topic's files on the broker, one record per id",
            )
        )
    first = join["restores"][0] if join is not None and join["restores"] else None
    if first is not None and first["entries"]:
        seconds, entries = first["seconds"], first["entries"]
        rows.append(
            (
                "restore per million predictions",
                "timed",
                f"{seconds * 1e6 / entries:,.1f} s",
                "",
                f"{entries:,} entries on an empty disk in {seconds:.1f} s (storing them"
                f" {first['store']:.1f} s, the rest reading the changelog); peak resident"
                f" {first['peak']:,.0f} MiB",
            )
        )
    return rows


def summary(n: int, logic: dict[str, float] | None, figures: Figures | None) -> None:
    rows = _rows(n, figures) if figures is not None else []
    if logic is not None:
        rows.append(
            (
                "the logic alone, no Kafka",
                "—",
                f"{logic['index']:,.0f} / {logic['join']:,.0f}",
                "",
                "predictions / labels per second: absorb + flush + committed, RocksDB store",
            )
        )
    print(f"\nsummary ({machine()}, load average {os.getloadavg()[0]:.2f}), one worker:")
    print(f"  {'figure':<34} {'target':>14} {'measured':>22}  verdict")
    for name, target, measured, verdict, detail in rows:
        print(f"  {name:<34} {target:>14} {measured:>22}  {verdict}")
        if detail:
            print(textwrap.fill(detail, 100, initial_indent=" " * 6, subsequent_indent=" " * 6))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument(
        "--labels",
        type=int,
        default=100_000,
        help="labels to join, for the first predictions (0: no labels, no restore)",
    )
    parser.add_argument(
        "--rss-every",
        type=int,
        help="predictions between memory samples (default: 1M, or a"
        " quarter of --predictions if fewer than 4M)",
    )
    parser.add_argument("--logic", type=int, default=50_000, help="records for the logic alone")
    parser.add_argument("--profile", type=int, default=20_000, help="records profiled (0: none)")
    parser.add_argument("--skip-broker", action="store_true", help="only the logic alone")
    parser.add_argument("--logs", help="keep the workers' logs (and state) in this directory")
    parser.add_argument(
        "--profile-workers",
        action="store_true",
        help="run the worker processes under cProfile (their rates are then slower) and print"
        " where their time goes, Kafka client included",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker(WorkerSpec(**json.loads(args.worker))))
        return
    n = args.predictions
    n_labels = min(args.labels, n)
    every = args.rss_every or (1_000_000 if n >= 4_000_000 else max(n // 4, 1))
    print(f"feedback joiner, one worker ({machine()}): 20 numeric features, Avro")
    logic = logic_alone(args.logic, args.profile) if args.logic else None
    figures = None
    if not args.skip_broker:
        with tempfile.TemporaryDirectory(prefix="bench-joiner-") as scratch:
            logs = Path(args.logs or scratch)
            logs.mkdir(parents=True, exist_ok=True)
            figures = on_the_broker(n, n_labels, every, logs, args.profile_workers)
    summary(n, logic, figures)


if __name__ == "__main__":
    main()
