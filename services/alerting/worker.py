"""The alerting service's stream edge: consumes ``vigil.metrics.v1``; each report's alert
changes are stored, sent to their subscribers and published on ``vigil.alerts.v1``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from alerting.handlers import fingerprint
from alerting.history import AlertHistory, delivery_events, event, settle, to_send
from alerting.inhibition import active_sources, source_fingerprints
from alerting.ports import AlertStore, Notifier
from alerting.replay import rebuild
from alerting.rules import RuleState, evaluate_rules, watched
from alerting.subscriptions import Notification, route
from vigil.adapters.bus import KafkaBus, ensure_topics, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.kafka_security import client_options
from vigil.adapters.ports import Bus, Catalog, Unavailable
from vigil.adapters.stage_logic import Incoming
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import Alert, AlertRule, Severity, WindowReport, utcnow
from vigil.wire.rules import effective_rules
from vigil.wire.topics import ALERTS

__all__ = ["Alerter", "ReportConsumer", "prune_forever", "run_forever", "start"]

log = logging.getLogger(__name__)

REPORTS = Codec(WindowReport)
UNKNOWN_MODEL_SEVERITY: Severity = "medium"
# A back end that does not answer: the report is retried (from the last commit), never dropped.
OUTAGES = (Unavailable, KafkaError, RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
DEAD_LETTERED = Counter(
    "vigil_alerting_reports_dead_lettered_total",
    "Reports of vigil.metrics.v1 the alerting worker could not act on, by reason.",
    ["reason"],
)


class Alerter:
    """Turns window reports into alert changes: stored, sent to subscribers, published."""

    def __init__(self, bus: Bus, catalog: Catalog, store: AlertStore, notifier: Notifier) -> None:
        self.bus = bus
        self.catalog = catalog
        self.store = store
        self.notifier = notifier
        self.history = AlertHistory(bus, store)
        self.dead_lettered = 0

    async def handle(self, message: Incoming) -> None:
        """One message of the metrics topic: a report acted on, or dead-lettered.

        Back-end outages raise (the report is handled again); any other failure would repeat
        on every attempt, so the report is dead-lettered with the reason and the worker goes on.
        """
        try:
            report = REPORTS.decode(message.value)
        except DecodeError as exc:
            await self._dead_letter(message, "undecodable", exc.reason)
            return
        try:
            await self.handle_report(report)
        except OUTAGES:
            raise
        except Exception as exc:
            log.exception("report %s could not be processed", report.report_id)
            reason = f"report not processable: {type(exc).__name__}: {exc}"
            await self._dead_letter(message, "unprocessable", reason)

    async def _dead_letter(self, message: Incoming, kind: str, reason: str) -> None:
        log.warning("dead-lettering a report: %s", reason)
        await self.bus.dead_letter(message, reason)
        self.dead_lettered += 1
        DEAD_LETTERED.labels(kind).inc()

    async def handle_report(self, report: WindowReport) -> list[Alert]:
        """Act on one report; returns the alert changes it made."""
        changes, current = await self._evaluate(report)
        if not changes:
            return changes
        recorded = await self._record(changes, current)
        # Silenced, inhibited, or still acknowledged: recorded, not sent.
        changes = to_send(recorded)
        for subscription, alerts in route(await self.store.subscriptions(), changes):
            notification = Notification.of(subscription, alerts)
            result = await self.notifier.send(subscription, notification)
            # Every attempt's outcome is on the record, beside the changes it told.
            await self.history.record(delivery_events(subscription, notification, result, utcnow()))
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

    async def _rules(self, report: WindowReport) -> list[AlertRule]:
        """The version's effective rules: its tier's defaults and its overrides."""
        version = await self.catalog.lookup(report.model_id, report.model_version)
        if version is None:
            return effective_rules(UNKNOWN_MODEL_SEVERITY, [])
        return effective_rules(version.risk.severity, version.alert_rules)

    async def _evaluate(self, report: WindowReport) -> tuple[list[Alert], dict[str, Alert]]:
        """The alert changes of ``report``, and the version's stored alerts they were judged
        against (with those that may inhibit them); the rules' new state is saved at once (a
        report handled again gives the same changes: see ``alerting.rules``)."""
        rules = await self._rules(report)
        fps = {
            fingerprint(report.model_id, report.model_version, r.name, s)
            for r, (s, _, _) in watched(report, rules)
        }
        fps |= source_fingerprints(report.model_id, report.model_version)
        state = RuleState.load(await self.store.rule_state(report.key))
        current = await self.store.alerts(fps)
        changes, state = evaluate_rules(report, rules, state, current, utcnow())
        await self.store.save_rule_state(report.key, state.model_dump(mode="json"))
        return changes, current


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


async def start(stack: AsyncExitStack, settings: Settings, store: AlertStore) -> Alerter:
    """Open the worker's clients, rebuild the cache from the alerts topic if Redis lost it,
    and run the worker in a task until ``stack`` closes."""
    events_topic = replace(ALERTS, name=settings.alerting_events_topic)
    await ensure_topics(settings.kafka, [events_topic])
    await rebuild(settings.kafka, events_topic, store)
    bus = await KafkaBus.open(stack, settings.kafka, "vigil-alerting")
    follower = await started(stack, ModelCatalogFollower(settings.kafka))
    consumer = AIOKafkaConsumer(
        settings.alerting_reports_topic,
        **client_options(settings.kafka),
        group_id=settings.alerting_group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Reports are written in transactions: never act on one that was rolled back.
        isolation_level="read_committed",
    )
    await started(stack, consumer)
    notifier = open_notifier(stack, settings)
    alerter = Alerter(bus, follower, store, notifier)
    alerter.history = AlertHistory(bus, store, events_topic)
    retention = timedelta(days=settings.alerting_retention_days)
    tasks = [
        asyncio.create_task(run_forever(ReportConsumer(consumer, alerter))),
        asyncio.create_task(
            prune_forever(store, retention, settings.alerting_prune_interval_seconds)
        ),
    ]

    async def cancel() -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    stack.push_async_callback(cancel)
    return alerter
