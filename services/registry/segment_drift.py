"""Drift per segment, asked for: ``GET /v1/models/{id}/versions/{v}/drift/segments``.

The drift detector judges each version's windows as a whole. Asked for one of the segments a
version declares (a category, a binned number, a tag, or the crossed pair), the registry reads
that version's predictions of the period from the archive's inference tables (the Parquet files
``python -m archive`` writes under ``VIGIL_REGISTRY_ARCHIVE_URL``, the archive's
``VIGIL_ARCHIVE_URL``), puts each in its group, and judges each group's events against the
version's reference exactly as the detector judges a window (``vigil.drift``: the same bins,
statistics, thresholds and minimum events; the segment's own features, one value within a
group, are left out): which group drifted, on which features. At most
``VIGIL_REGISTRY_SEGMENT_DRIFT_MAX_ROWS`` rows are read (the answer says when it stopped).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from vigil.drift.verdicts import judge, min_events
from vigil.drift.window import WindowProfile
from vigil.wire.archive_paths import partition_directory
from vigil.wire.base import as_utc
from vigil.wire.records import ModelVersion, ReferenceProfile
from vigil.wire.segments import CROSS, effective_segments, value_groups

__all__ = ["ArchivedRows", "read_archive", "segment_drift", "segment_names"]

_COLUMNS = ["model_id", "model_version", "timestamp", "features", "prediction", "score", "tags"]


@dataclass
class ArchivedRows:
    """A version's archived predictions of a period, as the drift profile reads them."""

    features: list[dict[str, Any]]
    tags: list[dict[str, str]]
    predictions: list[Any]
    scores: list[float | None]
    truncated: bool = False


def _days(since: datetime, until: datetime) -> list[date]:
    first, last = as_utc(since).date(), as_utc(until - timedelta(microseconds=1)).date()
    return [first + timedelta(days=d) for d in range((last - first).days + 1)]


def read_archive(
    url: str, version: ModelVersion, since: datetime, until: datetime, max_rows: int
) -> ArchivedRows:
    """The version's rows with ``since <= timestamp < until``, from its date directories."""
    fs, root = url_to_fs(url)
    found = ArchivedRows([], [], [], [])
    for day in _days(since, until):
        directory = partition_directory(root, version.model_id, version.version, day.isoformat())
        for path in sorted(fs.glob(f"{directory}/*.parquet")):
            table = pq.read_table(path, columns=_COLUMNS, filesystem=fs)
            keep = pc.and_(
                pc.and_(
                    pc.equal(table["model_id"], version.model_id),
                    pc.equal(table["model_version"], version.version),
                ),
                pc.and_(
                    pc.greater_equal(table["timestamp"], as_utc(since)),
                    pc.less(table["timestamp"], as_utc(until)),
                ),
            )
            table = table.filter(keep)
            room = max_rows - len(found.features)
            if table.num_rows > room:
                table, found.truncated = table.slice(0, room), True
            columns = table.to_pydict()
            found.features += [orjson.loads(f) for f in columns["features"]]
            found.tags += [orjson.loads(t) or {} for t in columns["tags"]]
            found.predictions += [orjson.loads(p) for p in columns["prediction"]]
            found.scores += columns["score"]
            if found.truncated:
                return found
    return found


def segment_names(version: ModelVersion) -> list[str]:
    """The segments drift can be asked by: the declared ones and the crossed pair."""
    names = [s.name for s in effective_segments(version.segments, version.sensitive_attributes)]
    return names + ([CROSS.join(version.segment_cross)] if len(version.segment_cross) == 2 else [])


def _groups(version: ModelVersion, segment: str, rows: ArchivedRows) -> list[str]:
    cross = version.segment_cross
    needed = set(cross) if segment == CROSS.join(cross) else {segment}
    specs = [
        s
        for s in effective_segments(version.segments, version.sensitive_attributes)
        if s.name in needed
    ]
    return [
        dict(value_groups(specs, cross, features, tags))[segment]
        for features, tags in zip(rows.features, rows.tags, strict=True)
    ]


def _without(version: ModelVersion, segment: str) -> ReferenceProfile:
    """The version's reference without the segment's own features: within a group they are
    one value (or one bin) by construction, not drift (a PCA over any of them is left out)."""
    reference = version.reference
    assert reference is not None
    own = set(version.segment_cross) if segment == CROSS.join(version.segment_cross) else {segment}
    pca = reference.multivariate
    return reference.model_copy(
        update={
            "features": [f for f in reference.features if f.name not in own],
            "multivariate": None if pca is not None and own & set(pca.features) else pca,
        }
    )


def segment_drift(version: ModelVersion, segment: str, rows: ArchivedRows) -> list[dict[str, Any]]:
    """Each group's events judged against the version's reference, largest group first."""
    reference = _without(version, segment)
    members: dict[str, list[int]] = defaultdict(list)
    for i, group in enumerate(_groups(version, segment, rows)):
        members[group].append(i)
    needed = min_events(version)
    answers = []
    for group, at in sorted(members.items(), key=lambda g: (-len(g[1]), g[0])):
        window = WindowProfile(reference, version.features)
        window.add_rows(
            [rows.features[i] for i in at],
            predictions=[rows.predictions[i] for i in at],
            scores=[rows.scores[i] for i in at],
        )
        verdict = judge(version, reference, window)
        answers.append(
            {
                "group": group,
                "events": len(at),
                "judged": len(at) >= needed,
                "dataset_drift": verdict.dataset_drift,
                "drift_share": verdict.drift_share,
                "drifted_features": verdict.drifted_features,
                "features": [f.model_dump(mode="json") for f in verdict.features],
                "outputs": [f.model_dump(mode="json") for f in verdict.outputs],
            }
        )
    return answers
