"""The alerting service's stream edge: consumes ``vigil.metrics.v1``; each report's alert
changes are recorded on ``vigil.alerts.v1`` and handed to the notification pipeline. A clock
fires ``model_silent`` for versions whose traffic stopped (nothing arrives to say so)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from alerting.channels import open_notifier
from alerting.config import Settings
from alerting.dispatch import Dispatcher
from alerting.grouping import DEFAULT_TIMING, Timing
from alerting.handlers import fingerprint
from alerting.history import AlertHistory, event, settle
from alerting.inhibition import active_sources, source_fingerprints
from alerting.liveness import (
    MODEL_SILENT,
    TrafficSeen,
    check_silence,
    seen,
    silence_fingerprints,
    traffic_resumed,
)
from alerting.ports import AlertStore, Notifier
from alerting.replay import rebuild
from alerting.rules import RuleState, evaluate_rules, watched
from vigil.adapters.bus import KafkaBus, ensure_topics, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.kafka_security import client_options
from vigil.adapters.ports import Bus, Catalog, Unavailable
from vigil.adapters.stage_logic import Incoming
from vigil.adapters.tasks import stop_tasks
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.environments import EnvironmentCheck, EnvironmentReport
from vigil.wire.flag_reports import FlagReport
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import (
    Alert,
    AlertRule,
    ModelVersion,
    Severity,
    TrafficReport,
    WindowReport,
    utcnow,
)
from vigil.wire.rules import effective_rules
from vigil.wire.topics import ALERTS, ENVIRONMENTS, Topic

Report = WindowReport | TrafficReport | PerformanceReport | FlagReport | EnvironmentCheck

__all__ = [
    "Alerter",
    "ReportConsumer",
    "decode_report",
    "liveness_forever",
    "prune_forever",
    "run_forever",
    "start",
]

log = logging.getLogger(__name__)

WINDOW_REPORTS = Codec(WindowReport)
TRAFFIC_REPORTS = Codec(TrafficReport)
PERFORMANCE_REPORTS = Codec(PerformanceReport)
FLAG_REPORTS = Codec(FlagReport)
ENVIRONMENT_REPORTS = Codec(EnvironmentReport)
UNKNOWN_SECONDS = 30.0
UNKNOWN_MODEL_SEVERITY: Severity = "medium"
# A back end that does not answer: the report is retried (from the last commit), never dropped.
OUTAGES = (Unavailable, KafkaError, RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
DEAD_LETTERED = Counter(
    "vigil_alerting_reports_dead_lettered_total",
    "Reports of vigil.metrics.v1 the alerting worker could not act on, by reason.",
    ["reason"],
)


class Alerter:
    """Turns reports into alert changes: judged by the version's rules, recorded, and handed
    to the notification pipeline (``alerting.dispatch``)."""

    def __init__(
        self,
        bus: Bus,
        catalog: Catalog,
        store: AlertStore,
        notifier: Notifier,
        events_topic: Topic = ALERTS,
        timing: Timing = DEFAULT_TIMING,
    ) -> None:
        self.bus = bus
        self.catalog = catalog
        self.store = store
        self.history = AlertHistory(bus, store, events_topic)
        self.dispatcher = Dispatcher(store, self.history, notifier, timing)
        self.dead_lettered = 0
        self._unknown: dict[tuple[str, str], float] = {}  # versions not found, when
        self.environments_topic = ENVIRONMENTS.name

    async def handle(self, message: Incoming) -> None:
        """One message of the metrics (or environments) topic: a report acted on, or
        dead-lettered.

        Back-end outages raise (the report is handled again); any other failure would repeat
        on every attempt, so the report is dead-lettered with the reason and the worker goes on.
        """
        try:
            if message.topic == self.environments_topic:
                report: Report | None = await self._environment(message.value)
            else:
                report = decode_report(message.value)
        except DecodeError as exc:
            await self._dead_letter(message, "undecodable", exc.reason)
            return
        if report is None:
            return
        try:
            await self.handle_report(report)
        except OUTAGES:
            raise
        except Exception as exc:
            log.exception("report %s could not be processed", report.report_id)
            reason = f"report not processable: {type(exc).__name__}: {exc}"
            await self._dead_letter(message, "unprocessable", reason)

    async def _environment(self, value: bytes | None) -> EnvironmentCheck | None:
        """A serving host's environment judged against its version's validated one (None: a
        tombstone, or a version that records no validated environment)."""
        if value is None:
            return None  # a compacted topic's tombstone: the host is gone
        served = ENVIRONMENT_REPORTS.decode(value)
        version = await self._version(served.model_id, served.model_version)
        validated = version.lineage.validated_environment if version else None
        if validated is None or not (validated.python or validated.packages):
            return None
        return EnvironmentCheck.of(served, validated)

    async def _dead_letter(self, message: Incoming, kind: str, reason: str) -> None:
        log.warning("dead-lettering a report: %s", reason)
        await self.bus.dead_letter(message, reason)
        self.dead_lettered += 1
        DEAD_LETTERED.labels(kind).inc()

    async def handle_report(self, report: Report) -> list[Alert]:
        """Act on one report; returns the alert changes it made (as recorded)."""
        version = await self._version(report.model_id, report.model_version)
        rules = _rules(version)
        changes, current = await self._evaluate(report, rules)
        if isinstance(report, TrafficReport):
            changes += await self._traffic(report, rules)
        return await self.apply(changes, current)

    async def _version(self, model_id: str, version_id: str) -> ModelVersion | None:
        """The registry's version, catching up with the catalog when it is not known; a
        version still unknown after that is not looked up again for UNKNOWN_SECONDS (each
        catch-up waits on the models topic, and would hold up every report behind it)."""
        found = self.catalog.get(model_id, version_id)
        if found is not None:
            return found
        now = time.monotonic()
        if now - self._unknown.get((model_id, version_id), -UNKNOWN_SECONDS) < UNKNOWN_SECONDS:
            return None
        found = await self.catalog.lookup(model_id, version_id)
        if found is None:
            if len(self._unknown) > 10_000:
                self._unknown.clear()
            self._unknown[(model_id, version_id)] = now
        return found

    async def apply(self, changes: list[Alert], current: dict[str, Alert]) -> list[Alert]:
        """Record ``changes`` and hand them to the notification pipeline."""
        if not changes:
            return changes
        recorded = await self._record(changes, current)
        await self.dispatcher.absorb(recorded)
        for alert in recorded:
            log.info("alert %s %s: %s", alert.fingerprint, alert.status, alert.summary)
        return recorded

    async def _record(self, changes: list[Alert], current: dict[str, Alert]) -> list[Alert]:
        """Changes with acknowledgements, silences and inhibitions settled, published as state
        events (the record) and then cached, before anyone is told.

        What may inhibit them: the version's active alerts (``current``, as stored before the
        report) with the report's changes applied.
        """
        now = utcnow()
        previous = await self.store.alerts(a.fingerprint for a in changes)
        sources = active_sources(current.values(), changes)
        settled = settle(changes, previous, await self.store.silences(), now, sources)
        states = [event("state", now, fingerprint=a.fingerprint, alert=a) for a in settled]
        await self.history.record(states)
        return settled

    async def _evaluate(
        self, report: Report, rules: list[AlertRule]
    ) -> tuple[list[Alert], dict[str, Alert]]:
        """The alert changes of ``report``, and the version's stored alerts they were judged
        against (with those that may inhibit them); the rules' new state is saved at once (a
        report handled again gives the same changes: see ``alerting.rules``)."""
        fps = {
            fingerprint(report.model_id, report.model_version, r.name, s)
            for r, (s, _, _) in watched(report, rules)
        }
        fps |= source_fingerprints(report.model_id, report.model_version)
        state = RuleState.load(await self.store.rule_state(_key(report)))
        current = await self.store.alerts(fps)
        changes, state = evaluate_rules(report, rules, state, current, utcnow())
        await self.store.save_rule_state(_key(report), state.model_dump(mode="json"))
        return changes, current

    async def _traffic(self, report: TrafficReport, rules: list[AlertRule]) -> list[Alert]:
        """Note the version's traffic (the liveness clock's input); a silence it ends."""
        key = _key(report)
        before = (await self.store.traffic()).get(key)
        await self.store.save_traffic(
            key, seen(TrafficSeen.load(before), report).model_dump(mode="json")
        )
        silent = fingerprint(report.model_id, report.model_version, MODEL_SILENT, None)
        current = await self.store.alerts([silent])
        return traffic_resumed(report, rules, current, utcnow())

    async def check_liveness(self, now: datetime | None = None) -> list[Alert]:
        """Fire ``model_silent`` for every version that received traffic and then none for
        its expected interval; the clock's job, done by one replica at a time."""
        now = now or utcnow()
        recorded: list[Alert] = []
        for key, stored in (await self.store.traffic()).items():
            traffic = TrafficSeen.load(stored)
            model_id, _, version_id = key.partition("/")
            if traffic is None or not version_id:
                continue
            version = await self._version(model_id, version_id)
            if version is not None and version.status == "retired":
                await self.store.forget_traffic(key)  # a retired version is meant to be silent
                continue
            rules = _rules(version)
            fps = source_fingerprints(model_id, version_id)
            fps |= silence_fingerprints(model_id, version_id, rules)
            current = await self.store.alerts(fps)
            changes = check_silence(model_id, version_id, traffic, rules, current, now)
            recorded += await self.apply(changes, current)
        return recorded


