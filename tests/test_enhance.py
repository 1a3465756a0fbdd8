"""The enhance edits on a synthetic face whose exact label, one-hot and blurred, stands in for the parser's
probabilities: each edit stays inside its class's grown region, moves the colour the way it says (measured in
CIE LAB with scikit-image, not with the OpenCV conversion the edits use), and is the identity at strength 0."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import REPO_ROOT
from skimage.color import deltaE_ciede2000, rgb2lab

from stages.core.common import classes as C
from stages.core.common.params import ParamsError, load_params
from stages.core.data.synthetic_faces import face_rng, render_face
from stages.core.inference.enhance import (
    EDITS,
    EnhanceParams,
    apply_edit,
    check_inputs,
    enhance,
    side_by_side,
    soft_probabilities,
)

CLASS_OF = {"skin_smoothing": C.FACE, "hair_recolour": C.HAIR, "eyebrow_darkening": C.EYEBROWS,
            "eye_brightening": C.EYES, "lip_tint": C.LIPS, "teeth_whitening": C.TEETH}
OFF = {name: 0.0 for name in EDITS}


def only(name: str, strength: float) -> EnhanceParams:
    return EnhanceParams(**{**OFF, name: strength})


@pytest.fixture(scope="module")
def face():
    """A 256² face with an open mouth and blonde hair; the teeth are yellowed so that whitening has work to do."""
    sample = render_face(face_rng(0, 23), 256)
    image = sample.image.copy()
    teeth = (sample.label == C.TEETH) & (image.mean(axis=-1) > 150)
    image[teeth] = (image[teeth] * np.array([1.0, 0.92, 0.7])).astype(np.uint8)
    probs = soft_probabilities(sample.label, sigma=2.5)  # soft, so the tails beyond the region matter
    labels = probs.argmax(axis=-1)
    for cid in CLASS_OF.values():
        assert (labels == cid).sum() > 200, C.CLASS_NAMES[cid]
    return image, probs, labels


def lab_of(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, 3) L*, a*, b* of the masked pixels (scikit-image, D65)."""
    return rgb2lab(image[mask])


def core(labels: np.ndarray, cid: int, erode: int = 0) -> np.ndarray:
    mask = (labels == cid).astype(np.uint8)
    if erode:
        mask = cv2.erode(mask, np.ones((2 * erode + 1,) * 2, np.uint8))
    return mask.astype(bool)


