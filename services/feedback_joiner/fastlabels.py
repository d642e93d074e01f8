"""A run of feedback records joined, the usual ones from their bytes.

The usual feedback is a label for a prediction that has come and has nothing else yet: the
label read in place (``rawlabels.read_label``), its entry fresh (``rawlabels.fresh_entry``).
Such labels are gathered, their predictions read column by column (``decode_predictions``) and
each is joined from bytes: its ``Outcome`` spliced from the two events as consumed, its counts
taken from the columns, its new entry written as ``ENTRIES.encode`` would write it.

Every other record (a flag, a correction, a resend, an early label, another encoding, bytes
the codec reads differently) goes through ``Joining.feedback``, and so does a label whose
prediction the columns cannot give exactly (a long past 2**53). Records are handled in order:
the gathered labels are joined before the next record that is not one of them, and a label
for an id already gathered is not gathered again, so outcomes, entries and counts (added in
the same order) are those of ``Joining.feedback`` one record at a time.

What is gathered is kept in flat lists of plain values: few objects for the garbage collector
to follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from feedback_joiner.deltas import FlushDeltas, count_outcome
from feedback_joiner.entries import OUTCOMES, PREDICTIONS, outcome_tail
from feedback_joiner.groups import declares_segments, event_groups
from feedback_joiner.rawlabels import FreshEntry, RawLabel, fresh_entry, joined_entry, read_label
from vigil.adapters.stage_logic import Incoming
from vigil.performance import WindowPerformance
from vigil.wire.batchdecode import decode_predictions
from vigil.wire.codec import DecodeError
from vigil.wire.columns import BOOLEAN, DOUBLE, LONG, STRING, Batch
from vigil.wire.records import Label, ModelVersion

if TYPE_CHECKING:
    from feedback_joiner.handlers import Joining

__all__ = ["MAX_GATHERED", "MIN_GATHERED", "join_labels"]

# Fewer labels than this between two other records go one by one through ``Joining.feedback``
# (reading columns costs more than it saves for a handful).
MIN_GATHERED = 8
# At most this many are gathered at a time (what they hold is let go sooner).
MAX_GATHERED = 1024
_EXACT = 2.0**53  # longs below this in magnitude are exact as the columns' doubles
_OUTCOME_HEADER = OUTCOMES.header

Key = tuple[int, str]
# What counting a label needs of its prediction: its batch (version), timestamp (micros),
# predicted label and score.
Light = tuple[int, int, Label, float | None]


class Gathered:
    """Labels gathered to be joined together, in order."""

    def __init__(self) -> None:
        self.records: list[Incoming] = []
        self.keys: list[Key] = []
        self.labels: list[RawLabel] = []
        self.entries: list[FreshEntry] = []
        self.known: set[Key] = set()

    def add(self, record: Incoming, key: Key, label: RawLabel, entry: FreshEntry) -> None:
        self.records.append(record)
        self.keys.append(key)
        self.labels.append(label)
        self.entries.append(entry)
        self.known.add(key)

    def __len__(self) -> int:
        return len(self.records)


def join_labels(joining: Joining, records: Sequence[Incoming], now: datetime) -> None:
    """Join a run of feedback records, in order (see the module)."""
    gathered = Gathered()
    dirty, store = joining.dirty, joining.store
    tail = outcome_tail(now)  # how every Outcome of this run ends
    for record in records:
        label = read_label(record.value)
        if label is not None:
            key = (record.partition, label.prediction_id)
            if key not in gathered.known:
                raw = dirty[key] if key in dirty else store.get(*key)
                entry = fresh_entry(raw, label.encoded_id) if isinstance(raw, bytes) else None
                if entry is not None:
                    gathered.add(record, key, label, entry)
                    if len(gathered) >= MAX_GATHERED:
                        _join(joining, gathered, now, tail)
                        gathered = Gathered()
                    continue
        if len(gathered):
            _join(joining, gathered, now, tail)
            gathered = Gathered()
        joining.feedback(record, now)
    if len(gathered):
        _join(joining, gathered, now, tail)


class Waiting:
    """Outcomes to count in one window, in order."""

    def __init__(self, window: WindowPerformance) -> None:
        self.window = window
        self.predictions: list[Label] = []
        self.scores: list[float | None] = []
        self.actuals: list[Label] = []
        self.latencies: list[float | None] = []


class Counting:
    """Outcomes of binary windows counted a window at a time (``add_outcomes``), in order."""

    def __init__(self, perf: FlushDeltas) -> None:
        self.perf = perf
        self.widths: dict[int, tuple[ModelVersion, int]] = {}  # by the version's id
        self.windows: dict[tuple[int, int], WindowPerformance] = {}
        self.waiting: dict[int, Waiting] = {}  # by the window's id

    def window(self, version: ModelVersion, micros: int) -> WindowPerformance:
        """The window of a version's event time, found once per window start."""
        known = self.widths.get(id(version))
        if known is None or known[0] is not version:
            known = self.widths[id(version)] = (version, round(self.perf.seconds(version) * 1e6))
        width = known[1]
        if width <= 0:  # no window: ``FlushDeltas.window`` says why
            return self.perf.window(version, micros).window
        key = (id(version), micros - micros % width)
        found = self.windows.get(key)
        if found is None:
            found = self.windows[key] = self.perf.window(version, micros).window
        return found

    def add(
        self,
        window: WindowPerformance,
        prediction: Label,
        score: float | None,
        actual: Label,
        seconds: float,
    ) -> None:
        """Count an outcome ``outcome_error`` finds countable, at ``done``."""
        waiting = self.waiting.get(id(window))
        if waiting is None:
            waiting = self.waiting[id(window)] = Waiting(window)
        waiting.predictions.append(prediction)
        waiting.scores.append(score)
        waiting.actuals.append(actual)
        waiting.latencies.append(seconds)

    def done(self) -> None:
        """Count what waits (before anything else is counted, to keep the order)."""
        for w in self.waiting.values():
            w.window.add_outcomes(w.predictions, w.scores, w.actuals, w.latencies)
        self.waiting = {}


