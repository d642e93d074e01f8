"""The hostile corpus ``test_hostile`` runs against a running stack: HTTP requests and Kafka
records, each with what Vigil must do with it.

An HTTP case is one request, sent byte for byte over a socket (no client library tidies its
path, headers or framing), with the statuses allowed and words the answer must contain (it names
the problem). A few are valid requests with unusual values that the documented contract accepts
(an integer beyond Avro's long is stored as a double, a time without a zone is UTC): they list
what must then be stored, exactly once.

A Kafka case is one record for one topic Vigil consumes, with what its consumers must do: write
it to ``vigil.deadletter.v1`` (``letters``: how many consumers of the topic read it), ignore it
and count the reason (the catalog and schema followers), or process it.

Every id is unique to the run (``RUN``), so one run never reads another's events.
"""

from __future__ import annotations

import gzip
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from drift_detector.partials import MICROS, Partial, PartialWindow
from registry.handlers import ModelRegistration, new_version
from vigil.wire import topics
from vigil.wire.avro import register_writer_schema
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent, ModelVersion, PredictionEvent, WindowReport
from vigil.wire.topics import PREDICTIONS

RUN = uuid.uuid4().hex[:8]
MODEL = f"hostile-{RUN}"  # features x (numeric) and c (categorical), reference uploaded
OTHER = f"hostile-{RUN}-other"  # a second registered model, same features
STATE_MODEL = f"hostile-{RUN}-state"  # versions 1-3 registered before the stack starts
VERSION = "1"
ESCAPE = f"escape-{RUN}"  # a file or directory of this name must never appear
MINUTE = 60
# A closed window some minutes back: the valid events that must still reach a report.
WINDOW0 = (int(time.time()) // MINUTE) * MINUTE - 8 * MINUTE
NOW = time.time()
YEAR_2999 = datetime(2999, 1, 1, tzinfo=UTC)

# Limits the stack runs with (lower than the defaults, so that oversized bodies stay quick).
LIMITS = {
    "VIGIL_PREDICTION_LOGGER_MAX_BODY_BYTES": str(4 * 1024 * 1024),
    "VIGIL_REGISTRY_MAX_REFERENCE_BYTES": str(8 * 1024 * 1024),
    "VIGIL_FEEDBACK_MAX_BODY_BYTES": str(4 * 1024 * 1024),
}
LOGGER_LIMIT = 4 * 1024 * 1024
REFERENCE_LIMIT = 8 * 1024 * 1024
FEEDBACK_LIMIT = 4 * 1024 * 1024
REGISTRY_LIMIT = 1024 * 1024  # the registry's default for every other body
ALERTING_LIMIT = 64 * 1024  # the alerting default

Body = bytes | Callable[[], bytes]


def J(value: Any) -> bytes:
    """JSON as Python writes it: NaN and Infinity become those (non-JSON) literals."""
    return json.dumps(value).encode()


# -- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCase:
    name: str
    service: str
    method: str
    target: str | bytes  # path and query, sent as is
    body: Body = b""
    headers: tuple[tuple[str, str | bytes], ...] = ()
    # "length": Content-Length; "chunked": Transfer-Encoding; "none": only ``headers``.
    framing: str = "length"
    expect: frozenset[int] = frozenset({422})
    mentions: tuple[str, ...] = ()  # each must appear in the answer (case-insensitive)
    # Accepted predictions or feedback: prediction_id -> fields the stored record must have.
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)
    xfail: str = ""

    def payload(self) -> bytes:
        return self.body() if callable(self.body) else self.body


def registration(model_id: str, /, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model_id": model_id,
        "version": VERSION,
        "task": "regression",
        "features": [{"name": "x", "type": "numeric"}, {"name": "c", "type": "categorical"}],
        "risk": {"probability": 1, "impact": 1},
        "owner": "hostile-tests",
    }
    body.update(changes)
    return body


def reference_rows(n: int = 1000) -> list[dict[str, Any]]:
    return [{"x": i / n, "c": "a" if i % 2 else "b"} for i in range(n)]


def prediction(pid: str, /, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prediction_id": pid,
        "model_id": MODEL,
        "model_version": VERSION,
        "timestamp": WINDOW0 + 1,
        "features": {"x": 0.5, "c": "a"},
        "prediction": 1.0,
    }
    body.update(changes)
    return body