def _key(report: Report) -> str:
    return f"{report.model_id}/{report.model_version}"


def _rules(version: ModelVersion | None) -> list[AlertRule]:
    """A version's effective rules: its tier's defaults and its overrides."""
    if version is None:
        return effective_rules(UNKNOWN_MODEL_SEVERITY, [])
    return effective_rules(version.risk.severity, version.alert_rules, version.expected_interval)


def decode_report(value: bytes | None) -> Report:
    """A record of the metrics topic: a window, traffic, performance or flag report."""
    try:
        return WINDOW_REPORTS.decode(value)
    except DecodeError as first:
        for codec in (TRAFFIC_REPORTS, PERFORMANCE_REPORTS, FLAG_REPORTS):
            try:
                return codec.decode(value)
            except DecodeError:
                continue
        raise first from None


class ReportConsumer:
    """One member of the alerting consumer group; commits a report only once it is handled."""

    def __init__(self, consumer: AIOKafkaConsumer, alerter: Alerter) -> None:
        self.consumer = consumer
        self.alerter = alerter

    async def run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500, max_records=200)
            for messages in batches.values():
                for message in messages:
                    await self.alerter.handle(message)
            if batches:
                await self.consumer.commit()


async def run_forever(consumer: ReportConsumer) -> None:
    """Run the consumer, logging and restarting the loop after unexpected errors."""
    while True:
        try:
            await consumer.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("report consumer failed; retrying from the last commit in 2 s")
            await asyncio.sleep(2)
            # Reports read since the last commit are handled again, not skipped.
            await consumer.consumer.seek_to_committed()


