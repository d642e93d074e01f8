"""The batch decoder gives exactly what decoding message by message gives, or the same failure.

Random events are written by the codec, by fastavro and by a hand-written writer that splits
maps into several blocks (negative counts with byte sizes, non-minimal varints), mixed with
JSON, Confluent-framed and older-schema messages, truncated, corrupted and garbage ones.
"""

from __future__ import annotations

import io
import random
import re
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from vigil.adapters.schema_registry import SchemaRegistryClient
from vigil.wire.avro import AvroSchema, avro_schema
from vigil.wire.batchdecode import Decoded, decode_predictions, reader, strings
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.columns import Column, column_from_values
from vigil.wire.records import PredictionEvent

SCHEMA = avro_schema("PredictionEvent")
HEADER = b"\xc3\x01" + SCHEMA.fingerprint
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MICROS = 253_402_300_799_999_999
MIN_MICROS = -62_135_596_800_000_000

# -- what decoding message by message gives ------------------------------------------------


def _micros(ts: datetime) -> int:
    return (ts.replace(tzinfo=ts.tzinfo or UTC) - EPOCH) // timedelta(microseconds=1)


Cell = tuple[int, int, str | None]


def _cells(column: Column) -> list[Cell]:
    """(kind, bits of the number, string) of each row: equality down to NaN payloads."""
    bits = column.numbers.view(np.int64).tolist()
    return [
        (k, b, column.vocab[c] if c >= 0 else None)
        for k, b, c in zip(column.kinds.tolist(), bits, column.codes.tolist(), strict=True)
    ]


def _check_column(column: Column, expected: Column) -> None:
    n = len(expected)
    assert column.kinds.dtype == np.int8 and column.kinds.shape == (n,)
    assert column.numbers.dtype == np.float64 and column.numbers.shape == (n,)
    assert column.codes.dtype == np.int32 and column.codes.shape == (n,)
    assert _cells(column) == _cells(expected)
    # A compact vocabulary: every string in it is used, once.
    assert len(set(column.vocab)) == len(column.vocab)
    assert set(column.codes[column.codes >= 0].tolist()) == set(range(len(column.vocab)))


def _reason(reason: str) -> str:
    return re.sub(r" at 0x[0-9a-f]+", "", reason)  # fastavro names its buffer object


def _check(values: Sequence[Any], codec: Codec[PredictionEvent] | None = None) -> Decoded:
    codec = codec or Codec(PredictionEvent)
    decoded = decode_predictions(values, codec)
    events: dict[int, PredictionEvent] = {}
    failures: dict[int, str] = {}
    for i, value in enumerate(values):
        try:
            events[i] = codec.decode(value)
        except DecodeError as exc:
            failures[i] = exc.reason
    assert {i: _reason(r) for i, r in decoded.failures} == {
        i: _reason(r) for i, r in failures.items()
    }
    assert len(decoded.failures) == len(failures)
    seen = [int(r) for b in decoded.batches for r in b.rows] + list(failures)
    assert sorted(seen) == list(range(len(values)))

    groups: dict[tuple[str, str], list[int]] = {}
    for i, event in events.items():
        groups.setdefault((event.model_id, event.model_version), []).append(i)
    assert {(b.model_id, b.model_version) for b in decoded.batches} == set(groups)
    assert len(decoded.batches) == len(groups)
    for batch in decoded.batches:
        rows = groups[(batch.model_id, batch.model_version)]
        group = [events[i] for i in rows]
        assert batch.rows.tolist() == rows
        assert len(batch) == len(rows)
        assert batch.timestamps.dtype == np.int64
        assert batch.timestamps.tolist() == [_micros(e.timestamp) for e in group]
        expected_scores = np.array([np.nan if e.score is None else e.score for e in group])
        assert batch.score.dtype == np.float64
        assert batch.score.view(np.int64).tolist() == expected_scores.view(np.int64).tolist()
        _check_column(batch.prediction, column_from_values([e.prediction for e in group]))
        names = {name for e in group for name in e.features}
        assert set(batch.features) == names
        for name in names:
            expected = column_from_values([e.features.get(name) for e in group])
            _check_column(batch.features[name], expected)
    return decoded


# -- random events ---------------------------------------------------------------------------

KEYS = [
    "x",
    "income",
    "num_7",
    "exactly8",
    "sixteen_bytes_ab",
    "région",
    "",
    "k" * 64,
    "a key longer than sixty-four bytes, which the batch decoder reads one by one",
    "ключ",
]


