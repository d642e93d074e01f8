"""The batch decoder's results: model versions, string codes, the per-message fallback, and
the columnar batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from vigil.wire.batchdecode.maps import Maps
from vigil.wire.batchdecode.words import JUNK_SLOT, PREDICTION_SLOT, Ints, factorize
from vigil.wire.codec import DecodeError
from vigil.wire.columns import Batch

__all__ = ["Decoded", "Results"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


@dataclass
class Decoded:
    """Decoded messages, one batch per model version, and the messages that are not events."""

    batches: list[Batch]  # one per (model_id, model_version), rows = indices into the input
    failures: list[tuple[int, str]]  # (input index, reason) for undecodable messages


def _micros(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // _MICRO


class Results(Maps):
    """Turns what was read into batches, one per model version."""

    def _check_duplicates(self, fast: Ints) -> None:
        """A key twice in one map: the last value wins; the per-message path knows how."""
        kinds = self.store.kinds[JUNK_SLOT + 1 : len(self.store.names)]
        present = (kinds[:, fast] >= 0).sum(axis=0)
        self.bad[fast[present != self.entries[fast]]] = True

    def _assign_groups(self, fast: Ints) -> None:
        """Group (model version) of every message read in lock-step."""
        if self.model_ids is None or self.versions is None:
            return
        if (models := self._names(self.model_ids)) is None:
            return
        if (versions := self._names(self.versions)) is None:
            return
        (model_codes, model_names), (version_codes, version_names) = models, versions
        read = fast[~self.bad[fast]]
        if not read.size:
            return
        width = len(version_names) + 1
        pair_codes, distinct = factorize(model_codes[read] * width + version_codes[read])
        group = np.array(
            [
                self._group(model_names[p // width], version_names[p % width])
                for p in distinct.tolist()
            ],
            dtype=np.int64,
        )
        self.groups[read] = group[pair_codes]

    def _names(self, field: tuple[Ints, Ints, Ints]) -> tuple[Ints, list[str]] | None:
        """A string field of the live messages: (code by message, -1 if none; the strings),
        None if no message is live. Messages whose string is not UTF-8 are marked bad."""
        idx, start, length = field
        live = ~self.bad[idx]
        idx, start, length = idx[live], start[live], length[live]
        if not idx.size:
            return None
        ids, table = self._distinct(start, length)
        names: list[str] = []
        for d, raw in enumerate(table):
            try:
                names.append(raw.decode())
            except UnicodeDecodeError:
                names.append("")
                self.bad[idx[ids == d]] = True
        column = np.full(self.n, -1, dtype=np.int64)
        column[idx] = ids
        return column, names

    def _group(self, model_id: str, model_version: str) -> int:
        key = (model_id, model_version)
        group = self._group_of.get(key)
        if group is None:
            group = self._group_of[key] = len(self.group_keys)
            self.group_keys.append(key)
        return group

    def _assign_codes(self) -> None:
        """Vocabulary codes of the strings of messages that were read in lock-step."""
        if self.string_rows is None:
            return
        slots, idx, ids = self.string_rows
        live = ~self.bad[idx]
        slots, idx, ids = slots[live], idx[live], ids[live]
        if not ids.size:
            return
        used = np.zeros(len(self.distinct), dtype=np.bool_)
        used[ids] = True
        code = np.full(len(self.distinct), -1, dtype=np.int32)
        vocabs = self.store.vocabs
        for d in np.flatnonzero(used).tolist():
            vocab = vocabs[self.string_table[d][0]]
            text = self.distinct[d]
            assert text is not None
            code[d] = vocab.setdefault(text, len(vocab))
        self.store.codes[slots, idx] = code[ids]

    def _forget(self, rows: Ints) -> None:
        """Clears what the lock-step reader wrote for messages it gave up on."""
        if rows.size:
            store = self.store
            store.kinds[:, rows] = -1
            store.numbers[:, rows] = np.nan
            store.codes[:, rows] = -1
            self.groups[rows] = -1

    # -- one message at a time -------------------------------------------------------------

    def _one(self, i: int) -> tuple[int, str] | None:
        """Decodes message ``i`` with the codec: a failure, or None once its row is stored."""
        try:
            event = self.codec.decode(self.values[i])
        except DecodeError as exc:
            return (i, exc.reason)
        except Exception as exc:  # never raise for bad input
            return (i, f"undecodable: {type(exc).__name__}: {exc}")
        store = self.store
        slots = [store.slot_for_name(name) for name in event.features]
        if JUNK_SLOT in slots:  # a name beyond the cap: nothing of the message is stored
            return (i, store.overflow_reason(list(event.features)[slots.index(JUNK_SLOT)]))
        self.groups[i] = self._group(event.model_id, event.model_version)
        self.timestamps[i] = _micros(event.timestamp)
        self.scores[i] = np.nan if event.score is None else event.score
        store.put(PREDICTION_SLOT, i, event.prediction)
        for slot, value in zip(slots, event.features.values(), strict=True):
            store.put(slot, i, value)
        return None

    # -- batches ---------------------------------------------------------------------------

    def _batches(self) -> list[Batch]:
        count = len(self.group_keys)
        if not count:
            return []
        parts = self._rows_by_group(count)
        compact = len(parts) > 1
        batches = [self._batch(g, rows, compact) for g, rows in enumerate(parts)]
        first = [int(b.rows[0]) for b in batches]
        return [b for _, b in sorted(zip(first, batches, strict=True), key=lambda p: p[0])]

    def _rows_by_group(self, count: int) -> list[Ints | slice]:
        """The rows of each group, in input order."""
        groups = self.groups
        if count == 1 and not (groups < 0).any():
            return [slice(None)]
        order = np.argsort(groups, kind="stable")
        sizes = np.bincount(groups[groups >= 0], minlength=count)
        bounds = np.cumsum(sizes)
        skip = int((groups < 0).sum())
        return [
            order[skip + b - s : skip + b]
            for s, b in zip(sizes.tolist(), bounds.tolist(), strict=True)
        ]

    def _batch(self, group: int, rows: Ints | slice, compact: bool) -> Batch:
        store = self.store
        model_id, model_version = self.group_keys[group]
        features = np.arange(JUNK_SLOT + 1, len(store.names))
        present = features[(store.kinds[features][:, rows] >= 0).any(axis=1)]
        index = np.arange(self.n) if isinstance(rows, slice) else rows
        return Batch(
            model_id,
            model_version,
            index.astype(np.intp),
            self.timestamps[rows],
            {store.names[s]: store.column(s, rows, compact) for s in present.tolist()},
            store.column(PREDICTION_SLOT, rows, compact),
            self.scores[rows],
        )
