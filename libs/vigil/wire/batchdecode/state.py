"""The batch decoder's state: the messages joined into one buffer with numpy views of it, and
what has been read from them so far."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from vigil.wire.batchdecode.store import KeyTable, NameLimit, Store
from vigil.wire.batchdecode.words import PAD, Ints, Slots, Words
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent

__all__ = ["ReaderState"]


class ReaderState:
    """The buffers and results every stage of the batch reader shares."""

    def __init__(
        self,
        values: Sequence[bytes],
        codec: Codec[PredictionEvent],
        limit: NameLimit,
    ) -> None:
        self.values = values
        self.codec = codec
        n = self.n = len(values)
        data, lengths = self._join(values)
        self.data = data
        size = len(data) - 7
        self.u8 = np.frombuffer(data, dtype=np.uint8)
        self.u64: Words = np.ndarray((size,), dtype="<u8", buffer=data, strides=(1,))
        self.f64: npt.NDArray[np.float64] = np.ndarray(
            (size,), dtype="<f8", buffer=data, strides=(1,)
        )
        self.ends = np.cumsum(lengths)
        self.starts = self.ends - lengths
        self.bad = np.zeros(n, dtype=np.bool_)  # not (fully) read by the lock-step reader
        self.store = Store(n, limit)
        self.timestamps = np.zeros(n, dtype=np.int64)
        self.scores = np.full(n, np.nan)
        self.groups = np.full(n, -1, dtype=np.int64)  # index into group_keys; -1: failed
        self.group_keys: list[tuple[str, str]] = []
        self._group_of: dict[tuple[str, str], int] = {}
        self.entries = np.zeros(n, dtype=np.int64)  # feature map entries per message
        # Strings to look at once the structure is read: (message, start, length[, slot]).
        self.checks: list[tuple[Ints, Ints, Ints]] = []  # only checked to be UTF-8
        self.values_read: list[tuple[Slots, Ints, Ints, Ints]] = []  # feature / label strings
        self.model_ids: tuple[Ints, Ints, Ints] | None = None
        self.versions: tuple[Ints, Ints, Ints] | None = None
        self._keys = KeyTable()
        self._word_cache: dict[bytes, list[tuple[int, np.uint64, np.uint64]] | None] = {}
        self.distinct: list[str | None] = []  # feature / label strings, by id
        self.string_table: list[tuple[int, bytes]] = []  # (slot, bytes) by id
        self.string_rows: tuple[Ints, Ints, Ints] | None = None  # slot, message, id

    @staticmethod
    def _join(values: Sequence[bytes]) -> tuple[bytes, Ints]:
        try:
            lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
            data = b"".join([*values, PAD])
            if len(data) == int(lengths.sum()) + len(PAD):
                return data, lengths
        except TypeError:
            pass
        # None (a tombstone) or other odd values: they fail the header check and go one by one.
        clean = [v if isinstance(v, bytes) else b"" for v in values]
        lengths = np.fromiter(map(len, clean), dtype=np.int64, count=len(clean))
        return b"".join([*clean, PAD]), lengths
