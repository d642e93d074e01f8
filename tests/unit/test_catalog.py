"""The model catalog every service holds: retired versions shrink to markers."""

from __future__ import annotations

from tests.samples import MODEL
from tests.unit.test_stages import _catalog
from vigil.adapters.catalog import ModelCatalog, retirement_marker
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion

VERSIONS = Codec(ModelVersion)


def _referenced() -> ModelVersion:
    version = _catalog().get("m", "1")
    assert version is not None and version.reference is not None
    return version


def test_a_retired_version_is_kept_as_a_small_marker() -> None:
    full = _referenced()
    catalog = ModelCatalog()
    catalog.apply(full)
    catalog.apply(full.model_copy(update={"status": "retired"}))
    marker = catalog.get("m", "1")
    assert marker is not None
    assert (marker.status, marker.features, marker.reference) == ("retired", [], None)
    assert (marker.risk, marker.owner, marker.drift) == (full.risk, full.owner, full.drift)
    assert len(VERSIONS.encode(marker)) * 20 < len(VERSIONS.encode(full))
    assert [v.version for v in catalog.versions("m")] == ["1"]  # still known: not "unknown"
    assert catalog.model_ids() == ["m"]


def test_a_tombstone_removes_a_retired_version_altogether() -> None:
    catalog = ModelCatalog()
    catalog.apply(MODEL.model_copy(update={"status": "retired"}))
    catalog.remove(MODEL.key)
    assert catalog.get(MODEL.model_id, MODEL.version) is None and len(catalog) == 0


def test_a_version_back_in_service_is_kept_in_full_again() -> None:
    full = _referenced()
    catalog = ModelCatalog()
    catalog.apply(full.model_copy(update={"status": "retired"}))
    catalog.apply(full.model_copy(update={"status": "challenger"}))
    assert catalog.get("m", "1") == full.model_copy(update={"status": "challenger"})


def test_a_catalog_that_keeps_retired_versions_keeps_them_in_full() -> None:
    retired = _referenced().model_copy(update={"status": "retired"})
    catalog = ModelCatalog(keep_retired=True)
    catalog.apply(retired)
    assert catalog.get("m", "1") == retired
    assert retirement_marker(retired).reference is None
