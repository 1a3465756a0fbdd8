"""The mask finder on real photos of masked and unmasked people (../shared/data and a trained
models/mask_finder.onnx; skipped when either is absent)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

from stages.core.common.io import read_image
from stages.core.inference.alignment import Framing
from stages.core.inference.photo_masks import find_photo_masks
from stages.core.mask_finding.finder import MaskFinder

PHOTOS = REPO_ROOT.parent / "shared" / "data" / "masked-faces"
MODEL, FRAMING = REPO_ROOT / "models" / "mask_finder.onnx", REPO_ROOT / "models" / "framing.json"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not PHOTOS.exists(), reason=f"real photos not found at {PHOTOS} (developer machines and CI)"),
    pytest.mark.skipif(not (MODEL.exists() and FRAMING.exists()),
                       reason="no trained mask finder and framing in models/ (run `dvc repro train_mask_finder framing`)"),
]


def _photos(folder: str, count: int) -> list[Path]:
    return sorted(p for p in (PHOTOS / folder).iterdir() if p.is_file())[:count]


@pytest.mark.parametrize("folder", ["with_mask", "without_mask"])
def test_every_face_of_a_real_photo_gets_a_crop_sized_region(folder):
    finder, framing = MaskFinder(MODEL), Framing.load(FRAMING)
    faces = 0
    for path in _photos(folder, 4):
        result = find_photo_masks(read_image(path), finder, framing)
        for face in result.faces:
            faces += 1
            assert face.crop.shape == (framing.size, framing.size, 3)
            assert face.mask.region.shape == (framing.size, framing.size) and face.mask.region.dtype == bool
            assert np.isfinite(face.mask.fraction) and face.mask.fraction >= 0
            assert face.mask.found == (face.mask.fraction >= finder.settings.min_region)
            assert face.mask.found or not face.mask.region.any()
    assert faces >= 2, f"dlib found only {faces} faces in the first four {folder} photos"