def _string(rng: random.Random) -> str:
    return rng.choice(
        [
            "",
            "a",
            "b",
            "eu",
            "approve",
            "exactly8",
            "é",
            "naïve café",
            "\x00nul",
            "🙂" * rng.randint(1, 20),
            "s" * 64,
            "t" * 65,
            "long string " * rng.randint(6, 30),
            f"r{rng.randint(0, 30)}",
        ]
    )


def _value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            rng.randint(-70, 70),
            rng.randint(-(2**63), 2**63 - 1),
            2**63 - 1,
            -(2**63),
            2**53 + 1,
            rng.uniform(-1e9, 1e9),
            float("nan"),
            float("inf"),
            float("-inf"),
            -0.0,
            5e-324,
            _string(rng),
        ]
    )


def _event(rng: random.Random, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
    model_id, model_version = rng.choice(models)
    keys = rng.sample(KEYS, rng.randint(0, len(KEYS)))
    keys += [f"f{j}" for j in range(rng.choice([0, 3, 20, 40]))]
    rng.shuffle(keys)
    return {
        "prediction_id": rng.choice(
            ["p", f"p-{rng.randint(0, 10**9)}", "id-é" * rng.randint(1, 30)]
        ),
        "model_id": model_id,
        "model_version": model_version,
        "timestamp": rng.choice(
            [0, -1, MIN_MICROS, MAX_MICROS, 1_790_000_000_000_000 + rng.randint(0, 10**9)]
        ),
        "features": {k: _value(rng) for k in keys},
        "prediction": rng.choice(
            [True, False, 3, -(2**40), 2**63 - 1, 0.25, float("nan"), "approve", "", "é" * 40]
        ),
        "score": rng.choice([None, 0.5, 1e-300, float("nan"), -0.0]),
        "tags": rng.choice([{}, {"variant": "champion"}, {"région": "eu", "t" * 70: "v" * 70}]),
        "sample_rate": rng.choice([None, 0.1]),
    }


MODELS = [("credit-risk", "1"), ("credit-risk", "2"), ("fraud", "1"), ("modèle", "v" * 70)]

# -- a writer with several map blocks --------------------------------------------------------


def _varint(n: int, pad: bool = False) -> bytes:
    """An unsigned varint; ``pad``: with a superfluous 0 byte (fastavro reads those)."""
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    if pad and len(out) < 10:
        out[-1] |= 0x80
        out.append(0)
    return bytes(out)


def _long(n: int, pad: bool = False) -> bytes:
    return _varint(((n << 1) ^ (n >> 63)) & (2**64 - 1), pad)


def _str(s: str | bytes, pad: bool = False) -> bytes:
    data = s.encode() if isinstance(s, str) else s
    return _long(len(data), pad) + data


def _union(value: Any, boolean_branch: int, rng: random.Random) -> bytes:
    pad = rng.random() < 0.25
    if value is None:
        return _long(0)
    if isinstance(value, bool):
        return _long(boolean_branch) + bytes([rng.choice([1, 2, 255]) if value else 0])
    if isinstance(value, int):
        return _long(boolean_branch + 1) + _long(value, pad)
    if isinstance(value, float):
        return _long(boolean_branch + 2) + struct.pack("<d", value)
    return _long(boolean_branch + 3) + _str(value, pad)


def _map(items: list[tuple[bytes, bytes]], rng: random.Random) -> bytes:
    out = bytearray()
    while items:
        size = rng.randint(1, len(items))
        block, items = items[:size], items[size:]
        body = b"".join(k + v for k, v in block)
        if rng.random() < 0.5:
            out += _long(-size) + _long(len(body)) + body
        else:
            out += _long(size, rng.random() < 0.5) + body
    return bytes(out + _long(0))


def _blocks(event: dict[str, Any], rng: random.Random) -> bytes:
    """The event's single-object encoding, maps in random blocks."""
    features = [(_str(k), _union(v, 1, rng)) for k, v in event["features"].items()]
    tags = [(_str(k), _str(v)) for k, v in event["tags"].items()]
    score, rate = event["score"], event["sample_rate"]
    return HEADER + b"".join(
        [
            _str(event["prediction_id"]),
            _str(event["model_id"]),
            _str(event["model_version"]),
            _long(event["timestamp"]),
            _map(features, rng),
            _union(event["prediction"], 0, rng),
            b"\x00" if score is None else b"\x02" + struct.pack("<d", score),
            _map(tags, rng),
            b"\x00" if rate is None else b"\x02" + struct.pack("<d", rate),
        ]
    )


def _fastavro(event: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, SCHEMA.parsed, event)
    return HEADER + out.getvalue()


def _json(event: dict[str, Any]) -> bytes:
    ts = EPOCH + timedelta(microseconds=event["timestamp"])
    features = {k: v for k, v in event["features"].items() if not isinstance(v, float)}
    prediction = 0.5 if isinstance(event["prediction"], float) else event["prediction"]
    score = None if event["score"] is None or np.isnan(event["score"]) else event["score"]
    return orjson.dumps(
        {
            **event,
            "timestamp": ts.isoformat(),
            "features": features,
            "prediction": prediction,
            "score": score,
        }
    )


def _encodings(event: dict[str, Any], rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.4:
        return Codec(PredictionEvent).encode_dict(event)
    if kind < 0.5:
        return _fastavro(event)
    if kind < 0.9:
        return _blocks(event, rng)
    return _json(event)


# -- corruption ------------------------------------------------------------------------------


def _corrupt(message: bytes, rng: random.Random) -> bytes:
    how = rng.randrange(6)
    if how == 0:  # truncated
        return message[: rng.randrange(len(message))]
    if how == 1:  # trailing bytes
        return message + bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
    if how == 2:  # a flipped byte
        i = rng.randrange(len(message))
        return message[:i] + bytes([message[i] ^ (1 << rng.randrange(8))]) + message[i + 1 :]
    if how == 3:  # a random byte
        i = rng.randrange(10, len(message))
        return message[:i] + bytes([rng.randrange(256)]) + message[i + 1 :]
    if how == 4:  # garbage after a good header
        return HEADER + bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))  # garbage


