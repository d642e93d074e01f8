"""Model versions as both stages see them: record keys, catalog look-ups, retirement."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeGuard

from vigil.adapters.ports import Catalog
from vigil.wire.records import ModelVersion

__all__ = ["Key", "caught_up", "is_live", "key_of", "raw_key"]

Key = tuple[str, str]  # (model_id, version)


async def caught_up(versions: Catalog, keys: Iterable[Key]) -> None:
    """Catch the catalog up once if any of ``keys`` is unknown (not once per unknown key: a
    flood of unregistered ids must not stall a stage)."""
    if any(versions.get(*k) is None for k in keys):
        await versions.catch_up()


def key_of(raw: bytes | None) -> Key:
    """The (model_id, version) of a record keyed ``<model_id>/<version>``."""
    model_id, _, version = (raw or b"").decode(errors="replace").rpartition("/")
    return model_id, version


def raw_key(key: Key) -> bytes:
    """The record key of a model version, ``<model_id>/<version>``."""
    return f"{key[0]}/{key[1]}".encode()


def is_live(version: ModelVersion | None) -> TypeGuard[ModelVersion]:
    """Whether drift is watched for ``version``: registered and not retired. The catalog keeps
    a retired version only as a marker, without features or reference."""
    return version is not None and version.status != "retired"
