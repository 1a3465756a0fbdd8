"""Colour-coded labels (mut1ny, user folders) to class ids, tolerating anti-aliased edges.

A pixel whose colour is within ``tolerance`` (Euclidean RGB distance) of a palette colour is snapped
to it and counted. Pixels farther from every colour are "off-palette": if they are more than
``max_off_palette`` of the image the file is refused; otherwise each takes the class of its nearest
on-palette pixel (an anti-aliased edge belongs to one of the regions it separates) and is counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from stages.core.common.io import BadInputError

DEFAULT_TOLERANCE = 40.0
DEFAULT_MAX_OFF_PALETTE = 0.05
_MISSING = 255


@dataclass(frozen=True)
class SnapCounts:
    """Pixel counts of one snapped label: exact matches, snapped within tolerance, and off-palette."""

    exact: int
    snapped: int
    off_palette: int

    @property
    def total(self) -> int:
        return self.exact + self.snapped + self.off_palette


def _keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


class ColourPalette:
    """A colour -> class id table. ``colours`` ``(K, 3)`` uint8, ``class_ids`` ``(K,)`` ints < 255."""

    def __init__(self, colours, class_ids, tolerance: float = DEFAULT_TOLERANCE,
                 max_off_palette: float = DEFAULT_MAX_OFF_PALETTE):
        self.colours = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
        self.class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        if len(self.colours) != len(self.class_ids) or not len(self.colours):
            raise ValueError("a colour palette needs one class id per colour, and at least one colour")
        if len(np.unique(_keys(self.colours))) != len(self.colours):
            raise ValueError("a colour appears twice in the colour mapping")
        self.tolerance = float(tolerance)
        self.max_off_palette = float(max_off_palette)
        self._sorted_keys = np.sort(_keys(self.colours))
        self._sorted_ids = self.class_ids[np.argsort(_keys(self.colours))]

    def to_ids(self, rgb: np.ndarray, path: str | Path = "<array>") -> tuple[np.ndarray, SnapCounts]:
        """``(H, W, 3)`` uint8 colours -> (``(H, W)`` uint8 class ids, counts). Raises ``BadInputError``."""
        keys = _keys(rgb)
        uniq, inverse = np.unique(keys, return_inverse=True)
        inverse = inverse.reshape(keys.shape)
        pos = np.clip(np.searchsorted(self._sorted_keys, uniq), 0, len(self._sorted_keys) - 1)
        exact = self._sorted_keys[pos] == uniq
        uniq_ids = np.where(exact, self._sorted_ids[pos], _MISSING)
        uniq_state = np.where(exact, 0, 2)  # 0 exact, 1 snapped, 2 off-palette
        if not exact.all():
            colours = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1)[~exact]
            dist = np.linalg.norm(colours[:, None, :].astype(np.float32)
                                  - self.colours[None, :, :].astype(np.float32), axis=2)
            nearest = dist.argmin(axis=1)
            close = dist[np.arange(len(colours)), nearest] <= self.tolerance
            idx = np.flatnonzero(~exact)
            uniq_ids[idx[close]] = self.class_ids[nearest[close]]
            uniq_state[idx[close]] = 1
        per_colour = np.bincount(inverse.ravel(), minlength=len(uniq))
        state_counts = np.bincount(uniq_state, weights=per_colour, minlength=3).astype(np.int64)
        counts = SnapCounts(int(state_counts[0]), int(state_counts[1]), int(state_counts[2]))
        if counts.off_palette > self.max_off_palette * max(counts.total, 1):
            worst = uniq[(uniq_state == 2)][np.argmax(per_colour[uniq_state == 2])]
            raise BadInputError(path, (
                f"{counts.off_palette / counts.total:.1%} of the pixels are off-palette (more than "
                f"{self.max_off_palette:.1%}); the most common stray colour is "
                f"{((int(worst) >> 16) & 255, (int(worst) >> 8) & 255, int(worst) & 255)}; "
                f"is this the right colour mapping?"))
        ids = uniq_ids[inverse]
        if counts.off_palette:
            ids = _fill_from_nearest(ids, ids == _MISSING)
        return ids.astype(np.uint8), counts


def _fill_from_nearest(ids: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Give every ``missing`` pixel the id of its nearest non-missing pixel. ``(H, W)`` in and out."""
    if missing.all():
        raise ValueError("no on-palette pixel to fill from")
    _, (rows, cols) = ndimage.distance_transform_edt(missing, return_distances=True, return_indices=True)
    return ids[rows, cols]
