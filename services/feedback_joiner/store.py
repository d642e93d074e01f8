"""The joiner's local store: one RocksDB (``rocksdict``) per partition, on local disk.

It holds what the changelog topic holds for the partitions this worker owns; on assignment it
is rebuilt from the changelog, so a restarted worker, a rebalance or a fresh machine resumes
from Kafka, never from memory.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

from feedback_joiner.ports import JoinStore

__all__ = ["MIB", "RocksJoinStore"]


MIB = 1024 * 1024
CACHE_BYTES = 64 * MIB  # VIGIL_JOINER_BLOCK_CACHE_MB
WRITE_BUFFER_BYTES = 16 * MIB


def _options(cache: Cache) -> Options:
    """One partition's RocksDB options: its index and filter blocks (a bloom filter, so that
    asking for an id it does not hold, as every new prediction does, reads no table) live in
    the block cache shared by the partitions, not beside it growing with the ids; memtables of
    16 MiB, two at most."""
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    table.set_bloom_filter(10, False)
    options = Options()
    options.create_if_missing(True)
    options.set_block_based_table_factory(table)
    options.set_write_buffer_size(WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(2)
    return options


class RocksJoinStore(JoinStore):
    """Entries by prediction id, in ``<root>/p<partition>``; its partitions share one block
    cache of ``cache_bytes`` (64 MiB)."""

    def __init__(self, root: str, cache_bytes: int = CACHE_BYTES) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.dbs: dict[int, Rdict] = {}
        self.cache = Cache(cache_bytes)

    def _path(self, partition: int) -> str:
        return str(self.root / f"p{partition}")

    def _db(self, partition: int) -> Rdict:
        db = self.dbs.get(partition)
        if db is None:
            db = self.dbs[partition] = Rdict(self._path(partition), _options(self.cache))
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
