"""Which feedback a model takes, from its versions in the catalog: no I/O.

Feedback names a model but not a version, so an ``actual`` is accepted when any version that
is not retired would take it: a number for a regression model; for a binary one its positive
label or the negative (true/1 and false/0 when it names no other positive label; with a
positive label of its own, the other classes of its reference's predictions, when it has
them); for a multiclass one a class label (text, an integer or a boolean), whichever: the
registry has no list of classes, and a class the model never predicts is just what its
feedback should be able to say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vigil.adapters.ports import Catalog
from vigil.performance.labels import DEFAULT_POSITIVE, label_text
from vigil.wire.records import ModelVersion
from vigil.wire.validation import FieldError, describe

__all__ = ["LabelRule", "ModelLabels", "check_models", "unknown_models"]

# What a binary model that names no other positive label is told, lower-cased.
_BOOLEAN_LABELS = frozenset({"true", "1", "false", "0"})


@dataclass(frozen=True)
class LabelRule:
    """What one version takes as ``actual``: any finite number (``numbers``), or a class
    label, one of ``classes`` (compared lower-cased when ``folded``) unless that is None."""

    expected: str
    numbers: bool = False
    classes: frozenset[str] | None = None
    folded: bool = False

    @classmethod
    def of(cls, version: ModelVersion) -> LabelRule:
        if version.task == "regression":
            return cls("a number (the model is a regression model)", numbers=True)
        if version.task == "multiclass":
            return cls("a class label: text, an integer or a boolean")
        positive = version.positive_label
        if positive is None or positive.lower() in DEFAULT_POSITIVE:
            return cls(
                "true or 1 (the positive class) or false or 0 (the negative)",
                classes=_BOOLEAN_LABELS,
                folded=True,
            )
        profile = version.reference.prediction if version.reference else None
        seen = set(profile.all_categories or profile.categories) if profile else set()
        negatives = sorted(seen - {positive})
        if not negatives:  # the negative class is not known: any class label
            return cls(f"a class label ({positive!r} is the positive class)")
        named = " or ".join(repr(n) for n in negatives)
        return cls(
            f"{positive!r} (the positive class) or {named} (the negative)",
            classes=frozenset({positive, *negatives}),
        )

    def accepts(self, actual: Any) -> bool:
        kind = type(actual)
        if self.numbers:
            return kind is int or kind is float
        if kind is float and not actual.is_integer():  # 0.5 is no class
            return False
        if self.classes is None:
            return True
        text = label_text(actual)
        return (text.lower() if self.folded else text) in self.classes


@dataclass(frozen=True)
class ModelLabels:
    """What a model's feedback may say: the rules of its versions that are not retired (none
    if every version is), or nothing at all if the registry does not know the model."""

    model_id: str
    registered: bool
    rules: tuple[LabelRule, ...]

    @classmethod
    def of(cls, model_id: str, versions: Sequence[ModelVersion]) -> ModelLabels:
        live = (LabelRule.of(v) for v in versions if v.status != "retired")
        return cls(model_id, bool(versions), tuple(dict.fromkeys(live)))

    def problem(self, actual: Any, index: int) -> FieldError | None:
        """Why feedback with this ``actual`` (None: none given) cannot be for this model."""
        if not self.registered:
            return FieldError("model_id", "a registered model", describe(self.model_id), index)
        if not self.rules:
            return FieldError(
                "model_id",
                "a model with a version that is not retired",
                f"{describe(self.model_id)} (every version is retired)",
                index,
            )
        if actual is None or any(rule.accepts(actual) for rule in self.rules):
            return None
        expected = " or ".join(rule.expected for rule in self.rules)
        return FieldError(
            "actual", f"{expected}, for model {self.model_id!r}", describe(actual), index
        )


def unknown_models(items: Sequence[dict[str, Any] | None], catalog: Catalog) -> bool:
    """Whether any item names a model the catalog has no version of (yet)."""
    named = {item["model_id"] for item in items if item is not None and item["model_id"]}
    return any(not catalog.versions(model_id) for model_id in named)


def check_models(items: Sequence[dict[str, Any] | None], catalog: Catalog) -> list[FieldError]:
    """An error for each item naming a model the registry does not know or has retired (every
    version), or with an ``actual`` its model does not take. Items without a model_id cannot
    be checked before the join: they pass."""
    errors: list[FieldError] = []
    models: dict[str, ModelLabels] = {}
    for i, item in enumerate(items):
        if item is None or item["model_id"] is None:
            continue
        model_id = item["model_id"]
        labels = models.get(model_id)
        if labels is None:
            labels = models[model_id] = ModelLabels.of(model_id, catalog.versions(model_id))
        error = labels.problem(item["actual"], i)
        if error is not None:
            errors.append(error)
    return errors
