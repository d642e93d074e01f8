"""The archive writes only under its root and never stops for a hostile id; a record it cannot
archive is dead-lettered with its reason."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import duckdb
import orjson
import pytest

from archive.handlers import ArchiveFiles, Archiving, Row
from tests.samples import PREDICTION
from vigil.adapters.stage_logic import Incoming
from vigil.wire.archive_paths import MAX_COMPONENT, PathEscapes, component, inside
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent

HOSTILE = [
    "../../../tmp/escaped",
    "x/../../tmp/escaped",
    "/etc/passwd",
    "/",
    "a/b",
    "a\\b",
    "nul\0byte",
    ".",
    "..",
    "...",
    "",
    "%2F",
    "é-模型-🙂",
    "x" * 256,
    "é" * 5_000,
    "/" * 5_000,
    "-rf",
    "line\nbreak",
]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _assert_all_under(root: Path, outside: Path) -> None:
    assert not [p for p in outside.rglob("*") if p.is_file()]
    for path in _files(root):
        assert path.resolve().is_relative_to(root.resolve())


@pytest.mark.parametrize("value", HOSTILE)
def test_a_component_is_one_safe_name(value: str) -> None:
    name = component(value)
    assert "/" not in name and "\\" not in name and "\0" not in name
    assert name not in (".", "..")
    assert len(name.encode()) <= MAX_COMPONENT
    assert name.isascii() and name.isprintable()
    if "~" not in name:
        assert unquote(name) == value  # reversible unless truncated


def test_distinct_values_get_distinct_names() -> None:
    values = [*HOSTILE, "x" * 255, "x" * 257, "é" * 4_999, "%252F", "%2E", "a~b"]
    assert len({component(v) for v in values}) == len(set(values))


def test_a_long_value_keeps_a_readable_prefix() -> None:
    name = component("credit-risk-" + "é" * 300)
    assert name.startswith("credit-risk-%C3%A9") and "~" in name
    assert "%" not in name.rsplit("~", 1)[0][-2:]  # no %XX cut in half


@pytest.mark.parametrize("path", ["/r/../x", "/r/a/../../x", "/other", "/r", "/r/a\0b", "/r//x"])
def test_inside_refuses_paths_that_leave_the_root(path: str) -> None:
    with pytest.raises(PathEscapes):
        inside("/r", path)


def test_hostile_ids_are_written_under_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "archive", tmp_path / "tmp"
    outside.mkdir()
    files = ArchiveFiles(str(root))
    rows = [
        Row(PREDICTION.model_copy(update={"model_id": m, "model_version": v}), 0, i)
        for i, (m, v) in enumerate((h, HOSTILE[-1 - k]) for k, h in enumerate(HOSTILE))
    ]
    paths = files.write_chunk("../../t/../x", 0, rows)
    assert len(paths) == len(HOSTILE)
    _assert_all_under(root, outside)
    assert {p.name for p in root.iterdir()} == {"_manifests"} | {
        f"model={component(h)}" for h in HOSTILE
    }
    assert os.listdir(root / "_manifests") == [f"{component('../../t/../x')}-0.json"]
    # The true ids are the rows' columns, whatever the directories are called.
    query = (
        "select model_id, model_version from "
        f"read_parquet('{root}/**/*.parquet', hive_partitioning = true)"
    )
    read = sorted(duckdb.execute(query).fetchall())
    assert read == sorted((r.event.model_id, r.event.model_version) for r in rows)


def test_stale_temporary_files_of_hostile_ids_are_found(tmp_path: Path) -> None:
    files = ArchiveFiles(str(tmp_path))
    event = PREDICTION.model_copy(update={"model_id": "../" * 100, "model_version": "\0"})
    (path,) = files.write_chunk("t", 3, [Row(event, 3, 9)])
    Path(f"{path}.tmp-99999").write_bytes(b"half a file")
    assert files.remove_temporary("t", 3) == [f"{path}.tmp-99999"]


@dataclass(frozen=True)
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _incoming(value: bytes | None, offset: int) -> Incoming:
    return _Record("vigil.predictions.v1", 0, offset, b"k", value)


def test_records_that_cannot_be_archived_are_dead_lettered_with_a_reason(tmp_path: Path) -> None:
    codec = Codec(PredictionEvent)
    good = codec.encode(PREDICTION.model_copy(update={"model_id": "../../x\0"}))
    far = PREDICTION.model_dump(mode="json") | {"timestamp": "0001-01-01T00:00:00+14:00"}
    huge = orjson.dumps(PREDICTION.model_dump(mode="json") | {"features": {"n": 0}})
    huge = huge.replace(b'{"n":0}', b'{"n":' + str(2**64 + 5).encode() + b"}")
    values = [b"garbage", None, good[:-3], good, orjson.dumps(far), huge]
    logic = Archiving(ArchiveFiles(str(tmp_path / "a")), max_rows=100, max_seconds=0)
    asyncio.run(logic.absorb([_incoming(v, i) for i, v in enumerate(values)]))
    output = asyncio.run(logic.flush())
    dead = {letter.record.offset: letter.reason for letter in output.dead_letters}
    assert set(dead) >= {0, 1, 2} and 3 not in dead
    assert all(reason for reason in dead.values())
    assert output.commit == {("vigil.predictions.v1", 0): len(values)}
    rows = duckdb.execute(
        f"select count(*) from read_parquet('{tmp_path}/a/**/*.parquet')"
    ).fetchone()
    assert rows is not None and rows[0] + len(dead) == len(values)
