"""Photo edits through the parser's soft class masks: the work behind ``faceparse enhance``.

Every edit reads ``probs`` (H, W, 11) float32, the parser's per-pixel class probabilities pasted back into
the photo (they sum to 1 per pixel), and changes only the pixels of its class:

* its *region* is the class's pixels (``argmax == class`` or ``prob > 0.5``) grown by ``margin`` pixels;
  every pixel outside it stays bit-identical;
* inside, the edit is blended in by ``strength * feathered probability * ramp``, where the feathered
  probability is the class probability blurred by ``feather`` pixels and the ramp falls from 1 on the
  class's pixels to 0 at ``margin`` pixels from them, so no edge shows where the region ends;
* each edit works on the bounding box of its region only, and strength 0 returns the photo unchanged.

Colour edits work in CIE LAB (OpenCV, float32: L* in 0..100, a* and b* in about -127..127) and are blended
back in RGB, so a pixel with weight 0 keeps its exact value.
"""
from __future__ import annotations

from typing import Annotated

import cv2
import numpy as np
from pydantic import Field

from stages.core.common.classes import EYEBROWS, EYES, FACE, HAIR, LIPS, NUM_CLASSES, TEETH
from stages.core.common.params import ParamsSection

Colour = tuple[Annotated[int, Field(ge=0, le=255)], Annotated[int, Field(ge=0, le=255)],
               Annotated[int, Field(ge=0, le=255)]]
Strength = Annotated[float, Field(ge=0, le=1)]


class EnhanceParams(ParamsSection):
    """The ``enhance`` section: one strength in [0, 1] per edit (0 = off), the target colours (RGB 0-255),
    the skin filter's diameter and colour sigma, and the region's ``margin`` and ``feather`` in pixels."""

    SECTION = "enhance"
    skin_smoothing: Strength = 0.5
    skin_filter_diameter: int = Field(9, ge=3, le=31)
    skin_filter_sigma: float = Field(25.0, gt=0, le=255)
    hair_recolour: Strength = 0.0
    hair_colour: Colour = (110, 62, 38)
    eyebrow_darkening: Strength = 0.3
    eye_brightening: Strength = 0.3
    lip_tint: Strength = 0.3
    lip_colour: Colour = (176, 48, 72)
    teeth_whitening: Strength = 0.5
    margin: int = Field(4, ge=1, le=32)
    feather: float = Field(1.0, ge=0, le=16)


# The strength fields, in the order enhance() applies them: smoothing first, on the untouched skin.
EDITS: tuple[str, ...] = ("skin_smoothing", "hair_recolour", "eyebrow_darkening", "eye_brightening", "lip_tint",
                          "teeth_whitening")


def check_inputs(image: np.ndarray, probs: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``image`` is (H, W, 3) uint8 and ``probs`` is (H, W, 11) floating point."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    if probs.shape != (*image.shape[:2], NUM_CLASSES) or not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probs must be (H, W, {NUM_CLASSES}) float matching the image {image.shape[:2]}, "
                         f"got {probs.shape} {probs.dtype}")


def class_labels(probs: np.ndarray) -> np.ndarray:
    """(H, W, 11) probabilities -> (H, W) uint8 argmax class ids."""
    return probs.argmax(axis=-1).astype(np.uint8)


def edit_weight(probs: np.ndarray, class_id: int, margin: int, feather: float, labels: np.ndarray | None = None,
                pad: int = 0) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Where one class's edit acts, and how much.

    Returns ``(box, weight)``: ``box`` a pair of slices, the bounding box of the class's region (its pixels grown
    by ``margin``) widened by ``pad`` more pixels of context; ``weight`` (h, w) float32 in [0, 1] over the box,
    0 outside the region. ``None`` when the class has no pixel.
    """
    labels = class_labels(probs) if labels is None else labels
    core = (labels == class_id) | (probs[..., class_id] > 0.5)
    rows, cols = np.flatnonzero(core.any(axis=1)), np.flatnonzero(core.any(axis=0))
    if rows.size == 0:
        return None
    height, width = core.shape
    grow = margin + pad
    box = (slice(max(rows[0] - grow, 0), min(rows[-1] + grow + 1, height)),
           slice(max(cols[0] - grow, 0), min(cols[-1] + grow + 1, width)))
    # Every pixel's nearest class pixel lies inside the box, so the distances are exact within it.
    distance = cv2.distanceTransform((~core[box]).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    ramp = np.clip(1.0 - distance / np.float32(margin), 0.0, 1.0)
    prob = np.ascontiguousarray(probs[box + (class_id,)], dtype=np.float32)
    if feather > 0:
        prob = cv2.GaussianBlur(prob, (0, 0), feather)
    return box, np.clip(prob, 0.0, 1.0) * ramp


def _blend(image: np.ndarray, box: tuple[slice, slice], weight: np.ndarray, edited: np.ndarray) -> np.ndarray:
    """``image`` with ``box`` replaced by ``image + weight * (edited - image)``; ``edited`` (h, w, 3) float 0-255."""
    out = image.copy()
    crop = image[box].astype(np.float32)
    mixed = crop + weight[..., None] * (edited - crop)
    out[box] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2LAB)


def _to_rgb(lab: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * np.float32(255)


def colour_to_lab(colour: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    """An RGB 0-255 colour -> (3,) float32 L*, a*, b*."""
    return _to_lab(np.asarray(colour, np.float32).reshape(1, 1, 3))[0, 0]


def _weighted_stats(lab: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of (h, w, 3) ``lab`` weighted by (h, w) ``weight``."""
    w = weight.reshape(-1, 1)
    values = lab.reshape(-1, 3)
    total = float(w.sum())
    mean = (values * w).sum(axis=0) / total
    std = np.sqrt(((values - mean) ** 2 * w).sum(axis=0) / total)
    return mean.astype(np.float32), std.astype(np.float32)


