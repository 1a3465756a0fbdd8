"""Fitting masks onto known landmarks: placement, determinism, every type, shading, failures."""
from __future__ import annotations

import numpy as np
import pytest
from masks_fixtures import astronaut_face

from stages.core.masks.config import MASK_TYPES, MaskParams
from stages.core.masks.fitting import FitError, apply_mask, choose_variant, face_targets, fit_mask
from stages.core.masks.placement import placement_problem


@pytest.mark.parametrize("mask_type", MASK_TYPES)
def test_every_type_fits_where_a_worn_mask_would_be(mask_type):
    image, landmarks = astronaut_face()
    fitted = fit_mask(image, landmarks, mask_type, np.random.default_rng(3))
    assert fitted.masked.shape == image.shape and fitted.masked.dtype == np.uint8
    assert set(np.unique(fitted.binary)) == {0, 1}
    assert placement_problem(fitted.binary, landmarks) is None
    changed = (fitted.masked != image).any(axis=2)
    assert not (changed & (fitted.binary == 0)).any(), "every changed pixel must be in the binary mask"
    assert 0.08 < fitted.binary.mean() < 0.45


def test_mouth_is_hidden_and_eyes_untouched():
    image, landmarks = astronaut_face()
    masked, binary = apply_mask(image, landmarks, "surgical", np.random.default_rng(0))
    mouth_box = np.s_[int(landmarks[48:68, 1].min()):int(landmarks[48:68, 1].max()),
                      int(landmarks[48:68, 0].min()):int(landmarks[48:68, 0].max())]
    assert binary[mouth_box].all()
    eye_box = np.s_[int(landmarks[36:48, 1].min()) - 2:int(landmarks[36:48, 1].max()) + 2,
                    int(landmarks[36:48, 0].min()):int(landmarks[36:48, 0].max())]
    assert np.array_equal(masked[eye_box], image[eye_box])


def test_same_seed_gives_same_bytes_and_another_seed_differs():
    image, landmarks = astronaut_face()
    first = apply_mask(image, landmarks, "cloth", np.random.default_rng(7))
    second = apply_mask(image, landmarks, "cloth", np.random.default_rng(7))
    other = apply_mask(image, landmarks, "cloth", np.random.default_rng(8))
    assert first[0].tobytes() == second[0].tobytes() and first[1].tobytes() == second[1].tobytes()
    assert first[0].tobytes() != other[0].tobytes()


def test_shading_follows_the_photo_brightness():
    image, landmarks = astronaut_face()
    params = MaskParams(jitter=0.0, colours={**MaskParams().colours, "surgical": [[200, 200, 200]]})
    dark = (image * 0.3).astype(np.uint8)
    bright_masked, binary = apply_mask(image, landmarks, "surgical", np.random.default_rng(1), params)
    dark_masked, _ = apply_mask(dark, landmarks, "surgical", np.random.default_rng(1), params)
    inside = binary.astype(bool)
    assert dark_masked[inside].mean() < 0.8 * bright_masked[inside].mean()


def test_anchor_points_follow_the_landmarks():
    _, landmarks = astronaut_face()
    targets = face_targets(landmarks)
    nose_bridge, chin = targets[0], targets[5]
    assert landmarks[27, 1] < nose_bridge[1] < landmarks[30, 1]
    assert chin[1] > landmarks[8, 1]
    assert targets[1, 0] < targets[2, 0]


def test_variant_follows_head_yaw():
    _, landmarks = astronaut_face()
    assert choose_variant(landmarks, 0.2) == "front"
    turned_left = landmarks.copy()
    turned_left[27:36, 0] -= 0.3 * (landmarks[16, 0] - landmarks[0, 0])  # nose towards the image's left
    assert choose_variant(turned_left, 0.2) == "left"
    turned_right = landmarks.copy()
    turned_right[27:36, 0] += 0.3 * (landmarks[16, 0] - landmarks[0, 0])
    assert choose_variant(turned_right, 0.2) == "right"


def test_bad_landmarks_are_refused():
    image, landmarks = astronaut_face()
    upside_down = landmarks.copy()
    upside_down[:, 1] = image.shape[0] - 1 - upside_down[:, 1]
    with pytest.raises(FitError, match="order"):
        fit_mask(image, upside_down, "surgical", np.random.default_rng(0))
    with pytest.raises(FitError, match="not finite"):
        fit_mask(image, np.full((68, 2), np.nan, np.float32), "surgical", np.random.default_rng(0))


def test_a_fit_that_would_cover_the_eyes_is_refused():
    image, landmarks = astronaut_face()
    # Eyes moved down to the nose tip's height (still above it): any fit now covers them, and must be refused.
    squashed = landmarks.copy()
    squashed[36:48, 1] += landmarks[30, 1] - 3 - landmarks[36:48, 1].max()
    with pytest.raises(FitError, match="placement: eye"):
        fit_mask(image, squashed, "surgical", np.random.default_rng(0), MaskParams(fit_attempts=2))


def test_unknown_type_is_a_clear_error():
    image, landmarks = astronaut_face()
    with pytest.raises(KeyError):
        fit_mask(image, landmarks, "balaclava", np.random.default_rng(0))


def test_recorded_region_is_every_changed_pixel_on_synthetic_faces():
    """Body, ear loops, straps and their shadows: the masked photo differs from the clean one exactly where
    the recorded region says it may, and the loops (thin strokes beside the face) are in it."""
    from stages.core.data.synthetic_faces import face_rng, render_face
    from stages.core.masks.photo import mask_photo

    params = MaskParams(type_probabilities={t: 1.0 for t in MASK_TYPES})
    masked_faces = 0
    for index in range(8):
        face = render_face(face_rng(11, index), 256)
        try:
            photo = mask_photo(face.image, face.landmarks, np.random.default_rng(index), params)
        except FitError:
            continue
        changed = (photo.masked != face.image).any(axis=2)
        assert not (changed & (photo.binary == 0)).any(), f"face {index}: changed pixels outside the region"
        assert changed.sum() > 0.9 * photo.binary.sum()
        # The body is anchored at the cheeks (landmarks 1, 15); the loops and straps run on towards the ears.
        columns = np.flatnonzero(photo.binary.any(axis=0))
        cheeks = face.landmarks[15, 0] - face.landmarks[1, 0]
        assert columns.max() - columns.min() > 1.05 * cheeks, f"face {index}: the region stops at the mask body"
        masked_faces += 1
    assert masked_faces >= 6


def test_faint_fringe_cannot_change_pixels_outside_the_region():
    """A pixel below half a grey level of coverage is outside the region; without the cut, rounding moved it."""
    from stages.core.masks.fitting import composite, recorded_only

    image = np.zeros((4, 4, 3), np.uint8)
    alpha = np.full((4, 4), 0.0019, np.float32)  # below 0.5 / 255
    alpha[:2] = 1.0
    colour_pm = np.full((4, 4, 3), 255.0, np.float32) * alpha[..., None]
    shading = np.full((4, 4), 1.35, np.float32)
    binary = (alpha * 255 >= 0.5).astype(np.uint8)
    uncut = composite(image, colour_pm, alpha, shading, np.random.default_rng(0))
    assert (uncut[2:] != 0).any(), "the construction must show the rounding leak"
    cut = composite(image, *recorded_only(colour_pm, alpha, binary), shading, np.random.default_rng(0))
    assert not (cut[2:] != 0).any() and (cut[:2] != 0).all()
