"""Every mask type, variant and cloth pattern renders in its template frame, covering its anchors' area."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from stages.core.masks import shapes
from stages.core.masks.config import CLOTH_PATTERNS, MASK_TYPES


@pytest.mark.parametrize("mask_type,variant", list(itertools.product(MASK_TYPES, shapes.VARIANTS)))
def test_type_and_variant_render(mask_type, variant):
    template = shapes.draw_mask(mask_type, np.random.default_rng(0), (120, 160, 210), variant, {"scale": 0.5})
    assert template.rgb.shape == (210, 240, 3) and template.alpha.shape == (210, 240)
    assert 0 <= template.rgb.min() and template.rgb.max() <= 255
    assert 0.3 < (template.alpha > 0.5).mean() < 0.9
    centre = (shapes.ANCHORS[0] + shapes.ANCHORS[5]) / 2 * 0.5
    assert template.alpha[int(centre[1]), int(centre[0])] > 0.99, "the mask must cover the middle of the face"


@pytest.mark.parametrize("pattern", CLOTH_PATTERNS)
def test_cloth_patterns_differ(pattern):
    template = shapes.draw_mask("cloth", np.random.default_rng(1), (150, 30, 40), "front", {"pattern": pattern, "scale": 0.5})
    inside = template.alpha > 0.99
    spread = template.rgb[inside].std(axis=0).mean()
    assert spread > (20 if pattern != "solid" else 0), pattern


def test_unknown_type_and_variant_are_clear_errors():
    with pytest.raises(ValueError, match="unknown mask type"):
        shapes.draw_mask("balaclava", np.random.default_rng(0), (0, 0, 0))
    with pytest.raises(ValueError, match="unknown variant"):
        shapes.draw_mask("surgical", np.random.default_rng(0), (0, 0, 0), "upside_down")
