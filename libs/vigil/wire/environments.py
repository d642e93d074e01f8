"""Serving environments: the ``EnvironmentReport`` (mirror of
``schemas/vigil.EnvironmentReport.avsc``) the SDK publishes on ``vigil.environments.v1``, and
how it differs from the environment a version was validated in. No I/O.

>>> validated = Environment(python="3.11.9", packages={"scikit-learn": "1.5.2", "numpy": "2.1"})
>>> served = EnvironmentReport(model_id="m", model_version="1", host="h", python="3.11.4",
...     packages={"scikit_learn": "1.5.2"}, reported_at=T0)
>>> [(m.kind, m.name) for m in mismatches(validated, served)]
[('python', 'python'), ('missing', 'numpy')]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from vigil.wire.base import Record
from vigil.wire.checks import Check
from vigil.wire.records import Environment

__all__ = [
    "EnvironmentCheck",
    "EnvironmentReport",
    "Mismatch",
    "environment_readings",
    "mismatches",
    "normalised",
]

T0 = datetime(2026, 1, 1, tzinfo=UTC)  # for the doctest
_SEPARATORS = re.compile(r"[-_.]+")


def normalised(name: str) -> str:
    """A distribution's name as PEP 503 compares them: ``Scikit_Learn`` is ``scikit-learn``."""
    return _SEPARATORS.sub("-", name).lower()


class EnvironmentReport(Record):
    """Python and installed distributions of one host serving one model version."""

    model_id: str
    model_version: str
    host: str
    python: str
    packages: dict[str, str] = Field(default_factory=dict)
    reported_at: datetime
    sdk: str | None = None

    @property
    def key(self) -> str:
        """Key on the compacted environments topic: one record per host of a version."""
        return f"{self.model_id}/{self.model_version}/{self.host}"


@dataclass(frozen=True)
class Mismatch:
    """One way a serving host differs from the validated environment."""

    kind: Literal["python", "missing", "version"]
    name: str  # "python", or the package's name as validated
    expected: str
    served: str | None

    def describe(self) -> str:
        """The mismatch in a sentence."""
        if self.kind == "missing":
            return f"{self.name} {self.expected} was validated but is not installed"
        return f"{self.name} is {self.served}, validated with {self.expected}"


def mismatches(validated: Environment, served: EnvironmentReport) -> list[Mismatch]:
    """How ``served`` differs from ``validated``: another Python, or a validated package that
    is missing or at another version. Packages that were not validated are not judged."""
    found: list[Mismatch] = []
    if validated.python and validated.python != served.python:
        found.append(Mismatch("python", "python", validated.python, served.python))
    installed = {normalised(name): version for name, version in served.packages.items()}
    for name, version in sorted(validated.packages.items()):
        actual = installed.get(normalised(name))
        if actual is None:
            found.append(Mismatch("missing", name, version, None))
        elif actual != version:
            found.append(Mismatch("version", name, version, actual))
    return found


class EnvironmentCheck(Check):
    """One serving host's environment judged against the one its version was validated in,
    as alerting reads it (the ``environment_mismatch`` signal)."""

    host: str
    python: str
    mismatches: list[str] = Field(default_factory=list)  # each in a sentence

    @classmethod
    def of(cls, served: EnvironmentReport, validated: Environment) -> EnvironmentCheck:
        """The check of one host's report."""
        at = served.reported_at
        return cls(
            report_id=f"{served.key}/environment/{at.isoformat()}",
            model_id=served.model_id,
            model_version=served.model_version,
            window_start=at,
            window_end=at,
            created_at=at,
            host=served.host,
            python=served.python,
            mismatches=[m.describe() for m in mismatches(validated, served)],
        )


def environment_readings(
    check: EnvironmentCheck,
) -> Iterator[tuple[str | None, float, dict[str, str]]]:
    """The host (the alert's subject) and how many ways it differs from the validated one."""
    notes = {"host": check.host, "mismatches": "; ".join(check.mismatches) or "none"}
    yield check.host, float(len(check.mismatches)), notes
