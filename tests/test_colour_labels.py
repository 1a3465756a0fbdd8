"""Snapping anti-aliased colour labels to a palette."""
from __future__ import annotations

import numpy as np
import pytest

from stages.core.common.classes import CLASS_COLOURS, NUM_CLASSES
from stages.core.common.io import BadInputError
from stages.core.data.datasets.colour_labels import ColourPalette

PALETTE = ColourPalette(CLASS_COLOURS, range(NUM_CLASSES), tolerance=40, max_off_palette=0.05)


def _two_regions() -> np.ndarray:
    """(20, 20, 3): left half red (lips), right half gray (face)."""
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)
    rgb[:, 10:] = (128, 128, 128)
    return rgb


def test_exact_colours_map_to_their_ids():
    rgb = CLASS_COLOURS[np.arange(NUM_CLASSES)][None].repeat(3, axis=0)
    ids, counts = PALETTE.to_ids(rgb)
    assert (ids == np.arange(NUM_CLASSES)).all()
    assert counts.exact == rgb.shape[0] * NUM_CLASSES and counts.snapped == 0 and counts.off_palette == 0


def test_near_colours_are_snapped_and_counted():
    rgb = _two_regions()
    rgb[0, 0] = (240, 12, 8)  # JPEG-ish noise on red
    rgb[5, 15] = (140, 120, 130)
    ids, counts = PALETTE.to_ids(rgb)
    assert ids[0, 0] == 1 and ids[5, 15] == 7
    assert counts.snapped == 2 and counts.exact == 398


def test_edge_blends_take_a_neighbouring_class_and_are_counted():
    rgb = _two_regions()
    rgb[:, 9] = (190, 64, 64)  # halfway between red and gray: off-palette edge pixels (5%)
    ids, counts = PALETTE.to_ids(rgb)
    assert counts.off_palette == 20
    assert set(np.unique(ids[:, 9])) <= {1, 7}
    assert (ids[:, :9] == 1).all() and (ids[:, 10:] == 7).all()


def test_too_much_off_palette_is_refused_naming_the_file():
    rgb = _two_regions()
    rgb[:, 5:8] = (10, 200, 90)  # 15% stray colour
    with pytest.raises(BadInputError, match=r"lab\.png: 15\.0% of the pixels are off-palette.*\(10, 200, 90\)"):
        PALETTE.to_ids(rgb, "lab.png")


def test_palette_validation():
    with pytest.raises(ValueError, match="twice"):
        ColourPalette([(0, 0, 0), (0, 0, 0)], [0, 1])
    with pytest.raises(ValueError, match="one class id per colour"):
        ColourPalette([(0, 0, 0)], [0, 1])