def local_variance(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean over ``mask`` of the 5x5 variance of L*."""
    lightness = rgb2lab(image)[..., 0]
    mean = cv2.blur(lightness, (5, 5))
    return float((cv2.blur(lightness ** 2, (5, 5)) - mean ** 2)[mask].mean())


def measure(name: str, image: np.ndarray, labels: np.ndarray) -> float:
    """A number each edit must lower, on its class's pixels."""
    params = EnhanceParams()
    mask = core(labels, CLASS_OF[name])
    lab = lab_of(image, mask)
    if name == "skin_smoothing":
        return local_variance(image, core(labels, C.FACE, erode=3))
    if name == "hair_recolour":
        target = rgb2lab(np.array([[params.hair_colour]], np.uint8))[0, 0]
        return float(deltaE_ciede2000(lab.mean(axis=0), target))
    if name == "lip_tint":
        target = rgb2lab(np.array([[params.lip_colour]], np.uint8))[0, 0]
        return float(deltaE_ciede2000(lab.mean(axis=0), target))
    if name == "eyebrow_darkening":
        return float(lab[:, 0].mean())
    if name == "eye_brightening":
        return -float(lab[:, 0].mean())
    if name == "teeth_whitening":  # lighter and less yellow: L* up and b* down
        return float(lab[:, 2].mean() - lab[:, 0].mean())
    raise KeyError(name)


@pytest.mark.parametrize("name", EDITS)
def test_an_edit_changes_only_its_grown_region(face, name):
    image, probs, labels = face
    params = only(name, 1.0)
    out = apply_edit(name, image, probs, params)
    cid = CLASS_OF[name]
    grown = (labels == cid) | (probs[..., cid] > 0.5)
    radius = params.margin + 1
    grown = cv2.dilate(grown.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    outside = ~grown.astype(bool)
    np.testing.assert_array_equal(out[outside], image[outside])
    changed = (out != image).any(axis=-1)
    assert changed[labels == cid].mean() > 0.3, "the edit hardly touched its class"


@pytest.mark.parametrize("name", EDITS)
def test_an_edit_moves_colour_the_way_it_says_and_more_with_strength(face, name):
    image, probs, labels = face
    before = measure(name, image, labels)
    half = measure(name, apply_edit(name, image, probs, only(name, 0.5), labels), labels)
    full = measure(name, apply_edit(name, image, probs, only(name, 1.0), labels), labels)
    assert full < half < before
    assert before - full > 0.2 * abs(before) or before - full > 3, (before, half, full)


def test_teeth_whitening_raises_lightness_and_lowers_yellow(face):
    image, probs, labels = face
    out = apply_edit("teeth_whitening", image, probs, only("teeth_whitening", 1.0), labels)
    mask = core(labels, C.TEETH)
    before, after = lab_of(image, mask).mean(axis=0), lab_of(out, mask).mean(axis=0)
    assert after[0] > before[0] + 2 and after[2] < before[2] - 2


@pytest.mark.parametrize("name", EDITS)
def test_an_edit_at_strength_zero_is_the_identity(face, name):
    image, probs, labels = face
    np.testing.assert_array_equal(apply_edit(name, image, probs, only(name, 0.0)), image)
    others = EnhanceParams(**{n: 1.0 for n in EDITS if n != name}, **{name: 0.0})
    np.testing.assert_array_equal(apply_edit(name, image, probs, others), image)


def test_every_strength_zero_is_the_identity_and_defaults_edit(face):
    image, probs, labels = face
    np.testing.assert_array_equal(enhance(image, probs, EnhanceParams(**OFF)), image)
    out = enhance(image, probs)
    assert out.shape == image.shape and out.dtype == np.uint8 and (out != image).any()
    np.testing.assert_array_equal(enhance(image, probs, labels=labels.astype(np.uint8)), out)


def test_the_edit_fades_out_across_the_class_edge(face):
    """Hair going from blonde to brown changes by ~100 levels inside; past the class's edge the change falls off
    ring by ring (no hard cut at the edge) and is nearly gone where the region ends."""
    image, probs, labels = face
    params = only("hair_recolour", 1.0)
    out = apply_edit("hair_recolour", image, probs, params, labels)
    hair = core(labels, C.HAIR).astype(np.uint8)
    distance = cv2.distanceTransform(1 - hair, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    change = np.abs(out.astype(int) - image.astype(int)).max(axis=-1)
    assert change[hair.astype(bool)].mean() > 40
    rings = [change[(distance > d - 0.5) & (distance <= d + 0.5)].mean() for d in (1, 2, 3)]
    assert rings[0] > 5 and rings[0] > rings[1] > rings[2], rings
    assert change[(distance >= params.margin - 1) & (distance <= params.margin + 1)].max() <= 6


def test_defaults_equal_params_yaml():
    values = load_params(REPO_ROOT / "params.yaml")["enhance"]
    assert EnhanceParams.from_params(values) == EnhanceParams()


@pytest.mark.parametrize(("values", "message"), [
    ({"typo_key": 1}, r"params.yaml: enhance\.typo_key: unknown key"),
    ({"lip_tint": 1.5}, r"enhance\.lip_tint: .*less than or equal to 1"),
    ({"skin_smoothing": -0.1}, r"enhance\.skin_smoothing: .*greater than or equal to 0"),
    ({"hair_colour": [300, 0, 0]}, r"enhance\.hair_colour\.0: .*less than or equal to 255"),
    ({"lip_colour": [1, 2]}, r"enhance\.lip_colour"),
])
def test_bad_enhance_values_are_refused_by_name(values, message):
    with pytest.raises(ParamsError, match=message):
        EnhanceParams.from_params({**load_params(REPO_ROOT / "params.yaml")["enhance"], **values})


def test_side_by_side_puts_before_left_and_after_right(face):
    image = face[0]
    after = 255 - image
    joined = side_by_side(image, after, gap=4)
    width = image.shape[1]
    assert joined.shape == (image.shape[0], 2 * width + 4, 3)
    np.testing.assert_array_equal(joined[:, :width], image)
    np.testing.assert_array_equal(joined[:, width + 4:], after)
    with pytest.raises(ValueError, match="differ in shape"):
        side_by_side(image, image[:-1])


def test_bad_inputs_are_refused(face):
    image, probs, _ = face
    with pytest.raises(ValueError, match="probs must be"):
        check_inputs(image, probs[..., :5])
    with pytest.raises(ValueError, match="image must be"):
        enhance(image.astype(np.float32), probs)


def test_soft_probabilities_sum_to_one_and_keep_the_label():
    label = np.zeros((40, 40), np.uint8)
    label[10:30, 12:28] = C.LIPS
    probs = soft_probabilities(label, sigma=1.5)
    assert probs.shape == (40, 40, C.NUM_CLASSES) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=-1), 1, atol=1e-5)
    assert (probs.argmax(axis=-1) == label).mean() > 0.99  # only the rectangle's corners round off
    assert probs[20, 20, C.LIPS] > 0.99 and probs[2, 2, C.BACKGROUND] > 0.99