# -- tests -----------------------------------------------------------------------------------


def test_nothing_in_nothing_out() -> None:
    assert decode_predictions([]) == Decoded([], [])


@pytest.mark.parametrize("seed", range(12))
def test_random_events_match_per_message_decoding(seed: int) -> None:
    rng = random.Random(seed)
    models = MODELS[: 1 + seed % len(MODELS)]
    values = [_encodings(_event(rng, models), rng) for _ in range(rng.choice([1, 7, 150, 400]))]
    decoded = _check(values)
    assert not decoded.failures


@pytest.mark.parametrize("seed", range(12))
def test_corrupt_messages_are_failures_or_decode_as_the_codec_does(seed: int) -> None:
    rng = random.Random(1000 + seed)
    values: list[bytes] = []
    for _ in range(300):
        message = _encodings(_event(rng, MODELS), rng)
        values.append(_corrupt(message, rng) if rng.random() < 0.5 else message)
    decoded = _check(values)
    assert decoded.failures


def test_every_truncation_of_a_message_is_a_failure() -> None:
    rng = random.Random(5)
    event = _event(rng, MODELS)
    event["features"] = {"a": 1.5, "b": "x" * 70, "c": -(2**62), "d": True, "e": None, "f": "é"}
    event["tags"] = {"variant": "champion"}
    event["sample_rate"] = 0.5
    for message in (_fastavro(event), _blocks(event, rng)):
        values = [message[:cut] for cut in range(len(message))]
        decoded = _check(values)
        assert [i for i, _ in decoded.failures] == list(range(len(message)))


