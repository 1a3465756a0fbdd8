"""The placement check on hand-made masks and known landmarks."""
from __future__ import annotations

import numpy as np
from masks_fixtures import astronaut_face

from stages.core.masks.placement import placement_problem


def _box(shape, top, bottom, left, right):
    mask = np.zeros(shape, np.uint8)
    mask[int(top):int(bottom), int(left):int(right)] = 1
    return mask


def test_lower_face_box_passes():
    image, lm = astronaut_face()
    mask = _box(image.shape[:2], lm[29, 1], lm[8, 1] + 2, lm[3, 0], lm[13, 0])
    assert placement_problem(mask, lm) is None


def test_box_over_the_eyes_fails():
    image, lm = astronaut_face()
    mask = _box(image.shape[:2], lm[19, 1], lm[8, 1] + 2, lm[0, 0], lm[16, 0])
    assert "eye" in placement_problem(mask, lm)


def test_box_missing_the_mouth_fails():
    image, lm = astronaut_face()
    mask = _box(image.shape[:2], lm[29, 1], lm[33, 1] + 3, lm[3, 0], lm[13, 0])
    assert "mouth" in placement_problem(mask, lm)


def test_chin_tolerance_is_a_fraction_of_face_height():
    image, lm = astronaut_face()
    height = lm[:, 1].max() - lm[:, 1].min()
    near = _box(image.shape[:2], lm[29, 1], lm[8, 1] - 0.02 * height, lm[3, 0], lm[13, 0])
    far = _box(image.shape[:2], lm[29, 1], lm[8, 1] - 0.08 * height, lm[3, 0], lm[13, 0])
    assert placement_problem(near, lm) is None
    assert "chin" in placement_problem(far, lm)