def _lab_edit(image, probs, class_id, strength, margin, feather, labels, change):
    """Apply ``change(lab, weight) -> lab`` (the full-strength edit, LAB (h, w, 3)) to one class, blended in."""
    if strength <= 0:
        return image.copy()
    found = edit_weight(probs, class_id, margin, feather, labels)
    if found is None:
        return image.copy()
    box, weight = found
    edited = _to_rgb(change(_to_lab(image[box]), weight))
    return _blend(image, box, strength * weight, edited)


def smooth_skin(image: np.ndarray, probs: np.ndarray, strength: float, *, diameter: int = 9, sigma: float = 25.0,
                margin: int = 4, feather: float = 1.0, labels: np.ndarray | None = None) -> np.ndarray:
    """Face skin blended towards a bilateral filter (edge preserving: ``sigma`` is its colour sigma on the 0-255
    scale, ``diameter`` its neighbourhood in pixels). (H, W, 3) uint8 -> (H, W, 3) uint8."""
    if strength <= 0:
        return image.copy()
    found = edit_weight(probs, FACE, margin, feather, labels, pad=diameter // 2)
    if found is None:
        return image.copy()
    box, weight = found
    filtered = cv2.bilateralFilter(image[box], diameter, sigma, diameter / 2)
    return _blend(image, box, strength * weight, filtered.astype(np.float32))


def recolour_hair(image: np.ndarray, probs: np.ndarray, strength: float, colour: tuple[int, int, int], *,
                  margin: int = 4, feather: float = 1.0, labels: np.ndarray | None = None) -> np.ndarray:
    """Reinhard colour transfer on the hair: its LAB mean moves to ``colour``'s, its a*, b* spread is kept and its
    L* spread scales with the change of brightness (texture shows more on lighter hair). (H, W, 3) uint8."""
    target = colour_to_lab(colour)

    def change(lab, weight):
        mean, std = _weighted_stats(lab, weight)
        target_std = std.copy()
        target_std[0] = std[0] * np.clip(target[0] / max(float(mean[0]), 1.0), 0.5, 2.0)
        return (lab - mean) * (target_std / np.maximum(std, 1e-3)) + target

    return _lab_edit(image, probs, HAIR, strength, margin, feather, labels, change)


def darken_eyebrows(image: np.ndarray, probs: np.ndarray, strength: float, *, margin: int = 4, feather: float = 1.0,
                    labels: np.ndarray | None = None) -> np.ndarray:
    """Eyebrows' L* scaled down (by 45% at full strength). (H, W, 3) uint8 -> (H, W, 3) uint8."""

    def change(lab, weight):
        lab[..., 0] *= 0.55
        return lab

    return _lab_edit(image, probs, EYEBROWS, strength, margin, feather, labels, change)


def brighten_eyes(image: np.ndarray, probs: np.ndarray, strength: float, *, margin: int = 4, feather: float = 1.0,
                  labels: np.ndarray | None = None) -> np.ndarray:
    """Eyes' L* raised by a gamma curve (exponent 0.65 at full strength), which keeps black and white and lifts
    the iris and shadowed sclera most. (H, W, 3) uint8 -> (H, W, 3) uint8."""

    def change(lab, weight):
        lab[..., 0] = 100 * (np.clip(lab[..., 0], 0, 100) / 100) ** 0.65
        return lab

    return _lab_edit(image, probs, EYES, strength, margin, feather, labels, change)


def tint_lips(image: np.ndarray, probs: np.ndarray, strength: float, colour: tuple[int, int, int], *, margin: int = 4,
              feather: float = 1.0, labels: np.ndarray | None = None) -> np.ndarray:
    """Lips moved towards ``colour`` (RGB 0-255): at full strength their LAB mean becomes the colour's while their
    texture (each pixel's offset from the mean) is kept. (H, W, 3) uint8 -> (H, W, 3) uint8."""
    target = colour_to_lab(colour)

    def change(lab, weight):
        mean, _ = _weighted_stats(lab, weight)
        return lab + (target - mean)

    return _lab_edit(image, probs, LIPS, strength, margin, feather, labels, change)


def whiten_teeth(image: np.ndarray, probs: np.ndarray, strength: float, *, margin: int = 4, feather: float = 1.0,
                 labels: np.ndarray | None = None) -> np.ndarray:
    """Teeth: L* raised halfway to white and b* pulled to slightly blue (-2) at full strength. (H, W, 3) uint8."""

    def change(lab, weight):
        # The class is the whole inner mouth: only light pixels (teeth) are whitened, not the dark gap or tongue.
        light = np.clip((lab[..., 0] - 40) / 30, 0, 1)
        light = light * light * (3 - 2 * light)
        lab[..., 0] += 0.5 * light * (100 - lab[..., 0])
        lab[..., 2] += light * (-2 - lab[..., 2])
        return lab

    return _lab_edit(image, probs, TEETH, strength, margin, feather, labels, change)


def apply_edit(name: str, image: np.ndarray, probs: np.ndarray, params: EnhanceParams,
               labels: np.ndarray | None = None) -> np.ndarray:
    """One edit of :data:`EDITS` by its strength field's name, with its settings from ``params``."""
    strength = getattr(params, name)
    region = {"margin": params.margin, "feather": params.feather, "labels": labels}
    if name == "skin_smoothing":
        return smooth_skin(image, probs, strength, diameter=params.skin_filter_diameter, sigma=params.skin_filter_sigma,
                           **region)
    if name == "hair_recolour":
        return recolour_hair(image, probs, strength, params.hair_colour, **region)
    if name == "eyebrow_darkening":
        return darken_eyebrows(image, probs, strength, **region)
    if name == "eye_brightening":
        return brighten_eyes(image, probs, strength, **region)
    if name == "lip_tint":
        return tint_lips(image, probs, strength, params.lip_colour, **region)
    if name == "teeth_whitening":
        return whiten_teeth(image, probs, strength, **region)
    raise KeyError(f"unknown edit {name!r}; the edits are {', '.join(EDITS)}")


def enhance(image: np.ndarray, probs: np.ndarray, params: EnhanceParams | None = None,
            labels: np.ndarray | None = None) -> np.ndarray:
    """Every edit of :data:`EDITS` in order, each at its strength in ``params`` (default: the code defaults).

    ``image`` (H, W, 3) uint8 RGB, ``probs`` (H, W, 11) float class probabilities, ``labels`` (H, W) their argmax
    when the caller has it already. Returns a new (H, W, 3) uint8 image; with every strength 0 it equals ``image``.
    """
    params = EnhanceParams() if params is None else params
    check_inputs(image, probs)
    if not any(getattr(params, name) > 0 for name in EDITS):
        return image.copy()
    labels = class_labels(probs) if labels is None else labels
    for name in EDITS:
        image = apply_edit(name, image, probs, params, labels)
    return image


def side_by_side(before: np.ndarray, after: np.ndarray, gap: int = 4) -> np.ndarray:
    """(H, W, 3) ``before`` and ``after`` -> (H, 2W + gap, 3), split by a mid-grey bar, for ``--compare``."""
    if before.shape != after.shape:
        raise ValueError(f"before {before.shape} and after {after.shape} differ in shape")
    bar = np.full((before.shape[0], gap, *before.shape[2:]), 128, dtype=before.dtype)
    return np.concatenate([before, bar, after], axis=1)


def soft_probabilities(label: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """(H, W) uint8 class ids -> (H, W, 11) float32 probabilities: the one-hot label blurred by ``sigma`` pixels,
    summing to 1 per pixel. A stand-in for a parser's output (benchmarks, tests, editing with a known label)."""
    onehot = (label[..., None] == np.arange(NUM_CLASSES, dtype=label.dtype)).astype(np.float32)
    if sigma > 0:
        onehot = cv2.GaussianBlur(onehot, (0, 0), sigma)
    return onehot / onehot.sum(axis=-1, keepdims=True)
