"""Detection and alignment on real photos of unmasked people (../shared/data; skipped when it is absent)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from stages.core.common.io import read_image
from stages.core.data.synthetic_faces import face_rng, render_face
from stages.core.inference.alignment import alignment_matrix, measure_framing, warp_into_framing
from stages.core.inference.faces import find_faces

PHOTOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "masked-faces" / "without_mask"
SIZE = 256

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not PHOTOS.exists(), reason=f"real photos not found at {PHOTOS} (developer machines and CI)")]


@pytest.fixture(scope="module")
def detections():
    return {path.name: (read_image(path), find_faces(read_image(path), min_face_size=40))
            for path in sorted(PHOTOS.iterdir()) if path.is_file()}


def test_faces_are_found_in_nearly_every_real_photo(detections):
    found = [name for name, (_, detection) in detections.items() if detection.faces]
    assert len(found) >= 0.9 * len(detections), sorted(set(detections) - set(found))


def test_aligned_real_faces_sit_where_the_training_faces_sit(detections):
    framing = measure_framing(np.stack([render_face(face_rng(0, i), SIZE).landmarks for i in range(40)]), SIZE)
    errors = []
    for image, detection in detections.values():
        for face in detection.faces:
            matrix = alignment_matrix(face.landmarks, framing)
            moved = cv2.transform(face.landmarks[None].astype(np.float64), matrix)[0]
            errors.append(np.linalg.norm(moved - framing.template, axis=1).mean())
            crop = warp_into_framing(image, matrix, SIZE)
            assert crop.shape == (SIZE, SIZE, 3) and crop.std() > 5  # a photo, not a blank border
    # the mean landmark is within a few percent of the crop of where the framing puts it (faces differ in shape)
    assert np.median(errors) < 0.04 * SIZE, errors


def test_the_masks_stage_keeps_dlib_s_landmarks_where_a_real_dataset_has_none(detections):
    """Real datasets ship no landmarks (the cache holds NaN rows); the masks stage finds them with dlib on the clean
    photo and keeps them with the masked photo, where the inpainter's fresh masks and the identity score read them."""
    from stages.core.masks.config import MaskParams
    from stages.core.masks.photo import mask_photo

    image, detection = next((image, d) for image, d in detections.values() if d.faces)
    photo = mask_photo(image, np.full((68, 2), np.nan, np.float32), np.random.default_rng(0), MaskParams())
    found = photo.landmarks[0]
    assert photo.landmark_source == "dlib" and found.shape == (68, 2) and np.isfinite(found).all()
    width = detection.faces[0].box[2] - detection.faces[0].box[0]
    assert np.abs(found - detection.faces[0].landmarks).mean() < 0.05 * width  # the same face