async def prune_forever(
    store: AlertStore,
    retention: timedelta,
    every_seconds: float,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Forget resolved alerts older than ``retention`` now, then every ``every_seconds``.

    Without it the alerts hash grows with every feature that ever drifted; a store that does
    not answer is tried again at the next round.
    """
    while True:
        try:
            removed = await store.prune(clock() - retention)
        except OUTAGES as exc:
            log.warning("could not prune resolved alerts (%s); trying again later", exc)
        except Exception:
            log.exception("pruning resolved alerts failed; trying again later")
        else:
            if removed:
                log.info("forgot %d resolved alert(s) older than %s", removed, retention)
        await sleep(every_seconds)


async def liveness_forever(alerter: Alerter, every_seconds: float) -> None:
    """Check for silent models every ``every_seconds``; one replica per round does it."""
    owner = alerter.dispatcher.owner
    while True:
        await asyncio.sleep(every_seconds)
        try:
            if await alerter.store.take_turn("liveness", owner, every_seconds * 0.9):
                await alerter.check_liveness()
        except asyncio.CancelledError:
            raise
        except OUTAGES as exc:
            log.warning("liveness check skipped (%s); trying again later", exc)
        except Exception:
            log.exception("liveness check failed; trying again later")


async def start(stack: AsyncExitStack, settings: Settings, store: AlertStore) -> Alerter:
    """Open the worker's clients, rebuild the cache from the alerts topic if Redis lost it,
    and run the worker in a task until ``stack`` closes."""
    events_topic = replace(ALERTS, name=settings.alerting_events_topic)
    await ensure_topics(settings.kafka, [events_topic])
    timing = Timing(
        settings.alerting_group_wait_seconds,
        settings.alerting_group_interval_seconds,
        settings.alerting_repeat_interval_seconds,
    )
    await rebuild(settings.kafka, events_topic, store, timing)
    bus = await KafkaBus.open(stack, settings.kafka, "vigil-alerting")
    follower = await started(stack, ModelCatalogFollower(settings.kafka))
    consumer = AIOKafkaConsumer(
        settings.alerting_reports_topic,
        settings.alerting_environments_topic,
        **client_options(settings.kafka),
        group_id=settings.alerting_group_id,
        enable_auto_commit=False,
        auto_offset_reset=settings.alerting_auto_offset_reset,
        # Reports are written in transactions: never act on one that was rolled back.
        isolation_level="read_committed",
    )
    await started(stack, consumer)
    notifier = open_notifier(stack, settings)
    alerter = Alerter(bus, follower, store, notifier, events_topic, timing)
    alerter.environments_topic = settings.alerting_environments_topic
    alerter.dispatcher.give_up_after = timedelta(seconds=settings.alerting_give_up_seconds)
    alerter.dispatcher.lease_seconds = settings.alerting_delivery_lease_seconds
    retention = timedelta(days=settings.alerting_retention_days)
    tasks = [
        asyncio.create_task(run_forever(ReportConsumer(consumer, alerter))),
        asyncio.create_task(
            prune_forever(store, retention, settings.alerting_prune_interval_seconds)
        ),
        asyncio.create_task(alerter.dispatcher.run()),
        asyncio.create_task(liveness_forever(alerter, settings.alerting_liveness_check_seconds)),
    ]

    async def cancel() -> None:
        await stop_tasks([*tasks, *alerter.dispatcher.sending()])

    stack.push_async_callback(cancel)
    return alerter
