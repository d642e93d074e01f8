"""What the review page shows and sends (no I/O): a flag's request, the true outcome typed in
a form, and the experts' flags in business terms where the model says what outcomes are worth.

Only what the numbers support: the feedback summary counts flags by kind, not which way an
``incorrect`` prediction erred, so a binary model's cost of its incorrect predictions is a
range between "all were false positives" and "all were false negatives".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vigil.performance.labels import typed_label

__all__ = [
    "FLAGS",
    "champion_of",
    "flag_request",
    "flag_terms",
    "item_terms",
    "money",
]

FLAGS = ("incorrect", "unexpected", "harmful", "ok")
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def flag_request(
    feedback_id: str, model_id: str, prediction_id: str, flag: str, comment: str, actual: str
) -> dict[str, Any]:
    """``POST /v1/feedback``'s body for one expert's flag (the reviewer is the key's)."""
    body: dict[str, Any] = {
        "feedback_id": feedback_id,
        "prediction_id": prediction_id,
        "model_id": model_id,
        "flag": flag,
        "source": "sme",
    }
    if comment.strip():
        body["comment"] = comment.strip()
    outcome = typed_label(actual)
    if outcome is not None:
        body["actual"] = outcome
    return body


def champion_of(model: Mapping[str, Any]) -> str | None:
    """The version that serves (the champion), else the newest registered one."""
    versions: Sequence[Mapping[str, Any]] = model.get("versions") or []
    champion = next((v for v in versions if v.get("status") == "champion"), None)
    chosen = champion or (versions[-1] if versions else None)
    return None if chosen is None else str(chosen.get("version"))


def money(amount: float, currency: str) -> str:
    """``-1640`` in EUR as ``-€1,640``; cents only when there are any."""
    symbol = _SYMBOLS.get(currency, f"{currency} ")
    digits = f"{abs(amount):,.0f}" if float(amount).is_integer() else f"{abs(amount):,.2f}"
    return f"{'-' if amount < 0 else ''}{symbol}{digits}"


def _range(low: float, high: float, currency: str) -> str:
    low, high = sorted((low, high))
    if low == high:
        return money(low, currency)
    return f"between {money(low, currency)} and {money(high, currency)}"


def _binary(n: int, value: Mapping[str, Any], version: str) -> list[str]:
    cur = str(value.get("currency") or "EUR")
    tp, fp = float(value.get("true_positive", 0)), float(value.get("false_positive", 0))
    tn, fn = float(value.get("true_negative", 0)), float(value.get("false_negative", 0))
    lines = [
        f"By version {version}'s business value, a false positive is worth {money(fp, cur)}"
        f" instead of {money(tn, cur)} (true negative), and a false negative"
        f" {money(fn, cur)} instead of {money(tp, cur)} (true positive)."
    ]
    if n:
        lines.append(
            f"The {n} judged incorrect cost {_range(n * (tn - fp), n * (tp - fn), cur)}"
            " against right calls: all false positives at one end, all false negatives at"
            " the other (the flags do not say which way each erred)."
        )
    return lines


def _multiclass(n: int, value: Mapping[str, Any], version: str) -> list[str]:
    cur = str(value.get("currency") or "EUR")
    matrix: Mapping[str, Mapping[str, float]] = value.get("matrix") or {}
    labels = sorted({*matrix, *(p for row in matrix.values() for p in row)})
    losses = [
        float(matrix.get(a, {}).get(a, 0.0)) - float(matrix.get(a, {}).get(p, 0.0))
        for a in labels
        for p in labels
        if p != a
    ]
    if not losses:
        return [f"Version {version}'s business value lists no labels to price a mistake."]
    line = (
        f"By version {version}'s value matrix a wrong label costs"
        f" {_range(min(losses), max(losses), cur)} against the right one"
    )
    if not n:
        return [line + "."]
    total = _range(n * min(losses), n * max(losses), cur)
    return [line + f"; the {n} judged incorrect: {total}."]


def flag_terms(
    summary: Mapping[str, Any], value: Mapping[str, Any] | None, task: str, version: str | None
) -> list[str]:
    """The experts' flags as sentences: counts and shares, then what the incorrect ones are
    worth by the version's business value, when it has one."""
    judgements = int(summary.get("judgements") or 0)
    if not judgements:
        return ["No expert has judged this model's predictions yet."]
    counts: Mapping[str, int] = summary.get("counts") or {}
    rates: Mapping[str, float] = summary.get("rates") or {}
    lines = [
        f"{int(counts.get(f, 0))} of {judgements} judgements flagged {f}"
        f" ({100 * float(rates.get(f, 0.0)):.1f} %)."
        for f in FLAGS
        if counts.get(f)
    ]
    incorrect = int(counts.get("incorrect", 0))
    if value is None or version is None:
        lines.append("The model has no business value definition: the counts say it all.")
    elif task == "binary":
        lines += _binary(incorrect, value, version)
    elif task == "multiclass":
        lines += _multiclass(incorrect, value, version)
    else:
        cost = money(
            float(value.get("cost_per_unit_error", 0)), str(value.get("currency") or "EUR")
        )
        lines.append(
            f"By version {version}'s business value each unit of error costs {cost}; flags"
            " do not say how large the errors were."
        )
    return lines


def item_terms(prediction: Any, value: Mapping[str, Any] | None, task: str) -> str:
    """What a binary prediction is worth if the expert finds it wrong; "" when unknown."""
    if value is None or task != "binary" or not isinstance(prediction, bool):
        return ""
    cur = str(value.get("currency") or "EUR")
    if prediction:
        wrong, right = float(value.get("false_positive", 0)), float(value.get("true_positive", 0))
        return (
            f"If this positive prediction is wrong it is a false positive, worth"
            f" {money(wrong, cur)} instead of {money(right, cur)}."
        )
    wrong, right = float(value.get("false_negative", 0)), float(value.get("true_negative", 0))
    return (
        f"If this negative prediction is wrong it is a false negative, worth"
        f" {money(wrong, cur)} instead of {money(right, cur)}."
    )
