"""Every API fuzzed from its OpenAPI: no 5xx, and no status the operation does not document.

schemathesis generates requests (valid and not) for every operation of each service, built on
in-memory fakes; a bounded, derandomised number of examples per operation keeps this quick and
repeatable.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from alerting.api import create_app as alerting_app
from feedback.api import FeedbackLog
from feedback.api import create_app as feedback_app
from prediction_logger.api import PredictionLog
from prediction_logger.api import create_app as prediction_logger_app
from registry.api import Registry
from registry.api import create_app as registry_app
from tests.access import ADMIN, FakeAuditLog, fake_guard
from tests.samples import MODEL
from tests.unit.fakes import FakeAlertStore, FakeBus, FakeCatalog, FakeIdempotencyStore, alerting_on

# VIGIL_FUZZ_EXAMPLES=500 hunts longer; the suite's own runs stay within a few seconds a service.
EXAMPLES_PER_OPERATION = int(os.environ.get("VIGIL_FUZZ_EXAMPLES", "30"))
POSITIVE = GenerationMode.POSITIVE


# Bodies the routes read themselves: generated text or bytes go on the wire as they are.
@schemathesis.serializer("application/x-ndjson", "text/csv", "application/vnd.apache.parquet")
def _as_is(_: Any, value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def _apps() -> dict[str, FastAPI]:
    audited = FakeBus()
    registry = Registry(FakeBus(), FakeCatalog([MODEL]), audit_log=FakeAuditLog(audited))
    return {
        "registry": registry_app(adapters=registry, guard=fake_guard(audit=audited)),
        "prediction_logger": prediction_logger_app(
            adapters=PredictionLog(FakeBus(), FakeCatalog([MODEL]), FakeIdempotencyStore()),
            guard=fake_guard(),
        ),
        "feedback": feedback_app(
            adapters=FeedbackLog(FakeBus(), FakeCatalog([MODEL]), FakeIdempotencyStore()),
            guard=fake_guard(),
        ),
        "alerting": alerting_app(adapters=alerting_on(FakeAlertStore()), guard=fake_guard()),
    }


def _operations() -> list[Any]:
    found = []
    for service, app in _apps().items():
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        for result in schema.get_all_operations():
            operation = result.ok()
            # Only a body or a query can be made invalid: path parameters are any text.
            modes = GenerationMode if operation.body or operation.query else [POSITIVE]
            for mode in modes:
                label = f"{service} {operation.label} {mode.value}"
                found.append(pytest.param(operation, mode, id=label))
    return found


def _registered(cases: Any) -> Any:
    """The same cases, naming the registered model's id and version wherever they name one."""

    def rename(case: Any) -> Any:
        for where in (case.path_parameters, *_items(case.body)):
            if isinstance(where, dict):
                for key, value in (("model_id", MODEL.model_id), ("version", MODEL.version)):
                    if key in where:
                        where[key] = value
                if "model_version" in where:
                    where["model_version"] = MODEL.version
        return case

    return cases.map(rename)


def _items(body: Any) -> list[Any]:
    return body if isinstance(body, list) else [body]


@pytest.mark.parametrize(("operation", "mode"), _operations())
def test_no_operation_answers_5xx_or_an_undocumented_status(
    operation: Any, mode: GenerationMode
) -> None:
    """Generated requests, valid and invalid, get only answers the operation documents."""
    # Every media type a body may have (JSON, NDJSON, CSV, Parquet) gets its share.
    media_types = [body.media_type for body in operation.body] or [None]
    cases = st.one_of(
        *(operation.as_strategy(mode, media_type=m) for m in media_types),
        # As many again about the registered model, so its checks and parsers are reached too.
        *(_registered(operation.as_strategy(mode, media_type=m)) for m in media_types),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, headers=ADMIN)

    fuzz()
