"""Prediction logging for production apps: ``log()`` (and ``feedback()``, for true outcomes)
never blocks on I/O and never raises because Vigil or Kafka is down."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import hashlib
import inspect
import os
import random
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from vigil.adapters.kafka_security import KafkaSecurity
from vigil.sdk.environment import environment_report
from vigil.sdk.ids import new_id
from vigil.sdk.pipeline import Delivery, DeliveryPolicy, LoggerStats
from vigil.sdk.spool import Spool
from vigil.sdk.transport import transport_for
from vigil.wire.environments import EnvironmentReport

__all__ = ["AsyncPredictionLogger", "PredictionLogger"]

# Shared by events without tags, which are only ever serialised: one allocation (and one
# object for the garbage collector to count and traverse) fewer per log().
_NO_TAGS: dict[str, str] = {}

Flag = Literal["incorrect", "unexpected", "harmful", "ok"]
Source = Literal["ground_truth", "system", "sme"]
P = ParamSpec("P")
T = TypeVar("T")


def _plain(value: Any) -> Any:
    """numpy scalars and the like as plain Python values."""
    return value.item() if hasattr(value, "item") and not isinstance(value, str | bytes) else value


class _LoggerBase:
    def __init__(
        self,
        destination: str,
        *,
        sample_rate: float = 1.0,
        queue_size: int = 100_000,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = 256 << 20,
        policy: DeliveryPolicy | None = None,
        security_protocol: str | None = None,
        sasl_mechanism: str | None = None,
        sasl_username: str | None = None,
        sasl_password: str | None = None,
        ssl_cafile: str | None = None,
        api_key: str | None = None,
        feedback_destination: str | None = None,
        report_environment: bool = True,
        host: str | None = None,
    ) -> None:
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        self.destination = destination
        self.sample_rate = sample_rate
        self.queue_size = queue_size
        self._queue: deque[dict[str, Any]] = deque()
        self._sampled_out = 0
        self._dropped_full = 0
        if spool_dir is None:
            digest = hashlib.sha1(destination.encode()).hexdigest()[:12]
            spool_dir = Path(tempfile.gettempdir()) / "vigil-spool" / f"{digest}-{os.getpid()}"
        spool = Spool(spool_dir, spool_max_bytes) if spool_max_bytes > 0 else None
        security = None
        if destination.startswith("kafka://"):  # an inconsistent setting raises ValueError now
            security = KafkaSecurity.from_env(
                security_protocol=security_protocol,
                sasl_mechanism=sasl_mechanism,
                sasl_username=sasl_username,
                sasl_password=sasl_password,
                ssl_cafile=ssl_cafile,
            )
        # An http(s) destination needs a producer's API key (default: VIGIL_API_KEY).
        key = api_key if api_key is not None else os.environ.get("VIGIL_API_KEY")
        # Kafka takes both kinds; over HTTP feedback has its own service.
        self._takes_feedback = destination.startswith("kafka://") or bool(feedback_destination)
        # The versions whose serving environment was reported (or is not to be).
        self._reported: set[tuple[str, str]] = set()
        self._report_environment = report_environment
        self._host = host
        self._environments: deque[EnvironmentReport] = deque()
        self._delivery = Delivery(
            transport_for(destination, security, key, feedback_destination),
            self._queue,
            spool,
            policy or DeliveryPolicy(),
            self._environments,
        )

    def _first_of(self, model_id: str, model_version: str) -> None:
        """A version logged for the first time: report the environment it is served in."""
        self._reported.add((model_id, model_version))
        if self._report_environment:
            try:
                report = environment_report(model_id, model_version, self._host)
            except Exception as exc:  # e.g. an id the record refuses: never break the app
                self._delivery.last_error = f"environment report: {type(exc).__name__}: {exc}"
                return
            self._environments.append(report)

    def log(
        self,
        model_id: str,
        model_version: str,
        features: Mapping[str, Any],
        prediction: Any,
        score: float | None = None,
        prediction_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        timestamp: float | None = None,
    ) -> str:
        """Queue one prediction; returns its id. Dropped (and counted) only if the queue is full."""
        prediction_id = prediction_id or new_id()
        if (model_id, model_version) not in self._reported:
            self._first_of(model_id, model_version)
        if self.sample_rate < 1.0 and random.random() >= self.sample_rate:
            self._sampled_out += 1
            return prediction_id
        if len(self._queue) >= self.queue_size:
            self._dropped_full += 1
            return prediction_id
        self._queue.append(
            {
                "prediction_id": prediction_id,
                "model_id": model_id,
                "model_version": model_version,
                "timestamp": time.time() if timestamp is None else timestamp,
                "features": features,
                "prediction": prediction,
                "score": score,
                "tags": tags or _NO_TAGS,
                "sample_rate": self.sample_rate if self.sample_rate < 1.0 else None,
            }
        )
        return prediction_id

    def feedback(
        self,
        prediction_id: str,
        actual: Any = None,
        *,
        flag: Flag | None = None,
        comment: str | None = None,
        feedback_id: str | None = None,
        model_id: str | None = None,
        source: Source = "ground_truth",
        timestamp: float | None = None,
    ) -> str:
        """Queue a true outcome (``actual``), a ``flag`` (incorrect, unexpected, harmful, ok), or
        both, for a logged prediction; returns the feedback's id. Sent again (after an outage),
        feedback with the same id is stored once by the HTTP endpoint. Never sampled; dropped
        (and counted) only if the queue is full."""
        if actual is None and flag is None:
            raise ValueError("feedback needs actual (the true outcome), flag, or both")
        if not self._takes_feedback:
            raise ValueError(
                "an http(s) destination sends feedback to the feedback service: give"
                " feedback_destination (e.g. http://127.0.0.1:8002, or the same URL behind"
                " one gateway)"
            )
        feedback_id = feedback_id or new_id()
        if len(self._queue) >= self.queue_size:
            self._dropped_full += 1
            return feedback_id
        self._queue.append(
            {
                "feedback_id": feedback_id,
                "prediction_id": prediction_id,
                "model_id": model_id,
                "actual": _plain(actual),
                "flag": flag,
                "comment": comment,
                "source": source,
                "timestamp": time.time() if timestamp is None else timestamp,
            }
        )
        return feedback_id

    def stats(self) -> LoggerStats:
        d = self._delivery
        return LoggerStats(
            sent=d.sent,
            queued=len(self._queue) + d.in_flight,
            spooled=d.spooled,
            dropped=d.dropped + self._dropped_full,
            sampled_out=self._sampled_out,
            last_error=d.last_error,
        )

    def monitor(
        self,
        model_id: str,
        model_version: str,
        *,
        features: str | None = None,
        feature_names: list[str] | None = None,
    ) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """Decorate a predict function so each call logs its inputs and outputs.

        The inputs are the argument named ``features`` (default: the first one that is not
        ``self``): a mapping (one prediction), a sequence of mappings, a 2-D array or list of
        rows with ``feature_names``, or a DataFrame (a batch, one prediction per row). A batch's
        output must have one prediction per row. Logging never changes what the function returns.
        """

        def decorate(fn: Callable[P, T]) -> Callable[P, T]:
            signature = inspect.signature(fn)
            names = [n for n in signature.parameters if n not in ("self", "cls")]
            arg = features or names[0]

            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                result = fn(*args, **kwargs)
                try:
                    inputs = signature.bind(*args, **kwargs).arguments[arg]
                    self._log_call(model_id, model_version, inputs, result, feature_names)
                except Exception as exc:  # monitoring must never break the app
                    self._delivery.last_error = f"monitor: {type(exc).__name__}: {exc}"
                return result

            return wrapper

        return decorate

    def _log_call(
        self,
        model_id: str,
        model_version: str,
        inputs: Any,
        outputs: Any,
        feature_names: list[str] | None,
    ) -> None:
        if isinstance(inputs, Mapping):  # one prediction
            rows, predictions = [inputs], [outputs]
        else:
            if hasattr(inputs, "to_dict"):  # a DataFrame
                rows = inputs.to_dict("records")
            elif feature_names is not None:
                rows = [dict(zip(feature_names, row, strict=True)) for row in inputs]
            else:
                rows = list(inputs)
            predictions = outputs.tolist() if hasattr(outputs, "tolist") else list(outputs)
        if len(predictions) != len(rows):
            raise ValueError(f"{len(rows)} input rows but {len(predictions)} predictions")
        for row, prediction in zip(rows, predictions, strict=True):
            self.log(
                model_id, model_version, {k: _plain(v) for k, v in row.items()}, _plain(prediction)
            )


class PredictionLogger(_LoggerBase):
    """Logs predictions (``log``) and their feedback (``feedback``) from any (threaded or not)
    app; delivery runs in a background thread.

    ``destination`` is ``kafka://host:9092`` (straight to Kafka) or ``http://host:8001`` (the
    prediction logger; feedback then goes to ``feedback_destination``, e.g.
    ``http://host:8002``). Pending events are delivered by ``flush()``, ``close()`` and at exit.

    For a secured Kafka pass ``security_protocol`` (``SASL_PLAINTEXT``, ``SASL_SSL``, ``SSL``),
    ``sasl_mechanism`` (default ``SCRAM-SHA-512``), ``sasl_username``, ``sasl_password`` and
    ``ssl_cafile``; each one not given comes from ``VIGIL_KAFKA_SECURITY_PROTOCOL``,
    ``VIGIL_KAFKA_SASL_MECHANISM``, ``..._SASL_USERNAME``, ``..._SASL_PASSWORD``,
    ``VIGIL_KAFKA_SSL_CAFILE``. Inconsistent ones raise ``ValueError`` here; credentials Kafka
    refuses show in ``stats().last_error`` while the events wait in the spool.
    """

    def __init__(self, destination: str, **options: Any) -> None:
        super().__init__(destination, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="vigil-sdk", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        self._loop.run_until_complete(self._delivery.run())

    def flush(self, within: float = 30.0) -> bool:
        """Wait until everything logged so far is delivered; False if it could not be in time."""
        deadline = time.monotonic() + within
        while not self._delivery.idle:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(0.01)
        return True

    def close(self, within: float = 30.0) -> bool:
        """Deliver what is pending (what cannot be stays in the spool), then stop."""
        delivered = self.flush(within)
        self._delivery.stopping = True
        self._thread.join(within)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        return delivered


class AsyncPredictionLogger(_LoggerBase):
    """The asyncio twin: delivery runs as a task in the app's own event loop.

    ``async with AsyncPredictionLogger("kafka://127.0.0.1:9092") as logger: logger.log(...)``
    """

    def __init__(self, destination: str, **options: Any) -> None:
        super().__init__(destination, **options)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._delivery.run(), name="vigil-sdk")

    async def flush(self, within: float = 30.0) -> bool:
        """Wait until everything logged so far is delivered; False if it could not be in time."""
        deadline = time.monotonic() + within
        while not self._delivery.idle:
            if time.monotonic() > deadline or (self._task is not None and self._task.done()):
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self, within: float = 30.0) -> bool:
        """Deliver what is pending (what cannot be stays in the spool), then stop."""
        delivered = await self.flush(within)
        self._delivery.stopping = True
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._task, within)
        return delivered

    async def __aenter__(self) -> AsyncPredictionLogger:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