def _join(joining: Joining, gathered: Gathered, now: datetime, tail: bytes) -> None:
    """Join gathered labels, in order: from their bytes, or (a prediction the columns cannot
    give exactly) one by one."""
    if len(gathered) < MIN_GATHERED:
        for record in gathered.records:
            joining.feedback(record, now)
        return
    lights, versions, groups = _lights(joining, gathered)
    counting = Counting(joining.perf)
    dirty = joining.dirty
    for i, light in enumerate(lights):
        record = gathered.records[i]
        if light is None:
            counting.done()
            joining.feedback(record, now)
            continue
        label, entry = gathered.labels[i], gathered.entries[i]
        at, micros, prediction, score = light
        value = b"".join(
            (_OUTCOME_HEADER, entry.raw[entry.prediction + 10 :], label.value[10:], tail)
        )
        unreadable = None
        version = versions[at]
        if version is not None:
            seconds = max((label.micros - micros) / 1_000_000, 0.0)
            if i in groups:
                delta = joining.perf.window(version, micros)
                counted = [delta.window, *(delta.group(s, g) for s, g in groups[i])]
                unreadable = count_outcome(counted, prediction, score, label.actual, seconds)
            else:
                window = counting.window(version, micros)
                unreadable = window.outcome_error(prediction, score, label.actual)
                if unreadable is None:
                    counting.add(window, prediction, score, label.actual, seconds)
        joining.joined(label.prediction_id, record.partition, value, unreadable, False)
        dirty[gathered.keys[i]] = joined_entry(entry, label)
    counting.done()


def _lights(
    joining: Joining, gathered: Gathered
) -> tuple[list[Light | None], list[ModelVersion | None], dict[int, list[tuple[str, str]]]]:
    """What counting needs of each gathered label's prediction, read column by column (None
    where the columns cannot give it exactly); the versions of the batches it names; the
    segment groups of those of versions that declare segments."""
    values = [entry.raw[entry.prediction :] for entry in gathered.entries]
    decoded = decode_predictions(values, PREDICTIONS)
    lights: list[Light | None] = [None] * len(values)
    versions: list[ModelVersion | None] = []
    groups: dict[int, list[tuple[str, str]]] = {}
    for at, batch in enumerate(decoded.batches):
        version = joining.perf.version(batch.model_id, batch.model_version)
        versions.append(version)
        _batch_lights(batch, at, lights)
        if version is None or not declares_segments(version):
            continue
        for row in batch.rows.tolist():
            try:
                event = PREDICTIONS.decode(values[row])
            except DecodeError:
                lights[row] = None
                continue
            groups[row] = event_groups(version, event)
    return lights, versions, groups


def _batch_lights(batch: Batch, at: int, lights: list[Light | None]) -> None:
    """Each row's light (see ``Light``; None where not exact), into ``lights``."""
    column = batch.prediction
    vocab = column.vocab
    for row, micros, kind, number, code, score in zip(
        batch.rows.tolist(),
        batch.timestamps.tolist(),
        column.kinds.tolist(),
        column.numbers.tolist(),
        column.codes.tolist(),
        batch.score.tolist(),
        strict=True,
    ):
        prediction: Label
        if kind == DOUBLE:
            prediction = number
        elif kind == BOOLEAN:
            prediction = number != 0.0
        elif kind == STRING:
            prediction = vocab[code]
        elif kind == LONG and abs(number) < _EXACT:
            prediction = int(number)
        else:
            continue
        lights[row] = (at, micros, prediction, None if score != score else score)
