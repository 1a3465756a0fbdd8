"""Label statistics of a unified manifest, and class weights for the loss.

The manifest has one row per image with ``split`` and ``px_<class>`` pixel-count columns (one per
name in :data:`~stages.core.common.classes.CLASS_NAMES`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from stages.core.common.classes import CLASS_NAMES, NUM_CLASSES

PIXEL_COLUMNS = [f"px_{name}" for name in CLASS_NAMES]
EMPIRICAL_WEIGHTS = np.array([0.5, 3, 3, 1, 0.5, 3, 2, 0.5, 1.5, 1.5, 1.5], dtype=np.float64)
WEIGHT_MODES = ("equal", "empirical", "proportional")


def _group_statistics(rows: pd.DataFrame) -> dict[str, Any]:
    pixels = rows[PIXEL_COLUMNS].to_numpy(dtype=np.int64)
    counts = pixels.sum(axis=0)
    total = int(counts.sum())
    return {
        "images": len(rows),
        "pixels": total,
        "pixel_count": {name: int(n) for name, n in zip(CLASS_NAMES, counts)},
        "pixel_frequency": {name: (float(n) / total if total else 0.0) for name, n in zip(CLASS_NAMES, counts)},
        "images_with_class": {name: int(n) for name, n in zip(CLASS_NAMES, (pixels > 0).sum(axis=0))},
    }


def label_statistics(manifest: pd.DataFrame) -> dict[str, Any]:
    """Pixel counts and frequencies per class, and the number of images holding each class.

    Returns ``{"classes": [...], "overall": stats, "splits": {split: stats}, "sources": {source: stats}}``
    where ``stats`` is ``{"images", "pixels", "pixel_count", "pixel_frequency", "images_with_class"}``
    (the last three keyed by class name). ``sources`` is present only when the manifest has a
    ``source`` column. Raises ``KeyError`` naming any missing ``px_`` column.
    """
    missing = [c for c in PIXEL_COLUMNS if c not in manifest.columns]
    if missing:
        raise KeyError(f"manifest lacks pixel-count columns {missing}")
    stats: dict[str, Any] = {"classes": list(CLASS_NAMES), "overall": _group_statistics(manifest)}
    if "split" in manifest.columns:
        stats["splits"] = {str(s): _group_statistics(g) for s, g in manifest.groupby("split", sort=True)}
    if "source" in manifest.columns:
        stats["sources"] = {str(s): _group_statistics(g) for s, g in manifest.groupby("source", sort=True)}
    return stats


def pixel_counts(manifest: pd.DataFrame, split: str | None = "train") -> np.ndarray:
    """``(11,)`` int64 pixel count per class over one split (all rows when ``split`` is None)."""
    rows = manifest if split is None else manifest[manifest["split"] == split]
    return rows[PIXEL_COLUMNS].to_numpy(dtype=np.int64).sum(axis=0)


def class_weights(pixel_counts: np.ndarray, mode: str | Sequence[float]) -> np.ndarray:
    """``(11,)`` float64 loss weights per class from ``(11,)`` training pixel counts.

    Modes:
    - ``"equal"``: all ones.
    - ``"empirical"``: the seed's hand-tuned vector ``[0.5, 3, 3, 1, 0.5, 3, 2, 0.5, 1.5, 1.5, 1.5]``.
    - ``"proportional"``: ``1 / frequency``, divided by the geometric mean of those values over the
      classes that occur, so a class of typical frequency gets about 1. A class with no pixels
      gets 1.0: it has no target pixels, so its weight changes no cross-entropy term, and a
      neutral finite value (not inf or 0) stays harmless for other losses and for fine-tuning.
    - a sequence of 11 non-negative numbers passed in place of a mode name: used as given.
    """
    if not isinstance(mode, str):
        weights = np.asarray(mode, dtype=np.float64)
        if weights.shape != (NUM_CLASSES,) or not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(f"custom class weights must be {NUM_CLASSES} finite non-negative numbers, got {mode!r}")
        return weights
    if mode == "equal":
        return np.ones(NUM_CLASSES)
    if mode == "empirical":
        return EMPIRICAL_WEIGHTS.copy()
    if mode != "proportional":
        raise ValueError(f"class weight mode must be one of {', '.join(WEIGHT_MODES)} or a list of "
                         f"{NUM_CLASSES} numbers, not {mode!r}")
    counts = np.asarray(pixel_counts, dtype=np.float64)
    if counts.shape != (NUM_CLASSES,) or (counts < 0).any():
        raise ValueError(f"pixel_counts must be {NUM_CLASSES} non-negative counts, got shape {counts.shape}")
    present = counts > 0
    if not present.any():
        raise ValueError("no labelled pixels: cannot compute proportional class weights")
    inverse = counts[present].sum() / counts[present]  # 1 / frequency
    weights = np.ones(NUM_CLASSES)
    weights[present] = inverse / np.exp(np.log(inverse).mean())
    return weights
