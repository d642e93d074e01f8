"""The joiner's port: where it keeps its entries. ``store.RocksJoinStore`` implements it on
local disk; unit tests use a dict."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping

__all__ = ["JoinStore"]


class JoinStore(ABC):
    """Encoded ``JoinEntry``s by prediction id, per partition."""

    @abstractmethod
    def get(self, partition: int, key: str) -> bytes | None:
        """The entry of ``key``, or None."""

    @abstractmethod
    def write(self, partition: int, changes: Mapping[str, bytes | None]) -> None:
        """Apply changes at once (None deletes)."""

    @abstractmethod
    def entries(self, partition: int) -> Iterator[tuple[str, bytes]]:
        """Every entry of a partition."""

    @abstractmethod
    def reset(self, partition: int, entries: Iterable[tuple[str, bytes]]) -> None:
        """Replace a partition's entries with ``entries`` (read from the changelog)."""

    @abstractmethod
    def drop(self, partition: int) -> None:
        """Let go of a partition (revoked); its files stay until the next reset."""