def _odd_messages() -> list[Any]:
    """Edge cases of the wire format, most of which fastavro or the codec reject."""

    def body(**fields: bytes) -> bytes:
        parts = {
            "pid": _str("p"),
            "model": _str("m") + _str("1"),
            "ts": _long(7),
            "features": _long(1) + _str("a") + _long(3) + struct.pack("<d", 2.5) + _long(0),
            "prediction": b"\x00\x01",
            "score": b"\x00",
            "tags": b"\x00",
            "rate": b"\x00",
        }
        parts.update(fields)
        return HEADER + b"".join(parts.values())

    feature = _long(1) + _str("a")
    values = [
        body(),
        body(pid=_str(b"\xff")),
        body(model=_str(b"m\xc3") + _str("1")),
        body(model=_str("m") + _str(b"\xed\xa0\x80")),
        body(features=feature + _long(4) + _str(b"ok\xe9") + _long(0)),
        body(features=_long(1) + _str(b"\xe9") + _long(0) + _long(0)),
        body(features=_long(1) + _str(b"k" * 70 + b"\xe9") + _long(0) + _long(0)),
        body(features=feature + _long(4) + _str(b"x" * 70 + b"\xe9") + _long(0)),
        body(tags=_long(1) + _str("k") + _str(b"\xff") + _long(0)),
        body(tags=_long(1) + _str(b"\xff" * 80) + _str("v") + _long(0)),
        body(ts=_long(MAX_MICROS + 1)),
        body(ts=_long(MIN_MICROS - 1)),
        body(ts=_long(MAX_MICROS)),
        body(ts=_long(MIN_MICROS)),
        body(features=feature + _long(5) + _long(0)),  # union branch 5
        body(features=feature + _long(-1) + _long(0)),  # union branch -1
        body(features=feature + b"\x80\x80\x00" + _long(0)),  # overlong branch 0
        body(prediction=_long(4)),
        body(score=_long(2)),
        body(rate=_long(-1)),
        body(features=_long(2) + _str("a") + b"\x00" + _long(0)),  # count beyond the entries
        body(features=_long(10**15)),
        body(features=_long(-(2**63))),
        body(features=_long(-1) + _long(99) + _str("a") + b"\x00" + _long(0)),  # size ignored
        body(features=_long(1) + _long(-3)),  # negative key length
        body(features=_long(1) + _long(2**62) + b"ab"),
        body(features=feature + _long(4) + _long(2**40) + _long(0)),
        body(features=feature + _long(4) + _long(-2) + _long(0)),
        body(pid=_long(-1)),
        body(pid=b"\x80" * 12),
        body(features=feature + _long(2) + b"\xff" * 9 + b"\x01" + _long(0)),  # 10 bytes
        body(features=feature + _long(2) + b"\xff" * 9 + b"\x7f" + _long(0)),  # > 64 bits
        body(features=feature + _long(2) + b"\x80" * 10 + b"\x01" + _long(0)),  # 11 bytes
        body(features=feature + _long(2) + b"\x80" * 10 + b"\x00" + _long(0)),
        body(features=feature + _long(1) + b"\x07" + _long(0)),  # boolean 7 is true
        body(features=_long(2) + _str("a") + b"\x02\x01" + _str("a") + b"\x04\x02" + _long(0)),
        body(features=_long(1) + _str("a") + b"\x02\x01" + _long(1) + _str("a") + b"\x00\x00"),
        body(prediction=_long(6) + _str("x" * 200)),
        body(rate=b"\x02" + struct.pack("<d", 0.5) + b"\x00"),
        body()[:-1],
        body() + b"\x00",
        HEADER,
        HEADER[:-1],
        b"\xc3\x01" + bytes(8) + body()[10:],  # unknown fingerprint
        b"",
        None,
        b'{"prediction_id": "p"}',
        b"[1, 2]",
        b"\x00\x00\x00\x00\x2a\x02",  # Confluent framing, no registry
        b"hello",
    ]
    return values


def test_bytes_that_fastavro_rejects_are_failures() -> None:
    values = _odd_messages()
    random.Random(3).shuffle(values)
    decoded = _check(values)
    assert len(decoded.failures) > 30


@pytest.mark.parametrize("value", _odd_messages())
def test_odd_messages_alone(value: Any) -> None:
    _check([value])
    _check([value, value])


def test_json_and_confluent_and_older_schemas_take_the_per_message_path() -> None:
    older = parse_schema(
        {
            "type": "record",
            "name": "PredictionEvent",
            "namespace": "vigil",
            "fields": [
                f for f in SCHEMA.parsed["fields"] if f["name"] not in {"tags", "sample_rate"}
            ],
        }
    )
    canonical = to_parsing_canonical_form(older)
    old = AvroSchema(
        "vigil.PredictionEvent",
        older,
        canonical,
        bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )

    class Registry(SchemaRegistryClient):
        def __init__(self) -> None:
            super().__init__("http://registry.invalid")
            self._cache[42] = SCHEMA.parsed

    class OldAndNew(Codec[PredictionEvent]):
        def __init__(self) -> None:
            super().__init__(PredictionEvent, Registry())
            self._writers = {**self._writers, old.fingerprint: old}

    rng = random.Random(8)
    values: list[bytes] = []
    for _ in range(200):
        event = _event(rng, MODELS)
        kind = rng.randrange(4)
        if kind == 0:
            out = io.BytesIO()
            schemaless_writer(out, older, event)
            values.append(b"\xc3\x01" + old.fingerprint + out.getvalue())
        elif kind == 1:
            values.append(b"\x00" + (42).to_bytes(4, "big") + _fastavro(event)[10:])
        elif kind == 2:
            values.append(_json(event))
        else:
            values.append(_blocks(event, rng))
    decoded = _check(values, OldAndNew())
    assert not decoded.failures


