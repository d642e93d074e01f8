"""Where the archive writes: every path is built here, from names producers cannot steer out of
the archive's root.

A value taken from a record (``model_id``, ``model_version``) or from the configuration (the
topic) becomes one path component by ``component``:

- every byte of its UTF-8 form outside ``[A-Za-z0-9._-]`` is written ``%XX`` (upper-case hex),
  ``%`` included, so ``/``, ``\\``, NUL and control characters never reach the file system and
  the mapping is reversible (``unquote`` it: DuckDB and Hive do, for partition values);
- a value of dots only (``.``, ``..``) has its dots written ``%2E`` (the empty value stays
  empty: the directory is then ``model=``);
- an encoding over ``MAX_COMPONENT`` bytes keeps its first bytes (never half of a ``%XX``) and
  ends in ``~`` and 32 hex digits of the SHA-256 of the whole value. ``~`` is never in a full
  encoding, so a truncated name cannot equal another value's full one.

Partition directories are ``model=<component>/version=<component>/date=<YYYY-MM-DD>``: not
``model_id=``, because a hive-partitioned reader such as DuckDB replaces a file's column with
the directory's value of the same name, and a truncated name is not the id. The Parquet rows
keep the true ``model_id`` and ``model_version`` columns.
"""

from __future__ import annotations

import hashlib
import os
import re

__all__ = ["MAX_COMPONENT", "PathEscapes", "component", "inside", "partition_directory"]

MAX_COMPONENT = 128  # bytes of an encoded value; file systems allow 255 per component
_UNSAFE = re.compile(rb"[^A-Za-z0-9._-]")
_DIGEST_HEX = 32


class PathEscapes(ValueError):
    """A path the archive built would leave its root (a bug: ``component`` prevents it)."""


def component(value: str) -> str:
    """``value`` as one safe, reversible path component (see the module docstring)."""
    raw = value.encode("utf-8", "surrogatepass")
    encoded = _UNSAFE.sub(lambda m: b"%%%02X" % m.group()[0], raw).decode("ascii")
    if encoded and not encoded.strip("."):
        encoded = "%2E" * len(encoded)
    if len(encoded) <= MAX_COMPONENT:
        return encoded
    keep = MAX_COMPONENT - 1 - _DIGEST_HEX
    cut = encoded.rfind("%", keep - 2, keep)  # never split a %XX
    prefix = encoded[: cut if cut >= 0 else keep]
    return f"{prefix}~{hashlib.sha256(raw).hexdigest()[:_DIGEST_HEX]}"


def partition_directory(root: str, model_id: str, model_version: str, day: str) -> str:
    """The directory of one model version's rows of one day."""
    path = f"{root}/model={component(model_id)}/version={component(model_version)}/date={day}"
    return inside(root, path)


def inside(root: str, path: str) -> str:
    """``path`` itself, once checked to stay under ``root``."""
    relative = path[len(root) :] if path.startswith(root + "/") else None
    parts = (relative or "").split("/")
    if relative is None or "\0" in path or any(p in ("", ".", "..") for p in parts[1:]):
        raise PathEscapes(path)
    if os.path.isabs(root) and os.path.commonpath([root, os.path.normpath(path)]) != root:
        raise PathEscapes(path)
    return path
