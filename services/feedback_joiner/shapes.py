"""The joiner's plain records: the topics it reads and writes, and the counts of what it did."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Counts", "Topics"]


@dataclass(frozen=True)
class Topics:
    predictions: str
    feedback: str
    outcomes: str
    changelog: str
    partials: str = "vigil.performance.partials.v1"


@dataclass
class Counts:
    """What the joiner did, committed."""

    indexed: int = 0  # predictions taken
    joined: int = 0  # outcomes written
    corrections: int = 0  # outcomes that replace an earlier label
    early: int = 0  # feedback that came before its prediction
    duplicates: int = 0  # resent predictions or feedback ids, joined once
    orphaned: int = 0  # feedback forgotten at the horizon without its prediction
    expired: int = 0  # ids forgotten at the horizon
    unjudged: int = 0  # outcomes of a label the model's task cannot read (dead-lettered)