class _Counting(Codec[PredictionEvent]):
    def __init__(self) -> None:
        super().__init__(PredictionEvent)
        self.calls = 0

    def decode(self, data: bytes | None) -> PredictionEvent:
        self.calls += 1
        return super().decode(data)


def test_ordinary_avro_events_never_take_the_per_message_path() -> None:
    rng = random.Random(21)
    values = []
    for _ in range(300):
        event = _event(rng, MODELS)
        values.append(_fastavro(event) if rng.random() < 0.5 else _blocks(event, rng))
    codec = _Counting()
    decoded = decode_predictions(values, codec)
    assert codec.calls == 0
    assert not decoded.failures
    assert sum(len(b) for b in decoded.batches) == len(values)


def test_a_changed_schema_sends_every_message_the_per_message_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader, "SUPPORTED_SCHEMA", "{}")
    rng = random.Random(4)
    values = [_encodings(_event(rng, MODELS), rng) for _ in range(50)]
    codec = _Counting()
    _check(values, codec)
    assert codec.calls == 2 * len(values)  # once by the decoder, once by the check


def test_a_batch_of_one_model_version_keeps_every_key_and_missing_values() -> None:
    codec = Codec(PredictionEvent)
    values = [
        codec.encode_dict(
            {
                "prediction_id": f"p{i}",
                "model_id": "m",
                "model_version": "1",
                "timestamp": i,
                "features": {"a": float(i), "c": "x" if i % 2 else "y"} if i < 3 else {"b": None},
                "prediction": "yes",
                "score": None,
            }
        )
        for i in range(5)
    ]
    decoded = _check(values)
    (batch,) = decoded.batches
    assert batch.rows.tolist() == [0, 1, 2, 3, 4]
    assert set(batch.features) == {"a", "b", "c"}
    assert batch.features["a"].kinds.tolist() == [3, 3, 3, 0, 0]
    assert batch.features["b"].kinds.tolist() == [0, 0, 0, 0, 0]
    assert np.isnan(batch.score).all()
    assert batch.prediction.vocab == ["yes"]


def test_lockstep_stragglers_with_huge_maps() -> None:
    rng = random.Random(9)
    events = [_event(rng, MODELS[:1]) for _ in range(40)]
    events[7]["features"] = {f"k{j}": j for j in range(600)}
    events[8]["features"] = {f"k{j}": str(j) for j in range(300)}
    _check([_blocks(e, rng) for e in events])


def test_hash_collisions_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strings, "_MIX2", np.uint64(0))  # every string hashes alike
    rng = random.Random(12)
    values = [_blocks(_event(rng, MODELS), rng) for _ in range(120)]
    codec = _Counting()
    _check(values, codec)
    assert codec.calls == len(values)  # by the check only


def test_events_of_one_producer_in_lockstep() -> None:
    """Same keys in the same order, as one producer writes them: the lock-step fast paths."""
    rng = random.Random(17)
    kinds = [rng.choice(["double", "long", "string", "bool"]) for _ in range(30)]

    def value(kind: str) -> Any:
        if rng.random() < 0.05:
            return None
        if kind == "double":
            return rng.gauss(0, 1e6)
        if kind == "long":
            return rng.randint(-(2**40), 2**40)
        if kind == "string":
            return rng.choice(["a", "b", "cc", "a longer category", "é"])
        return rng.random() < 0.5

    codec = _Counting()
    values = [
        codec.encode_dict(
            {
                "prediction_id": f"{i:08x}-4b1e-9c7d-0000-{i:012x}",
                "model_id": "credit-risk",
                "model_version": "3",
                "timestamp": 1_790_000_000_000_000 + i,
                "features": {f"feature_{j}": value(k) for j, k in enumerate(kinds)},
                "prediction": rng.choice([True, False]),
                "score": rng.random(),
                "tags": {"variant": "champion"},
            }
        )
        for i in range(2000)
    ]
    (batch,) = decode_predictions(values, codec).batches
    assert codec.calls == 0
    assert len(batch) == 2000 and len(batch.features) == 30
    _check(values)
