"""A model's feedback summary, no I/O: its experts' flags, how often each kind, and how far the
experts agree (``vigil.agreement``).

A *judgement* is an expert's newest flag on an item: rates and agreement count one per
(item, expert), so an expert who changes their mind counts once, as they now judge it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.agreement import FlagRates, agreement, flag_rates, flag_rates_by_reviewer

__all__ = ["against_truth", "judgements", "summarise"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def judgements(flags: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """item -> reviewer -> flag, each expert's newest flag (``flags`` newest first)."""
    found: dict[str, dict[str, str]] = {}
    for flag in flags:
        by_reviewer = found.setdefault(flag["prediction_id"], {})
        by_reviewer.setdefault(flag["reviewer"], flag["flag"])
    return found


def _rates(rates: FlagRates) -> dict[str, Any]:
    return {"judgements": rates.judgements, "counts": dict(rates.counts), "rates": rates.rates}


def _windows(flags: Sequence[Mapping[str, Any]], window_seconds: float) -> list[dict[str, Any]]:
    """The judgements of each window of the flags' times, newest window first."""
    width = int(window_seconds * 1_000_000)
    newest: dict[tuple[str, str], int] = {}
    for flag in flags:  # newest first: the first one seen is the judgement
        newest.setdefault((flag["prediction_id"], flag["reviewer"]), flag["timestamp"])
    by_window: dict[int, dict[str, dict[str, str]]] = {}
    for flag in flags:
        key = (flag["prediction_id"], flag["reviewer"])
        if newest[key] != flag["timestamp"]:
            continue
        start = flag["timestamp"] // width * width
        by_window.setdefault(start, {}).setdefault(flag["prediction_id"], {})[flag["reviewer"]] = (
            flag["flag"]
        )
    return [
        {"start": _time(start), "end": _time(start + width), **_rates(flag_rates(judged))}
        for start, judged in sorted(by_window.items(), reverse=True)
    ]


def _class(value: Any) -> str | None:
    """A label as a class to compare (``True``, ``1`` and ``"true"`` alike); None for a
    fraction (a regression value: an expert's ``ok`` or ``incorrect`` is not checkable)."""
    if isinstance(value, float) and not value.is_integer():
        return None
    text = (str(int(value)) if isinstance(value, float) else str(value)).lower()
    return {"1": "true", "0": "false"}.get(text, text)


def _share(agreeing: int, total: int) -> float | None:
    return agreeing / total if total else None


def against_truth(
    judged: Mapping[str, Mapping[str, str]], truths: Mapping[str, tuple[Any, Any]]
) -> dict[str, Any]:
    """Experts against ground truth where both exist: an ``incorrect`` judgement agrees when
    the prediction differs from the true outcome, an ``ok`` one when it equals it (other
    flags say nothing about correctness)."""
    agreeing: dict[str, int] = {}
    total: dict[str, int] = {}
    items = 0
    for pid, by_reviewer in judged.items():
        pair = truths.get(pid)
        if pair is None:
            continue
        predicted, actual = _class(pair[0]), _class(pair[1])
        calls = {r: f for r, f in by_reviewer.items() if f in ("incorrect", "ok")}
        if predicted is None or actual is None or not calls:
            continue
        items += 1
        wrong = predicted != actual
        for reviewer, flag in calls.items():
            total[reviewer] = total.get(reviewer, 0) + 1
            agreeing[reviewer] = agreeing.get(reviewer, 0) + ((flag == "incorrect") == wrong)
    every = sum(total.values())
    return {
        "items": items,
        "judgements": every,
        "agreeing_share": _share(sum(agreeing.values()), every),
        "reviewers": {
            r: {"judgements": n, "agreeing_share": _share(agreeing[r], n)}
            for r, n in sorted(total.items())
        },
    }


def summarise(
    model_id: str,
    flags: Sequence[Mapping[str, Any]],
    limit: int,
    window_seconds: float,
    truths: Mapping[str, tuple[Any, Any]] | None = None,
) -> dict[str, Any]:
    """The summary of a model's ``flags`` (newest first), listing the newest ``limit``;
    with ``truths`` (prediction id -> prediction, true outcome), the experts against them."""
    judged = judgements(flags)
    agreed = agreement(judged)
    return {
        "model_id": model_id,
        "total_flags": len(flags),
        "judged_items": len(judged),
        **_rates(flag_rates(judged)),
        "reviewers": {r: _rates(rates) for r, rates in flag_rates_by_reviewer(judged).items()},
        "windows": _windows(flags, window_seconds),
        "agreement": {
            "items": agreed.items,
            "pairs": agreed.pairs,
            "agreeing_share": agreed.agreeing_share,
            "fleiss_kappa": agreed.fleiss_kappa,
            "cohen_kappa": [
                {"reviewers": list(pair), "kappa": kappa}
                for pair, kappa in sorted(agreed.cohen_kappa.items())
            ],
        },
        "against_truth": against_truth(judged, truths or {}),
        "flags": [
            {
                "feedback_id": f["feedback_id"],
                "prediction_id": f["prediction_id"],
                "flag": f["flag"],
                "comment": f.get("comment"),
                "reviewer": f["reviewer"],
                "actual": f.get("actual"),
                "timestamp": _time(f["timestamp"]),
            }
            for f in flags[:limit]
        ],
    }
