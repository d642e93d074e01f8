"""The joiner's local store: one RocksDB (``rocksdict``) per partition, on local disk.

It holds what the changelog topic holds for the partitions this worker owns; on assignment it
is rebuilt from the changelog, so a restarted worker, a rebalance or a fresh machine resumes
from Kafka, never from memory.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from rocksdict import Rdict, WriteBatch

from feedback_joiner.ports import JoinStore

__all__ = ["RocksJoinStore"]


class RocksJoinStore(JoinStore):
    """Entries by prediction id, in ``<root>/p<partition>``."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.dbs: dict[int, Rdict] = {}

    def _path(self, partition: int) -> str:
        return str(self.root / f"p{partition}")

    def _db(self, partition: int) -> Rdict:
        db = self.dbs.get(partition)
        if db is None:
            db = self.dbs[partition] = Rdict(self._path(partition))
        return db

    def get(self, partition: int, key: str) -> bytes | None:
        value = self._db(partition).get(key.encode())
        return value if isinstance(value, bytes) else None

    def write(self, partition: int, changes: Mapping[str, bytes | None]) -> None:
        db = self._db(partition)
        batch = WriteBatch()
        for key, value in changes.items():
            if value is None:
                batch.delete(key.encode())
            else:
                batch.put(key.encode(), value)
        db.write(batch)

    def entries(self, partition: int) -> Iterator[tuple[str, bytes]]:
        for key, value in self._db(partition).items():
            if isinstance(key, bytes) and isinstance(value, bytes):
                yield key.decode(), value

    def reset(self, partition: int, entries: Iterable[tuple[str, bytes]]) -> None:
        self.drop(partition)
        shutil.rmtree(self._path(partition), ignore_errors=True)
        db = self._db(partition)
        batch = WriteBatch()
        for n, (key, value) in enumerate(entries, 1):
            batch.put(key.encode(), value)
            if n % 10_000 == 0:
                db.write(batch)
                batch = WriteBatch()
        db.write(batch)

    def drop(self, partition: int) -> None:
        db = self.dbs.pop(partition, None)
        if db is not None:
            db.close()

    def close(self) -> None:
        for partition in list(self.dbs):
            self.drop(partition)