def feedback(pid: str, /, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"prediction_id": pid, "model_id": MODEL, "actual": 1.0}
    body.update(changes)
    return body


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@cache
def gzip_bomb(inflated: int) -> bytes:
    """``inflated`` zero bytes, gzip-compressed (a thousandth of the size)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz:
        block = b"\0" * (1024 * 1024)
        for _ in range(inflated // len(block)):
            gz.write(block)
    return out.getvalue()


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _good_parquet() -> bytes:
    return parquet(pa.table({"x": [0.1, 0.2, 0.3] * 100, "c": ["a", "b", "a"] * 100}))


HOSTILE_IDS = {
    "empty": "",
    "5000 chars": "a" * 5000,
    "NUL": "a\x00b",
    "CR/LF": "a\r\nb",
    "../": f"../../{ESCAPE}",
    "HTML": "<script>alert(1)</script>",
}
# The same, as path segments: percent-encoded, and raw bytes nobody should send.
PATH_IDS = {
    "empty": "",
    "5000 chars": "a" * 5000,
    "NUL": "a%00b",
    "CR/LF": "a%0D%0Ab",
    "encoded ../": quote(f"../../{ESCAPE}", safe=""),
    "HTML": quote("<script>alert(1)</script>", safe=""),
    "non-UTF-8": "%FF%FEa",
}
IF_MATCH_STALE = '"1-0"'


def _common(service: str, body_path: str, limit: int) -> list[HttpCase]:
    """Framing and routing abuse every service must refuse with a 4xx."""
    return [
        HttpCase(
            f"{service}: declared Content-Length far over the limit",
            service,
            "POST",
            body_path,
            headers=(("Content-Type", "application/json"), ("Content-Length", "1000000000000")),
            framing="none",
            expect=frozenset({413}),
            mentions=("limit",),
        ),
        HttpCase(
            f"{service}: Content-Length not a number",
            service,
            "POST",
            body_path,
            body=b"{}",
            headers=(("Content-Type", "application/json"), ("Content-Length", "12abc")),
            framing="none",
            expect=frozenset({400, 413}),
        ),
        HttpCase(
            f"{service}: negative Content-Length",
            service,
            "POST",
            body_path,
            body=b"{}",
            headers=(("Content-Type", "application/json"), ("Content-Length", "-1")),
            framing="none",
            expect=frozenset({400, 413}),
        ),
        HttpCase(
            f"{service}: undeclared (chunked) body over the limit",
            service,
            "POST",
            body_path,
            body=lambda: b"[" + b"1," * (limit // 2 + 1024) + b"1]",
            headers=(("Content-Type", "application/json"),),
            framing="chunked",
            expect=frozenset({413}),
            mentions=("limit",),
        ),
        HttpCase(
            f"{service}: both Content-Length and chunked (request smuggling)",
            service,
            "POST",
            body_path,
            body=b"0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            headers=(
                ("Content-Type", "application/json"),
                ("Content-Length", "44"),
                ("Transfer-Encoding", "chunked"),
            ),
            framing="none",
            expect=frozenset({400, 413, 422}),
        ),
        HttpCase(
            f"{service}: unknown route with raw ../",
            service,
            "GET",
            f"/v1/../../../../etc/{ESCAPE}",
            expect=frozenset({404}),
        ),
        HttpCase(
            f"{service}: wrong method",
            service,
            "PATCH",
            "/healthz",
            expect=frozenset({405}),
        ),
        HttpCase(
            f"{service}: bogus Content-Encoding",
            service,
            "POST",
            body_path,
            body=b"\x00\x01\x02not a known encoding",
            headers=(("Content-Type", "application/json"), ("Content-Encoding", "x-hostile")),
            expect=frozenset({400, 415, 422}),
        ),
    ]


def registry_cases() -> list[HttpCase]:
    n = iter(range(1000))

    def reg(name: str, expect: int | set[int] = 422, *mentions: str, **changes: Any) -> HttpCase:
        body = J(registration(f"{MODEL}-r{next(n)}", **changes))
        codes = frozenset({expect} if isinstance(expect, int) else expect)
        return HttpCase(
            f"registry: {name}",
            "registry",
            "POST",
            "/v1/models",
            body,
            (("Content-Type", "application/json"),),
            expect=codes,
            mentions=mentions,
        )

    def raw(
        name: str,
        body: Body,
        expect: set[int],
        *mentions: str,
        headers: tuple[tuple[str, str | bytes], ...] = (("Content-Type", "application/json"),),
    ) -> HttpCase:
        return HttpCase(
            f"registry: {name}",
            "registry",
            "POST",
            "/v1/models",
            body,
            headers,
            expect=frozenset(expect),
            mentions=mentions,
        )

    def feature(name: str) -> list[dict[str, str]]:
        return [{"name": name, "type": "numeric"}]

    cases = [
        raw("malformed JSON", b'{"model_id": "x",', {400}, "invalid JSON", "character"),
        raw("empty body", b"", {400, 422}),
        raw("JSON array instead of an object", J([registration(f"{MODEL}-arr")]), {422}),
        raw("JSON null", b"null", {422}),
        raw("missing fields", J({}), {422}, "model_id", "features"),
        raw(
            "non-UTF-8 bytes in a string",
            b'{"model_id": "a\xff\xfe", "version": "1"}',
            {400},
            "not UTF-8",
        ),
        raw(
            "deep nesting (100,000 levels)",
            lambda: b'{"lineage": ' + nested(100_000) + b"}",
            {400},
            "nested too deeply",
        ),
        raw(
            "nesting deeper than the limit (40 levels)",
            J(
                registration(
                    f"{MODEL}-deep",
                    lineage={"training_data": None},
                    business_costs=json.loads(nested(40)),
                )
            ),
            {413, 422},
            "nesting",
        ),
        raw(
            "huge array (150,000 sensitive attributes)",
            J(registration(f"{MODEL}-huge", sensitive_attributes=["a"] * 150_000)),
            {413},
            "limit",
        ),
        raw(
            "text/plain content type",
            J(registration(f"{MODEL}-plain")),
            {415, 422},
            headers=(("Content-Type", "text/plain"),),
        ),
        raw(
            "gzip body the route does not inflate",
            gzip.compress(J(registration(f"{MODEL}-gz"))),
            {400},
            "Content-Encoding 'gzip'",
            headers=(("Content-Type", "application/json"), ("Content-Encoding", "gzip")),
        ),
        reg("model_id of the wrong type", 422, "model_id", model_id=12345),
        *(reg(f"model_id {k}", 422, "model_id", model_id=v) for k, v in HOSTILE_IDS.items()),
        reg("version with a slash", 422, "version", version="1/../2"),
        *(
            reg(f"feature name {k}", 422, "features", features=feature(v))
            for k, v in HOSTILE_IDS.items()
            if k not in ("../", "HTML")
        ),
        reg("unknown feature type", 422, "features", features=[{"name": "x", "type": "blob"}]),
        reg("duplicate feature names", 422, "unique", features=feature("x") * 2),
        reg("no features", 422, "features", features=[]),
        reg("NaN probability", 422, "probability", risk={"probability": float("nan"), "impact": 1}),
        reg("Infinity business cost", 422, "business_costs", business_costs={"fp": float("inf")}),
        raw(
            "number literal beyond a double (1e400)",
            J(registration(f"{MODEL}-1e400", business_costs={"fp": 1.5})).replace(b"1.5", b"1e400"),
            {422},
            "business_costs",
        ),
        reg("probability 2^63", 422, "probability", risk={"probability": 2**63, "impact": 1}),
        reg("window_events 2^64", 422, "window_events", drift={"window_events": 2**64}),
        reg(
            "feature min NaN",
            422,
            "min",
            features=[{"name": "x", "type": "numeric", "min": float("nan")}],
        ),
        reg("extra field", 422, "evil", evil=True),
        reg("owner with NUL", 422, "owner", owner="a\x00b"),
        reg("owner with CR/LF", 422, "owner", owner="a\r\nSet-Cookie: x=1"),
        reg("purpose of 20,000 characters", 422, "purpose", purpose="p" * 20_000),
        reg("unknown task", 422, "task", task="world-domination"),
        reg(
            "feature threshold for an unknown feature",
            422,
            "feature_thresholds",
            drift={"feature_thresholds": {"nope": 0.1}},
        ),
        HttpCase(
            "registry: version already registered",
            "registry",
            "POST",
            "/v1/models",
            J(registration(MODEL)),
            (("Content-Type", "application/json"),),
            expect=frozenset({409}),
            mentions=("already registered",),
        ),
        *_common("registry", "/v1/models", REGISTRY_LIMIT),
    ]
    for label, segment in PATH_IDS.items():
        expect = frozenset({404}) if segment else frozenset({404, 405})
        cases.append(
            HttpCase(
                f"registry: GET a model whose id is {label}",
                "registry",
                "GET",
                f"/v1/models/{segment}/versions/{VERSION}",
                expect=expect,
            )
        )
    cases += [
        HttpCase(
            "registry: GET an unknown model",
            "registry",
            "GET",
            f"/v1/models/{MODEL}-nope",
            expect=frozenset({404}),
            mentions=("not registered",),
        ),
        HttpCase(
            "registry: GET an unknown version",
            "registry",
            "GET",
            f"/v1/models/{MODEL}/versions/nope",
            expect=frozenset({404}),
            mentions=("not registered",),
        ),
        HttpCase(
            "registry: GET a model with raw ../ in the path",
            "registry",
            "GET",
            f"/v1/models/{MODEL}/../../../{ESCAPE}",
            expect=frozenset({404}),
        ),
        HttpCase(
            "registry: GET a model with raw non-UTF-8 bytes in the path",
            "registry",
            "GET",
            b"/v1/models/\xff\xfe",
            expect=frozenset({400, 404}),
        ),
    ]
    return cases


def reference_cases() -> list[HttpCase]:
    path = f"/v1/models/{MODEL}/versions/{VERSION}/reference"
    json_type = (("Content-Type", "application/json"),)
    csv_type = (("Content-Type", "text/csv"),)
    pq_type = (("Content-Type", "application/vnd.apache.parquet"),)

    def up(
        name: str,
        body: Body,
        expect: set[int],
        *mentions: str,
        headers: tuple[tuple[str, str | bytes], ...] = json_type,
        target: str = path,
        framing: str = "length",
    ) -> HttpCase:
        return HttpCase(
            f"reference: {name}",
            "registry",
            "POST",
            target,
            body,
            headers,
            framing,
            frozenset(expect),
            mentions,
        )

    good = J(reference_rows(10))
    return [
        up(
            "unknown model",
            good,
            {404},
            "not registered",
            target=f"/v1/models/{MODEL}-nope/versions/{VERSION}/reference",
        ),
        up(
            "unknown version",
            good,
            {404},
            "not registered",
            target=f"/v1/models/{MODEL}/versions/9/reference",
        ),
        up(
            "encoded ../ as the model id",
            good,
            {404},
            target=f"/v1/models/{PATH_IDS['encoded ../']}/versions/{VERSION}/reference",
        ),
        up("malformed JSON", b"[{", {400, 422}, "json"),
        up("a JSON object, not an array", J({"x": 1}), {422}, "array"),
        up("an empty array", b"[]", {422}, "no rows"),
        up("rows that are not objects", J([1, 2, 3]), {422}, "row"),
        up("values of the wrong type", J([{"x": "high", "c": 1}]), {422}, "features.x"),
        up("an unknown column", J([{"x": 1, "c": "a", "evil": 1}]), {422}, "evil"),
        up("NaN literal", b'[{"x": NaN, "c": "a"}]', {400, 422}),
        up("deep nesting", lambda: nested(100_000), {400, 413, 422}),
        up("ragged CSV", b"x,c\n1,a,extra\n", {422}, "cells", headers=csv_type),
        up("CSV with an unterminated quote", b'x,c\n"1,a\n', {422}, headers=csv_type),
        up("CSV with NUL", b"x,c\n1\x00,a\n", {422}, headers=csv_type),
        up("CSV that is not UTF-8", b"x,c\n1,\xff\xfe\n", {422}, headers=csv_type),
        up("CSV with a header only", b"x,c\n", {422}, "no rows", headers=csv_type),
        up(
            "CSV with a 200 kB cell",
            lambda: b"x,c\n1," + b"a" * 200_000 + b"\n",
            {422},
            headers=csv_type,
        ),
        up("CSV with the wrong header", b"a,b\n1,2\n", {422}, "features", headers=csv_type),
        up(
            "CSV with nan and inf",
            b"x,c\nnan,a\ninf,b\n-inf,a\n1,b\n",
            {422},
            "features.x",
            headers=csv_type,
        ),
        up(
            "Parquet with NaN and infinities",
            lambda: parquet(pa.table({"x": [float("nan"), float("inf"), 1.0], "c": ["a"] * 3})),
            {422},
            "features.x",
            headers=pq_type,
        ),
        up(
            "garbage with Parquet's magic",
            b"PAR1 hostile garbage PAR1",
            {422},
            "parquet",
            headers=pq_type,
        ),
        up("truncated Parquet", lambda: _good_parquet()[:-40], {422}, headers=pq_type),
        up(
            "Parquet with columns of the wrong type",
            lambda: parquet(pa.table({"x": ["a", "b"], "c": [1, 2]})),
            {422},
            "features.x",
            headers=pq_type,
        ),
        up(
            "gzip bomb (64 MiB of zeros)",
            lambda: gzip_bomb(64 * 1024 * 1024),
            {413},
            "limit",
            headers=(*json_type, ("Content-Encoding", "gzip")),
        ),
        up(
            "invalid gzip",
            b"\x1f\x8b\x08\x00 not gzip at all",
            {400},
            "gzip",
            headers=(*json_type, ("Content-Encoding", "gzip")),
        ),
        up(
            "truncated gzip",
            lambda: gzip.compress(good)[:20],
            {400},
            "gzip",
            headers=(*json_type, ("Content-Encoding", "gzip")),
        ),
        up(
            "bogus Content-Encoding on valid rows",
            good,
            {400, 415, 422},
            headers=(*json_type, ("Content-Encoding", "br")),
        ),
        up(
            "declared Content-Length over the limit",
            b"",
            {413},
            "limit",
            headers=(*json_type, ("Content-Length", str(REFERENCE_LIMIT + 1))),
            framing="none",
        ),
        up(
            "chunked body over the limit",
            lambda: b"[" + b"1," * (REFERENCE_LIMIT // 2 + 1024) + b"1]",
            {413},
            "limit",
            framing="chunked",
        ),
        up(
            "stale If-Match",
            good,
            {412},
            "If-Match",
            headers=(*json_type, ("If-Match", IF_MATCH_STALE)),
        ),
        up("weak If-Match", good, {412}, "If-Match", headers=(*json_type, ("If-Match", 'W/"1-1"'))),
        up(
            "If-Match of 5000 characters",
            good,
            {412},
            "If-Match",
            headers=(*json_type, ("If-Match", "x" * 5000)),
        ),
        up(
            "bogus Content-Type on a CSV body",
            b"x,c\n1,a\n",
            {415, 422},
            headers=(("Content-Type", "application/x-hostile"),),
        ),
    ]


def readable_after_cases() -> list[HttpCase]:
    """After the hostile uploads and settings, the model version still reads back."""
    return [
        HttpCase(
            f"registry: GET the model after the hostile {what}",
            "registry",
            "GET",
            path,
            expect=frozenset({200}),
        )
        for what, path in (
            ("uploads", f"/v1/models/{MODEL}"),
            ("settings", f"/v1/models/{MODEL}/versions/{VERSION}"),
        )
    ]


def drift_settings_cases() -> list[HttpCase]:
    path = f"/v1/models/{MODEL}/versions/{VERSION}/drift"
    json_type = (("Content-Type", "application/json"),)

    def put(
        name: str,
        body: Body,
        expect: set[int],
        *mentions: str,
        headers: tuple[tuple[str, str | bytes], ...] = json_type,
        target: str = path,
    ) -> HttpCase:
        return HttpCase(
            f"drift settings: {name}",
            "registry",
            "PUT",
            target,
            body,
            headers,
            expect=frozenset(expect),
            mentions=mentions,
        )

    return [
        put("NaN threshold", J({"threshold": float("nan")}), {422}, "threshold"),
        put("Infinity window", J({"window_seconds": float("inf")}), {422}, "window_seconds"),
        put("window_events 2^63", J({"window_events": 2**63}), {422}, "window_events"),
        put("negative lateness", J({"lateness_seconds": -5}), {422}, "lateness_seconds"),
        put(
            "threshold for an unknown feature",
            J({"feature_thresholds": {"nope": 0.2}}),
            {422},
            "feature_thresholds",
        ),
        put(
            "threshold key with NUL",
            J({"feature_thresholds": {"x\x00": 0.2}}),
            {422},
            "feature_thresholds",
        ),
        put("wrong type", J({"window_seconds": "soon"}), {422}, "window_seconds"),
        put("extra field", J({"evil": 1}), {422}, "evil"),
        put("malformed JSON", b'{"threshold": ', {400}, "invalid JSON"),
        put(
            "deep nesting",
            lambda: b'{"feature_thresholds": ' + nested(100_000) + b"}",
            {400},
            "nested too deeply",
        ),
        put(
            "unknown model",
            J({"threshold": 0.3}),
            {404},
            "not registered",
            target=f"/v1/models/{MODEL}-nope/versions/{VERSION}/drift",
        ),
        put(
            "stale If-Match",
            J({"threshold": 0.3}),
            {412},
            "If-Match",
            headers=(*json_type, ("If-Match", IF_MATCH_STALE)),
        ),
    ]


def prediction_cases() -> list[HttpCase]:
    n = iter(range(1000))
    json_type = (("Content-Type", "application/json"),)

    def pid() -> str:
        return f"{MODEL}-p{next(n)}"

    def post(
        name: str,
        body: Body,
        expect: set[int],
        *mentions: str,
        headers: tuple[tuple[str, str | bytes], ...] = json_type,
        stores: dict[str, dict[str, Any]] | None = None,
        target: str = "/v1/predictions",
        framing: str = "length",
    ) -> HttpCase:
        return HttpCase(
            f"predictions: {name}",
            "prediction_logger",
            "POST",
            target,
            body,
            headers,
            framing,
            frozenset(expect),
            mentions,
            stores or {},
        )

    def one(name: str, expect: set[int], *mentions: str, **changes: Any) -> HttpCase:
        return post(name, J(prediction(pid(), **changes)), expect, *mentions)

    big, big_label, naive, dup = pid(), pid(), pid(), pid()
    naive_time = datetime.fromtimestamp(WINDOW0 + 2, UTC)
    html = pid()
    cases = [
        post("malformed JSON", b'{"model_id": ', {400}, "json"),
        post("empty body", b"", {400}),
        post("empty array", b"[]", {400}, "at least one item"),
        post("JSON null", b"null", {422}, "object"),
        post("a JSON string", b'"hello"', {422}, "object"),
        post(
            "non-UTF-8 bytes in a string",
            J(prediction(pid())).replace(b'"a"', b'"\xff\xfe"'),
            {400},
        ),
        post("NaN literal score", J(prediction(pid(), score=float("nan"))), {400}),
        post(
            "Infinity literal feature",
            J(prediction(pid(), features={"x": float("inf"), "c": "a"})),
            {400},
        ),
        post(
            "deep nesting in a feature",
            lambda: J(prediction(pid())).replace(b'"x": 0.5', b'"x": ' + nested(100_000)),
            {400, 413, 422},
        ),
        post(
            "10,001 events (over the batch limit)",
            lambda: J([prediction(f"{MODEL}-many-{i}") for i in range(10_001)]),
            {413},
            "limit",
        ),
        post("huge array of numbers", lambda: b"[" + b"1," * 200_000 + b"1]", {413}),
        post(
            "one event over the encoded-size limit",
            J(prediction(pid(), features={"x": 1.0, "c": "c" * 300_000})),
            {413},
            "bytes",
        ),
        post(
            "gzip bomb (64 MiB of zeros)",
            lambda: gzip_bomb(64 * 1024 * 1024),
            {413},
            "limit",
            headers=(*json_type, ("Content-Encoding", "gzip")),
        ),
        post(
            "invalid gzip",
            b"\x1f\x8b\x08\x00garbage",
            {400},
            "gzip",
            headers=(*json_type, ("Content-Encoding", "gzip")),
        ),
        post(
            "gzip declared, body plain",
            J(prediction(pid())),
            {400},
            "gzip",
            headers=(*json_type, ("Content-Encoding", "gzip")),
        ),
        post(
            "bogus Content-Encoding on a valid event",
            J(prediction(pid())),
            {400, 415},
            headers=(*json_type, ("Content-Encoding", "br")),
        ),
        post(
            "NDJSON with a broken line",
            J(prediction(pid())) + b"\n{broken\n",
            {400},
            "line 2",
            headers=(("Content-Type", "application/x-ndjson"),),
        ),
        post(
            "?partial=maybe",
            J(prediction(pid())),
            {422},
            "partial",
            target="/v1/predictions?partial=maybe",
        ),
        one("missing model_id", {422}, "model_id", model_id=None),
        post(
            "missing features",
            J({k: v for k, v in prediction(pid()).items() if k != "features"}),
            {422},
            "features",
        ),
        one("features of the wrong type", {422}, "features.x", features={"x": "high", "c": "a"}),
        one("features a list", {422}, "features", features=[1, 2]),
        one("unknown feature", {422}, "features.evil", features={"x": 1, "c": "a", "evil": 1}),
        one("missing feature", {422}, "features.c", features={"x": 1}),
        one("score a string", {422}, "score", score="high"),
        one("sample_rate 0", {422}, "sample_rate", sample_rate=0),
        one("sample_rate 5", {422}, "sample_rate", sample_rate=5),
        one("tag value of 2,000 characters", {422}, "tags", tags={"segment": "s" * 2000}),
        one("tag key with CR/LF", {422}, "tags", tags={"a\r\nb": "x"}),
        one("tag value with NUL", {422}, "tags", tags={"segment": "a\x00b"}),
        one("timestamp in year 1", {422}, "timestamp", timestamp="0001-01-01T00:00:00Z"),
        one("timestamp in year 2999", {422}, "timestamp", timestamp="2999-01-01T00:00:00Z"),
        one("timestamp an hour ahead", {422}, "timestamp", timestamp=NOW + 3600),
        one("timestamp not a time", {422}, "timestamp", timestamp="yesterday"),
        one("timestamp 2^63", {422}, "timestamp", timestamp=2**63),
        one("unknown model", {404}, "model_version", model_id=f"{MODEL}-nope"),
        one("unknown version", {404}, "model_version", model_version="9"),
        one("prediction an object", {422}, "prediction", prediction={"label": 1}),
        *(
            post(f"prediction_id {k}", J(prediction(v)), {422}, "prediction_id")
            for k, v in HOSTILE_IDS.items()
        ),
        *(
            one(f"model_id {k}", {404, 422}, "model_id", model_id=v)
            for k, v in HOSTILE_IDS.items()
            if k in ("NUL", "../", "5000 chars")
        ),
        *(
            one(f"feature name {k}", {422}, "features", features={"x": 1, "c": "a", v: 1})
            for k, v in HOSTILE_IDS.items()
            if k in ("empty", "NUL", "5000 chars")
        ),
        # Valid by the contract: stored as documented, exactly once.
        post(
            "integer 2^63 feature value (stored as a double)",
            J(prediction(big, features={"x": 2**63, "c": "a"})),
            {200},
            stores={big: {"features": {"x": float(2**63), "c": "a"}}},
        ),
        post(
            "integer 2^64 prediction (stored as a double)",
            J(prediction(big_label, prediction=2**64)),
            {200},
            stores={big_label: {"prediction": float(2**64)}},
        ),
        post(
            "timestamp without a timezone (UTC)",
            J(prediction(naive, timestamp=naive_time.replace(tzinfo=None).isoformat())),
            {200},
            stores={naive: {"timestamp": naive_time}},
        ),
        post(
            "the same prediction_id twice in one batch",
            J([prediction(dup), prediction(dup, features={"x": 0.9, "c": "b"})]),
            {200},
            "duplicates",
            stores={dup: {"features": {"x": 0.5, "c": "a"}}},
        ),
        post(
            "a prediction_id already stored, sent again",
            J(prediction(dup, features={"x": 0.7, "c": "b"})),
            {200},
            "duplicates",
            stores={dup: {"features": {"x": 0.5, "c": "a"}}},
        ),
        post(
            "HTML as a categorical value (data, stored as sent)",
            J(prediction(html, features={"x": 0.5, "c": "<img src=x onerror=alert(1)>"})),
            {200},
            stores={html: {"features": {"x": 0.5, "c": "<img src=x onerror=alert(1)>"}}},
        ),
        *_common("prediction_logger", "/v1/predictions", LOGGER_LIMIT),
    ]
    return cases


def feedback_cases() -> list[HttpCase]:
    n = iter(range(1000))
    json_type = (("Content-Type", "application/json"),)

    def pid() -> str:
        return f"{MODEL}-f{next(n)}"

    def post(
        name: str,
        body: Body,
        expect: set[int],
        *mentions: str,
        headers: tuple[tuple[str, str | bytes], ...] = json_type,
        stores: dict[str, dict[str, Any]] | None = None,
        target: str = "/v1/feedback",
    ) -> HttpCase:
        return HttpCase(
            f"feedback: {name}",
            "feedback",
            "POST",
            target,
            body,
            headers,
            "length",
            frozenset(expect),
            mentions,
            stores or {},
        )

    def one(name: str, expect: set[int], *mentions: str, **changes: Any) -> HttpCase:
        return post(name, J(feedback(pid(), **changes)), expect, *mentions)

    big, naive = pid(), pid()
    naive_time = datetime.fromtimestamp(WINDOW0 + 5, UTC)
    lines, zipped, twice, resent, kept = pid(), pid(), pid(), pid(), pid()
    ndjson = (("Content-Type", "application/x-ndjson"),)
    gzipped = (*ndjson, ("Content-Encoding", "gzip"))
    repeated = J([feedback(twice, actual=2.0, feedback_id=f"{twice}-f")] * 2)
    return [
        post("malformed JSON", b'{"prediction_id"', {400}, "json"),
        post("empty array", b"[]", {400}, "at least one item"),
        post("NaN literal", J(feedback(pid(), actual=float("nan"))), {400}),
        post("deep nesting", lambda: b'{"actual": ' + nested(100_000) + b"}", {400, 413, 422}),
        post(
            "10,001 items",
            lambda: J([feedback(f"{MODEL}-fb-{i}") for i in range(10_001)]),
            {413},
            "limit",
        ),
        post(
            "gzip bomb (64 MiB of zeros)",
            lambda: gzip_bomb(64 * 1024 * 1024),
            {413},
            "limit",
            headers=(*json_type, ("Content-Encoding", "gzip")),
        ),
        post(
            "invalid gzip",
            b"\x1f\x8b\x08\x00garbage",
            {400},
            "gzip",
            headers=(*json_type, ("Content-Encoding", "gzip")),
        ),
        one("neither actual nor flag", {422}, "actual", actual=None),
        one("unknown flag", {422}, "flag", flag="bogus"),
        one("comment of 20,000 characters", {422}, "comment", comment="c" * 20_000),
        one("comment with NUL", {422}, "comment", comment="a\x00b"),
        one("reviewer with CR/LF", {422}, "reviewer", reviewer="ana\r\nbob"),
        one("timestamp in year 1", {422}, "timestamp", timestamp="0001-01-01T00:00:00Z"),
        one("timestamp in year 2999", {422}, "timestamp", timestamp="2999-01-01T00:00:00Z"),
        one("actual an object", {422}, "actual", actual={"a": 1}),
        one("extra field", {422}, "evil", evil=1),
        one("unknown source", {422}, "source", source="oracle"),
        *(
            post(f"prediction_id {k}", J(feedback(v)), {422}, "prediction_id")
            for k, v in HOSTILE_IDS.items()
        ),
        one("feedback_id ../", {422}, "feedback_id", feedback_id=f"../{ESCAPE}"),
        post(
            "integer 2^64 actual (stored as a double)",
            J(feedback(big, actual=2**64)),
            {200},
            stores={big: {"actual": float(2**64)}},
        ),
        post(
            "timestamp without a timezone (UTC)",
            J(feedback(naive, timestamp=naive_time.replace(tzinfo=None).isoformat())),
            {200},
            stores={naive: {"timestamp": naive_time}},
        ),
        post(
            "NDJSON body",
            J(feedback(lines, actual=3.0)) + b"\n" + J(feedback(lines, flag="ok")) + b"\n",
            {200},
            headers=ndjson,
            stores={lines: {"model_id": MODEL}},
        ),
        post(
            "gzip NDJSON body",
            gzip.compress(J(feedback(zipped, actual=4.5)) + b"\n"),
            {200},
            headers=gzipped,
            stores={zipped: {"actual": 4.5}},
        ),
        post(
            "one feedback_id twice in a batch (stored once)",
            repeated,
            {200},
            stores={twice: {"feedback_id": f"{twice}-f"}},
        ),
        *(
            post(
                f"a feedback_id resent ({n}: stored once)",
                J(feedback(resent, actual=5.0, feedback_id=f"{resent}-f")),
                {200},
                stores={resent: {"feedback_id": f"{resent}-f"}},
            )
            for n in ("first", "again")
        ),
        one("text actual for a regression model", {422}, "actual", "number", actual="12.5"),
        one("boolean actual for a regression model", {422}, "actual", "number", actual=True),
        one("an unknown model", {422}, "model_id", "registered", model_id=f"{MODEL}-nope"),
        post(
            "partial: the valid item stored, the invalid one listed",
            J([feedback(kept, actual=6.0), feedback(pid(), actual="six")]),
            {200},
            stores={kept: {"actual": 6.0}},
            target="/v1/feedback?partial=true",
        ),
        *_common("feedback", "/v1/feedback", FEEDBACK_LIMIT),
    ]


def alerting_cases() -> list[HttpCase]:
    json_type = (("Content-Type", "application/json"),)

    def sub(**changes: Any) -> dict[str, Any]:
        body = {
            "name": "hostile",
            "channel": "webhook",
            "url": "http://127.0.0.1:9/hook",
            "models": [f"{MODEL}-sub"],
        }
        body.update(changes)
        return body

    def post(name: str, body: Body, expect: set[int], *mentions: str, xfail: str = "") -> HttpCase:
        return HttpCase(
            f"alerting: {name}",
            "alerting",
            "POST",
            "/v1/subscriptions",
            body,
            json_type,
            expect=frozenset(expect),
            mentions=mentions,
            xfail=xfail,
        )

    def get(name: str, target: str, expect: set[int], *mentions: str) -> HttpCase:
        return HttpCase(
            f"alerting: {name}",
            "alerting",
            "GET",
            target,
            expect=frozenset(expect),
            mentions=mentions,
        )

    return [
        post("malformed JSON", b'{"name": ', {400}, "invalid JSON"),
        post("missing fields", J({}), {422}, "channel"),
        post("javascript: URL", J(sub(url="javascript:alert(1)")), {422}, "url"),
        post("file: URL", J(sub(url=f"file:///etc/{ESCAPE}")), {422}, "url"),
        post("unknown channel", J(sub(channel="carrier-pigeon")), {422}, "channel"),
        post("no models", J(sub(models=[])), {422}, "models"),
        post("name of 5000 characters", J(sub(name="n" * 5000)), {422}, "name"),
        post("unknown severity", J(sub(min_severity="apocalyptic")), {422}, "min_severity"),
        post("deep nesting", lambda: b'{"models": ' + nested(100_000) + b"}", {400, 413, 422}),
        post("nesting deeper than the limit", J(sub(models=json.loads(nested(40)))), {413, 422}),
        post("body over 64 KiB", J(sub(models=["m" * 100] * 1000)), {413}, "limit"),
        post(
            "name with NUL",
            J(sub(name="a\x00b")),
            {422},
            "name",
        ),
        post(
            "name with CR/LF",
            J(sub(name="a\r\nb")),
            {422},
            "name",
        ),
        *(
            post(
                f"model id {k}",
                J(sub(models=[v])),
                {422},
                "models",
            )
            for k, v in HOSTILE_IDS.items()
        ),
        get("limit 0", "/v1/alerts?limit=0", {422}, "limit"),
        get("limit 2^63", f"/v1/alerts?limit={2**63}", {422}, "limit"),
        get("cursor -1", "/v1/alerts?cursor=-1", {422}, "cursor"),
        get("cursor not a number", "/v1/alerts?cursor=abc", {422}, "cursor"),
        get("unknown status", "/v1/alerts?status=panicking", {422}, "status"),
        get("model_id filter with NUL and non-UTF-8", "/v1/alerts?model_id=a%00%FF", {200}),
        HttpCase(
            "alerting: DELETE an unknown subscription",
            "alerting",
            "DELETE",
            f"/v1/subscriptions/{MODEL}-nope",
            expect=frozenset({404}),
            mentions=("no subscription",),
        ),
        HttpCase(
            "alerting: DELETE a subscription id with encoded ../",
            "alerting",
            "DELETE",
            f"/v1/subscriptions/{PATH_IDS['encoded ../']}",
            expect=frozenset({404}),
        ),
        HttpCase(
            "alerting: DELETE a subscription id with non-UTF-8",
            "alerting",
            "DELETE",
            "/v1/subscriptions/%FF%FE",
            expect=frozenset({404}),
        ),
        *_common("alerting", "/v1/subscriptions", ALERTING_LIMIT),
    ]


def drift_detector_cases() -> list[HttpCase]:
    return [
        HttpCase(
            "drift_detector: POST to a read-only route",
            "drift_detector",
            "POST",
            "/v1/status",
            J({}),
            (("Content-Type", "application/json"),),
            expect=frozenset({405}),
        ),
        HttpCase(
            "drift_detector: status with raw ../",
            "drift_detector",
            "GET",
            f"/v1/status/../../{ESCAPE}",
            expect=frozenset({404}),
        ),
        HttpCase(
            "drift_detector: NUL in the path",
            "drift_detector",
            "GET",
            "/v1/st%00atus",
            expect=frozenset({404}),
        ),
        HttpCase(
            "drift_detector: declared Content-Length far over the limit",
            "drift_detector",
            "POST",
            "/v1/status",
            headers=(("Content-Length", "1000000000000"),),
            framing="none",
            expect=frozenset({413}),
        ),
    ]


def http_cases() -> list[HttpCase]:
    return [
        *registry_cases(),
        *reference_cases(),
        *drift_settings_cases(),
        *readable_after_cases(),
        *prediction_cases(),
        *feedback_cases(),
        *alerting_cases(),
        *drift_detector_cases(),
    ]


# -- Kafka -----------------------------------------------------------------------------------

PREDICTION_CODEC = Codec(PredictionEvent)
REPORT_CODEC = Codec(WindowReport)
VERSION_CODEC = Codec(ModelVersion)


@dataclass(frozen=True)
class KafkaCase:
    """One record for a topic Vigil consumes, and what must become of it.

    ``outcome``: ``dead_letter`` (``letters`` dead letters of it, one per consumer, each with
    ``reason`` in its ``vigil.reason`` header); ``ignored`` (the followers count ``reason``);
    ``processed`` (``check`` names what shows it: ``archived``, ``alert``, ``registered``);
    ``survived`` (anything but a crash: dead-lettered or processed).
    """

    name: str
    topic: str  # predictions | partials | state | metrics | models | schemas
    key: bytes | None
    value: bytes | None
    outcome: str = "dead_letter"
    letters: int = 1
    reason: str = ""
    check: str = ""
    xfail: str = ""


def _truncated(value: bytes) -> bytes:
    return value[: 10 + (len(value) - 10) // 2]


def _unknown_fingerprint(value: bytes) -> bytes:
    return value[:2] + b"\x13\x37" * 4 + value[10:]


def _binary(tag: str) -> bytes:
    return b"\xff\xfe\x00" + f"{tag}-{RUN}".encode()


def event_record(pid: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "prediction_id": pid,
        "model_id": MODEL,
        "model_version": VERSION,
        "timestamp": datetime.fromtimestamp(WINDOW0 + 3, UTC),
        "features": {"x": 0.5, "c": "a"},
        "prediction": 1.0,
        "score": None,
        "tags": {},
        "sample_rate": None,
    }
    record.update(changes)
    return record


def avro_event(pid: str, **changes: Any) -> bytes:
    return PREDICTION_CODEC.encode_dict(event_record(pid, **changes))


def json_event(pid: str, **changes: Any) -> bytes:
    record = event_record(pid, **changes)
    record["timestamp"] = record["timestamp"].isoformat()
    return json.dumps(record).encode()


def prediction_kafka_cases() -> list[KafkaCase]:
    both, decoded = 2, "archived"  # the drift profiler and the archive read the topic

    def k(tag: str) -> bytes:
        return f"{MODEL}-k-{tag}".encode()

    good = avro_event("k-good")
    feedback = Codec(FeedbackEvent).encode(
        FeedbackEvent(feedback_id="f", prediction_id="p", actual=1.0, timestamp=datetime.now(UTC))
    )
    return [
        KafkaCase(
            "garbage bytes",
            "predictions",
            k("garbage"),
            b"\x17hostile garbage",
            letters=both,
            reason="unknown encoding",
        ),
        KafkaCase(
            "garbage starting with a Confluent zero byte",
            "predictions",
            k("confluent"),
            b"\x00\x00\x00\x00\x07garbage",
            letters=both,
            reason="schema registry",
        ),
        KafkaCase("empty value", "predictions", k("empty"), b"", letters=both, reason="empty"),
        KafkaCase(
            "tombstone with a binary key",
            "predictions",
            _binary("p-tomb"),
            None,
            letters=both,
            reason="empty",
        ),
        KafkaCase(
            "truncated Avro",
            "predictions",
            k("truncated"),
            _truncated(good),
            letters=both,
            reason="corrupt",
        ),
        KafkaCase(
            "unknown schema fingerprint",
            "predictions",
            k("fingerprint"),
            _unknown_fingerprint(good),
            letters=both,
            reason="fingerprint",
        ),
        KafkaCase(
            "single-object header and no body", "predictions", k("header"), good[:10], letters=both
        ),
        KafkaCase(
            "trailing bytes after the Avro body",
            "predictions",
            k("trailing"),
            good + b"\x00\x01\x02",
            letters=both,
            reason="trailing",
        ),
        KafkaCase(
            "another record type's schema (FeedbackEvent)",
            "predictions",
            k("feedback"),
            feedback,
            letters=both,
        ),
        KafkaCase(
            "invalid JSON",
            "predictions",
            k("json"),
            b'{"prediction_id": ',
            letters=both,
            reason="JSON",
        ),
        KafkaCase("JSON array", "predictions", k("array"), b"[1, 2, 3]", letters=both),
        KafkaCase(
            "JSON nested 100,000 deep",
            "predictions",
            k("deep"),
            b'{"features": ' + nested(100_000) + b"}",
            letters=both,
        ),
        KafkaCase(
            "JSON with features a list",
            "predictions",
            k("types"),
            json_event("k-types", features=[1, 2]),
            letters=both,
        ),
        KafkaCase(
            "JSON missing fields",
            "predictions",
            k("missing"),
            b'{"prediction_id": "x"}',
            letters=both,
        ),
        KafkaCase(
            "JSON with non-UTF-8 bytes",
            "predictions",
            k("utf8"),
            json_event("k-utf8").replace(b'"a"', b'"\xff\xfe"'),
            letters=both,
        ),
        KafkaCase(
            "Avro event from year 2999",
            "predictions",
            k("future"),
            avro_event("k-future", timestamp=YEAR_2999),
            letters=1,
            reason="ahead of the worker's clock",
            check=decoded,
        ),
        KafkaCase(
            "Avro event with a ../ model id (unregistered)",
            "predictions",
            k("escape"),
            avro_event("k-escape", model_id=f"../../../../{ESCAPE}"),
            letters=1,
            reason="not registered",
            check=decoded,
        ),
        KafkaCase(
            "Avro event with a 5000-character model id",
            "predictions",
            k("long"),
            avro_event("k-long", model_id="m" * 5000),
            letters=1,
            reason="not registered",
            check=decoded,
        ),
        KafkaCase(
            "Avro event with NUL and / in the model id",
            "predictions",
            k("nul"),
            avro_event("k-nul", model_id=f"a\x00/{ESCAPE}"),
            letters=1,
            reason="not registered",
            check=decoded,
        ),
        KafkaCase(
            "Avro event with NUL and CR/LF in its prediction_id",
            "predictions",
            k("pid"),
            avro_event("k-pid\x00\r\n"),
            outcome="processed",
            check=decoded,
        ),
        KafkaCase(
            "Avro event with NaN score and an infinite feature",
            "predictions",
            k("nan"),
            avro_event("k-nan", score=float("nan"), features={"x": float("inf"), "c": "a"}),
            outcome="survived",
        ),
        KafkaCase(
            "Avro event from year 1",
            "predictions",
            k("year1"),
            avro_event("k-year1", timestamp=datetime(1, 1, 1, tzinfo=UTC)),
            outcome="survived",
        ),
        KafkaCase(
            "JSON event with a 2^70 feature value",
            "predictions",
            k("bigint"),
            json_event("k-bigint", features={"x": 2**70, "c": "a"}),
            outcome="survived",
        ),
        KafkaCase(
            "Avro event whose key is not its prediction_id",
            "predictions",
            k("mismatch"),
            avro_event("k-mismatch-content"),
            outcome="processed",
            check=decoded,
        ),
        KafkaCase(
            "Avro event of 900 kB",
            "predictions",
            k("large"),
            avro_event("k-large", features={"x": 0.5, "c": "c" * 900_000}),
            outcome="survived",
        ),
        KafkaCase(
            "Avro of an incompatible writer schema registered as PredictionEvent",
            "predictions",
            k("incompatible"),
            b"\xc3\x01" + INCOMPATIBLE_FINGERPRINT + b"\x02\x04ab",
            letters=both,
        ),
    ]


def _schema_json(name: str, fields: list[dict[str, Any]]) -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "vigil", "fields": fields})


# A schema named like the predictions' record, with nothing in common: registering it is
# allowed (the schema topic is open to every producer), decoding with it must fail cleanly.
INCOMPATIBLE_SCHEMA = _schema_json(
    "PredictionEvent", [{"name": "evil", "type": "int"}, {"name": "more", "type": "string"}]
)


INCOMPATIBLE_FINGERPRINT = register_writer_schema(INCOMPATIBLE_SCHEMA).fingerprint


def schema_kafka_cases() -> list[KafkaCase]:
    valid = _schema_json(f"Hostile{RUN}", [{"name": "a", "type": "int"}])
    return [
        KafkaCase(
            "a PredictionEvent-named schema keyed by its fingerprint",
            "schemas",
            INCOMPATIBLE_FINGERPRINT.hex().encode(),
            INCOMPATIBLE_SCHEMA.encode(),
            outcome="processed",
        ),
        KafkaCase(
            "garbage bytes",
            "schemas",
            f"{RUN}-garbage".encode(),
            b"\xff\xfe\x00",
            outcome="ignored",
            reason="invalid_schema",
        ),
        KafkaCase(
            "JSON that is not a schema",
            "schemas",
            f"{RUN}-nonsense".encode(),
            b'{"type": "nonsense"}',
            outcome="ignored",
            reason="invalid_schema",
        ),
        KafkaCase(
            "schema nested 100,000 deep",
            "schemas",
            f"{RUN}-deep".encode(),
            nested(100_000),
            outcome="ignored",
            reason="invalid_schema",
        ),
        KafkaCase(
            "a valid schema keyed by another fingerprint",
            "schemas",
            f"{RUN}-mismatch".encode(),
            valid.encode(),
            outcome="ignored",
            reason="key_mismatch",
        ),
        KafkaCase(
            "tombstone with a binary key", "schemas", _binary("s-tomb"), None, outcome="survived"
        ),
    ]


def registered_version(model_id: str, version: str = VERSION) -> ModelVersion:
    registration_ = ModelRegistration.model_validate(registration(model_id, version=version))
    return new_version(registration_, datetime.now(UTC))


def model_kafka_cases() -> list[KafkaCase]:
    good = registered_version(f"{MODEL}-km")
    encoded = VERSION_CODEC.encode(good)
    absurd = registered_version(f"{MODEL}-absurd").model_copy(
        update={"created_at": YEAR_2999, "business_costs": {"fp": 1e308}}
    )
    bad_id = registered_version(f"{MODEL}-badid").model_dump(mode="json")
    bad_id["model_id"] = f"../../{ESCAPE}"

    def key(tag: str) -> bytes:
        return f"{MODEL}-{tag}/{VERSION}".encode()

    return [
        KafkaCase(
            "garbage bytes",
            "models",
            key("garbage"),
            b"\x17 garbage",
            outcome="ignored",
            reason="undecodable",
        ),
        KafkaCase(
            "empty value", "models", key("empty"), b"", outcome="ignored", reason="undecodable"
        ),
        KafkaCase(
            "truncated Avro",
            "models",
            key("truncated"),
            _truncated(encoded),
            outcome="ignored",
            reason="undecodable",
        ),
        KafkaCase(
            "unknown schema fingerprint",
            "models",
            key("fingerprint"),
            _unknown_fingerprint(encoded),
            outcome="ignored",
            reason="undecodable",
        ),
        KafkaCase(
            "JSON with a ../ model id",
            "models",
            key("badid"),
            json.dumps(bad_id).encode(),
            outcome="ignored",
            reason="undecodable",
        ),
        KafkaCase(
            "JSON nested 100,000 deep",
            "models",
            key("deep"),
            b'{"model_id": ' + nested(100_000) + b"}",
            outcome="ignored",
            reason="undecodable",
        ),
        KafkaCase(
            "a valid version under another key",
            "models",
            key("elsewhere"),
            encoded,
            outcome="ignored",
            reason="key_mismatch",
            check=f"unregistered:{MODEL}-km",
        ),
        KafkaCase(
            "tombstone with a binary key",
            "models",
            _binary("m-tomb"),
            None,
            outcome="ignored",
            reason="key_not_utf8",
        ),
        KafkaCase(
            "a valid version with a binary key",
            "models",
            _binary("m-key"),
            encoded,
            outcome="ignored",
            reason="key_not_utf8",
        ),
        KafkaCase(
            "a valid version with absurd values",
            "models",
            absurd.key.encode(),
            VERSION_CODEC.encode(absurd),
            outcome="processed",
            check=f"registered:{MODEL}-absurd",
        ),
    ]


def report(model_id: str, drifted: bool = True, minute: int = 0) -> WindowReport:
    from tests.samples import report_at

    return report_at(model_id, minute, drifted)


def metrics_kafka_cases() -> list[KafkaCase]:
    fired = report(f"{MODEL}-report")
    encoded = REPORT_CODEC.encode(fired)
    naive = fired.model_copy(
        update={"model_id": f"{MODEL}-naive", "report_id": f"{MODEL}-naive/1"}
    ).model_dump(mode="json")
    for name in ("window_start", "window_end", "created_at"):
        naive[name] = naive[name].replace("+00:00", "").removesuffix("Z")
    drifting = report(f"{MODEL}-absurd")
    nan = drifting.features[0].model_copy(update={"statistics": {"psi": float("nan")}})
    absurd = drifting.model_copy(
        update={"event_count": 2**62, "window_start": YEAR_2999, "features": [nan]}
    )
    elsewhere = report(f"{MODEL}-elsewhere")

    def key(tag: str) -> bytes:
        return f"{MODEL}-{tag}/1.0.0".encode()

    return [
        KafkaCase(
            "garbage bytes", "metrics", key("garbage"), b"\x17 garbage", reason="unknown encoding"
        ),
        KafkaCase("empty value", "metrics", key("empty"), b"", reason="empty"),
        KafkaCase(
            "tombstone with a binary key", "metrics", _binary("r-tomb"), None, reason="empty"
        ),
        KafkaCase(
            "truncated Avro", "metrics", key("truncated"), _truncated(encoded), reason="corrupt"
        ),
        KafkaCase(
            "unknown schema fingerprint",
            "metrics",
            key("fingerprint"),
            _unknown_fingerprint(encoded),
            reason="fingerprint",
        ),
        KafkaCase(
            "JSON that is not a report",
            "metrics",
            key("json"),
            b'{"report_id": 1}',
            reason="WindowReport",
        ),
        KafkaCase(
            "JSON nested 100,000 deep",
            "metrics",
            key("deep"),
            b'{"features": ' + nested(100_000) + b"}",
        ),
        KafkaCase(
            "JSON report with times without a zone (UTC)",
            "metrics",
            key("naive"),
            json.dumps(naive).encode(),
            outcome="processed",
            check=f"alert:{MODEL}-naive",
        ),
        KafkaCase(
            "report with NaN, 2^62 events, window in 2999",
            "metrics",
            key("absurd"),
            REPORT_CODEC.encode(absurd),
            outcome="survived",
        ),
        KafkaCase(
            "report under another model's key",
            "metrics",
            key("other"),
            REPORT_CODEC.encode(elsewhere),
            outcome="processed",
            check=f"alert:{MODEL}-elsewhere",
        ),
    ]


def partial_kafka_cases() -> list[KafkaCase]:
    key = f"{MODEL}/{VERSION}".encode()
    now = int(NOW * MICROS)
    real = Partial(MODEL, VERSION, 1, {0: now}, [], None, PREDICTIONS.partitions)
    other = Partial(OTHER, VERSION, 1, {0: now}, [], None, PREDICTIONS.partitions)
    future = Partial(
        MODEL,
        VERSION,
        1,
        {0: int(YEAR_2999.timestamp() * MICROS)},
        [],
        None,
        PREDICTIONS.partitions,
    )
    negative = Partial(
        MODEL,
        VERSION,
        1,
        {0: now},
        [PartialWindow(now, -5, now, now, b"")],
        None,
        PREDICTIONS.partitions,
    )
    junk = Partial(
        MODEL,
        VERSION,
        1,
        {0: now},
        [PartialWindow(WINDOW0 * MICROS, 5, now, now, b"junk profile")],
        None,
        PREDICTIONS.partitions,
    )
    return [
        KafkaCase("garbage bytes", "partials", key, b"\x17 garbage", reason="not a drift partial"),
        KafkaCase("tombstone with a binary key", "partials", _binary("d-tomb"), None),
        KafkaCase("truncated Avro", "partials", key, _truncated(real.to_bytes())),
        KafkaCase(
            "unknown schema fingerprint",
            "partials",
            key,
            _unknown_fingerprint(real.to_bytes()),
            reason="fingerprint",
        ),
        KafkaCase(
            "event-time marks in 2999", "partials", key, future.to_bytes(), reason="in the future"
        ),
        KafkaCase(
            "negative counts", "partials", key, negative.to_bytes(), reason="negative counts"
        ),
        KafkaCase(
            "a window with a garbage profile",
            "partials",
            key,
            junk.to_bytes(),
        ),
        KafkaCase("JSON object", "partials", key, b"{}", reason="not a drift partial"),
        KafkaCase(
            "for an unregistered version",
            "partials",
            f"{MODEL}-nope/1".encode(),
            real.to_bytes(),
            reason="unregistered",
        ),
        KafkaCase(
            "keyed by one version, holding another's",
            "partials",
            key,
            other.to_bytes(),
        ),
    ]


def state_kafka_cases() -> list[KafkaCase]:
    """Changelog records, read when the merger is assigned its partitions (at start-up):
    each key is a registered version (``STATE_MODEL`` 1-3), since only those are restored."""
    partial = Partial(STATE_MODEL, "1", 1, {}).to_bytes()
    return [
        KafkaCase(
            "truncated record",
            "state",
            f"{STATE_MODEL}/1".encode(),
            _truncated(partial),
            reason="not a drift state",
        ),
        KafkaCase(
            "garbage bytes",
            "state",
            f"{STATE_MODEL}/2".encode(),
            b"\x17 garbage",
            reason="not a drift state",
        ),
        KafkaCase(
            "a partial, not a state",
            "state",
            f"{STATE_MODEL}/3".encode(),
            partial,
            reason="not a drift state",
        ),
        KafkaCase(
            "tombstone with a binary key", "state", _binary("st-tomb"), None, outcome="survived"
        ),
    ]


def key_kafka_cases() -> list[KafkaCase]:
    """Poison for the API keys topic (``vigil.keys.v1``), when this tree has one: every API
    service follows it and counts what it ignores."""
    if getattr(topics, "KEYS", None) is None:
        return []
    return [
        KafkaCase(
            "garbage bytes",
            "keys",
            f"{RUN}-garbage".encode(),
            b"\x17 garbage",
            outcome="ignored",
            reason="undecodable",
        ),
        KafkaCase(
            "tombstone with a binary key",
            "keys",
            b"\xff\xfe" + RUN.encode(),
            None,
            outcome="ignored",
            reason="key_not_utf8",
        ),
        KafkaCase(
            "JSON that is not a key",
            "keys",
            f"{RUN}-json".encode(),
            b'{"id": "x", "roles": ["admin"]}',
            outcome="ignored",
            reason="undecodable",
        ),
    ]


def kafka_cases() -> list[KafkaCase]:
    return [
        *state_kafka_cases(),
        *schema_kafka_cases(),
        *model_kafka_cases(),
        *prediction_kafka_cases(),
        *partial_kafka_cases(),
        *metrics_kafka_cases(),
        *key_kafka_cases(),
    ]


def state_versions() -> list[ModelVersion]:
    """The versions the changelog cases are about, published before the stack starts."""
    return [registered_version(STATE_MODEL, v) for v in ("1", "2", "3")]
