"""Which feature names of an overfull batch get a column: the known ones, then the names the
most messages carry (the first seen among equals), up to the cap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence, Set

from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent

__all__ = ["most_used_names"]


def most_used_names(
    values: Sequence[bytes], codec: Codec[PredictionEvent], known: Set[str], cap: int
) -> frozenset[str]:
    """The ``known`` feature names in ``values`` and the ``cap`` others the most messages carry.

    Names one producer invents per message are carried by one message each; a model's own names
    by every message of the model, so they are kept whatever order the batch is in.
    """
    counts: Counter[str] = Counter()
    for value in values:
        try:
            counts.update(list(codec.decode_dict(value)["features"]))
        except Exception:  # undecodable: the decoder reports it as a failure
            continue
    present = frozenset(name for name in counts if name in known)
    # Sorting is stable: among names carried equally often, the first seen wins.
    ranked = sorted((name for name in counts if name not in known), key=lambda n: -counts[n])
    return present | frozenset(ranked[:cap])
