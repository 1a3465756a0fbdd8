"""Masks on real CelebAMask-HQ faces from ../shared/data (skipped when that folder is absent)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from stages.core.masks.config import MaskParams
from stages.core.masks.fitting import FitError
from stages.core.masks.photo import mask_photo
from stages.core.masks.placement import placement_problem

CELEBA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "celebamask-hq-subset" / "images"

pytestmark = pytest.mark.realdata


@pytest.mark.skipif(not CELEBA.exists(), reason=f"real data not found at {CELEBA} (only on developer machines and CI)")
def test_most_real_faces_get_a_well_placed_mask():
    paths = sorted(CELEBA.glob("*.jpg"))[:12]
    fitted = 0
    for index, path in enumerate(paths):
        image = cv2.resize(cv2.imread(str(path))[..., ::-1], (256, 256), interpolation=cv2.INTER_AREA)
        try:
            photo = mask_photo(image, None, np.random.default_rng(index), MaskParams())
        except FitError:
            continue
        fitted += 1
        assert 0.08 < photo.coverage < 0.45, path
        assert photo.landmark_source == "dlib"
    assert fitted >= 10, f"only {fitted} of {len(paths)} real faces got a mask"


@pytest.mark.skipif(not CELEBA.exists(), reason=f"real data not found at {CELEBA}")
def test_placement_check_refuses_a_mask_on_the_eyes_of_a_real_face():
    from stages.core.masks.landmarks import detect_landmarks

    image = cv2.resize(cv2.imread(str(sorted(CELEBA.glob("*.jpg"))[0]))[..., ::-1], (256, 256), interpolation=cv2.INTER_AREA)
    landmarks = detect_landmarks(image)[0]
    band = np.zeros(image.shape[:2], np.uint8)
    band[int(landmarks[19, 1]):int(landmarks[33, 1]), :] = 1
    assert placement_problem(band, landmarks) is not None
