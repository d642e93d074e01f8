"""The multivariate check's mathematics: robust standardising, the PCA of a reference's numeric
features, and per-event reconstruction errors against it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vigil.drift.values import Floats, numeric_values
from vigil.wire.columns import Column
from vigil.wire.records import MultivariateReference

__all__ = [
    "MULTIVARIATE_CLIP",
    "MULTIVARIATE_VARIANCE",
    "multivariate_reference",
    "reconstruction_errors",
    "residual_basis",
    "standardise",
]

MULTIVARIATE_VARIANCE = 0.9  # share of the standardised variance the PCA components keep
MULTIVARIATE_CLIP = 5.0  # standardised values are clipped to +-this for the PCA
_IQR_OF_NORMAL = 1.3489795003921634  # interquartile range of the standard normal


def reconstruction_errors(
    reference: MultivariateReference, basis: Floats, standardised: Floats
) -> Floats:
    """Per-event PCA reconstruction error: ``|z - C^T C z|^2 / F`` for each column ``z``.

    ``standardised`` is F x n (one row per feature, already centred and scaled); ``basis`` the
    orthonormal complement of the kept components (rows), so the residual's squared norm is
    ``|basis z|^2``.
    """
    residual = basis @ standardised
    errors: Floats = np.einsum("ij,ij->j", residual, residual)
    return errors / len(reference.features)


def standardise(values: Floats, center: Floats, inverse_scale: Floats) -> Floats:
    """Standardised values for the multivariate check, in place: F x n, one row per feature.

    ``(x - center) / scale`` with the reference's median as center and its interquartile range
    / 1.349 as scale (its std where that is 0), clipped to +-``MULTIVARIATE_CLIP``: heavy-tailed
    features (a Student-t with 2 degrees of freedom has no variance) would otherwise make the
    mean reconstruction error of a window hinge on its few most extreme events. Missing values
    are imputed with the center (0 after standardising).
    """
    values -= center[:, None]
    values *= inverse_scale[:, None]
    np.clip(values, -MULTIVARIATE_CLIP, MULTIVARIATE_CLIP, out=values)
    return values


def residual_basis(components: Floats, size: int) -> Floats:
    """Orthonormal rows spanning what the components leave out."""
    projector = np.eye(size) - components.T @ components
    values, vectors = np.linalg.eigh(projector)
    return np.ascontiguousarray(vectors[:, values > 0.5].T)


def multivariate_reference(
    names: Sequence[str], columns: Sequence[Column], n: int
) -> MultivariateReference | None:
    """PCA on the robustly standardised numeric features; see :func:`standardise`."""
    kept: list[str] = []
    rows: list[Floats] = []
    centers: list[float] = []
    scales: list[float] = []
    for name, column in zip(names, columns, strict=True):
        x, valid, _, _ = numeric_values(column.numbers, column.kinds)
        if x.size == 0:
            continue
        q1, center, q3 = (float(q) for q in np.quantile(x, [0.25, 0.5, 0.75]))
        scale = (q3 - q1) / _IQR_OF_NORMAL
        if not scale > 0:
            scale = float(x.std()) or 1.0
        rows.append(column.numbers if valid is None else np.where(valid, column.numbers, center))
        kept.append(name)
        centers.append(center)
        scales.append(scale)
    size = len(kept)
    if size < 2 or n < 2:
        return None
    z = standardise(np.vstack(rows), np.asarray(centers), 1.0 / np.asarray(scales))
    values, vectors = np.linalg.eigh(z @ z.T / n)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    total = values.sum()
    share = np.cumsum(values) / total if total > 0 else np.ones(size)
    k = int(np.searchsorted(share, MULTIVARIATE_VARIANCE - 1e-12) + 1)
    # At most F - 1 components, so that a change of correlation always leaves a residual.
    k = max(1, min(k, size - 1))
    components = np.ascontiguousarray(vectors[:, :k].T)
    reference = MultivariateReference(
        features=kept,
        center=centers,
        scale=scales,
        components=components.tolist(),
        error_mean=0.0,
        error_std=0.0,
    )
    errors = reconstruction_errors(reference, residual_basis(components, size), z)
    reference.error_mean = float(errors.mean())
    reference.error_std = float(errors.std())
    return reference
