"""Fitting a drawn mask onto a face, as MaskTheFace does: anchors -> landmark points by homography.

Steps for one face: choose the variant from the head yaw; draw the template; map its anchors
(``shapes.ANCHORS``) onto points derived from the landmarks (nose bridge, cheeks, jaw, chin) with a
small random jitter; warp; shade by the face's own brightness; composite. The binary mask is every
pixel the mask changed (the region an inpainter must fill).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from stages.core.masks import shapes
from stages.core.masks.config import MaskParams
from stages.core.masks.landmarks import head_yaw, landmark_problem
from stages.core.masks.placement import placement_problem


class FitError(ValueError):
    """A face that cannot carry a mask: bad landmarks, or a fit that fails the placement check."""


@dataclass
class FittedMask:
    """One face's fitted mask. ``masked`` ``(H, W, 3)`` uint8; ``binary`` ``(H, W)`` uint8 in {0, 1}."""

    masked: np.ndarray
    binary: np.ndarray
    mask_type: str
    variant: str
    attempts: int


def face_targets(landmarks: np.ndarray) -> np.ndarray:
    """``(6, 2)`` float32 face points matching ``shapes.ANCHOR_NAMES``, from ``(68, 2)`` landmarks.

    The nose-bridge point sits 40% of the way down the bridge (27 -> 30), the cheek points on the jaw
    line at landmarks 1 and 15, the jaw points at 4 and 12, and the chin point just below landmark 8
    so that the mask wraps under the chin.
    """
    lm = np.asarray(landmarks, np.float64)
    nose_bridge = lm[27] + 0.4 * (lm[30] - lm[27])
    chin = lm[8] + 0.06 * (lm[8] - lm[27])
    return np.array([nose_bridge, lm[1], lm[15], lm[4], lm[12], chin], np.float32)


def choose_variant(landmarks: np.ndarray, yaw_threshold: float) -> str:
    """``"left"``/``"right"`` when the head is turned towards that side of the image beyond the threshold."""
    yaw = head_yaw(landmarks)
    if yaw < -yaw_threshold:
        return "left"
    if yaw > yaw_threshold:
        return "right"
    return "front"


def jittered(targets: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """``targets`` ``(6, 2)`` moved by Gaussian noise of std ``jitter`` x face width (cheek to cheek)."""
    face_width = float(np.linalg.norm(targets[2] - targets[1]))
    return (targets + rng.normal(0, jitter * face_width, targets.shape)).astype(np.float32)


def template_scale(face_width: float) -> float:
    """Resolution of the drawn template: ~1.3 template pixels per photo pixel (the frame's face is ~380 wide)."""
    return float(np.clip(1.3 * face_width / 380, 0.25, 2.0))


def anchor_homography(targets: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``(3, 3)`` least-squares homography from ``shapes.ANCHORS`` (in template pixels at ``scale``) to ``targets`` ``(6, 2)``."""
    matrix, _ = cv2.findHomography(shapes.ANCHORS * np.float32(scale), np.asarray(targets, np.float32), 0)
    if matrix is None or not np.isfinite(matrix).all():
        raise FitError("degenerate anchor points: no homography")
    return matrix


def warp_template(template: shapes.Template, matrix: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied colour ``(H, W, 3)`` and alpha ``(H, W)`` (float32) of the template in image space.

    ``size`` is ``(width, height)``. Premultiplying keeps the anti-aliased edges from darkening.
    """
    rgba = np.dstack([template.rgb * template.alpha[..., None], template.alpha])
    warped = cv2.warpPerspective(rgba, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped[..., :3], np.clip(warped[..., 3], 0, 1)


def face_shading(image: np.ndarray, alpha: np.ndarray, face_width: float) -> np.ndarray:
    """``(H, W)`` float32 factor that carries the photo's light onto the mask.

    Local brightness (the luma blurred at a scale of the face) relative to its median under the mask
    gives the shadows and highlights; the median itself, relative to mid-grey, darkens masks in dark
    photos and brightens them in bright ones (softened, as fabric is lighter than skin).
    """
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    sigma = max(face_width / 10, 1.0)
    local = cv2.GaussianBlur(luma, (0, 0), sigma)
    under = alpha > 0.5
    median = float(np.median(local[under])) if under.any() else float(np.median(local))
    median = max(median, 8.0)
    relief = np.clip(local / median, 0.55, 1.35) ** 0.8
    exposure = float(np.clip((median / 150.0) ** 0.5, 0.45, 1.15))
    return (relief * exposure).astype(np.float32)


def recorded_only(colour_pm: np.ndarray, alpha: np.ndarray, binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The warped layer with its faint anti-aliased fringe (``binary`` 0, alpha below half a grey level) cut away.

    Left in, that fringe could still move a pixel by one grey level through rounding, outside the recorded
    region; cut away, the drawing changes no pixel the binary mask does not hold.
    """
    keep = binary.astype(np.float32)
    return colour_pm * keep[..., None], alpha * keep


def composite(image: np.ndarray, colour_pm: np.ndarray, alpha: np.ndarray, shading: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """``(H, W, 3)`` uint8: the photo with the shaded mask over it, plus a little sensor-like grain."""
    grain = rng.normal(0, 2.0, alpha.shape).astype(np.float32)
    mask_layer = colour_pm * shading[..., None] + grain[..., None] * alpha[..., None]
    out = image.astype(np.float32) * (1 - alpha[..., None]) + mask_layer
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def pick_options(mask_type: str, rng: np.random.Generator, params: MaskParams) -> tuple[list[int], dict]:
    """A colour (RGB) and the type's drawing options (cloth pattern, N95 valve probability)."""
    choices = params.colours[mask_type]
    colour = list(choices[int(rng.integers(len(choices)))])
    options: dict = {}
    if mask_type == "cloth":
        names, weights = params.pattern_weights()
        options["pattern"] = names[int(rng.choice(len(names), p=weights))]
    if mask_type == "n95":
        options["valve_probability"] = params.n95_valve_probability
    return colour, options


def fit_mask(image_rgb: np.ndarray, landmarks68: np.ndarray, mask_type: str, rng: np.random.Generator,
             params: MaskParams | None = None) -> FittedMask:
    """Fit one ``mask_type`` mask to the face of ``landmarks68`` ``(68, 2)`` on ``image_rgb`` ``(H, W, 3)`` uint8.

    Raises :class:`FitError` when the landmarks fail the sanity check, or when ``params.fit_attempts``
    fresh jitter draws all fail the placement check (a mask is never placed at a wrong spot silently).
    """
    params = params or MaskParams()
    image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise FitError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    landmarks = np.asarray(landmarks68, np.float32)
    problem = landmark_problem(landmarks, image.shape)
    if problem:
        raise FitError(f"landmarks: {problem}")
    variant = choose_variant(landmarks, params.yaw_threshold)
    targets = face_targets(landmarks)
    face_width = float(np.linalg.norm(targets[2] - targets[1]))
    colour, options = pick_options(mask_type, rng, params)
    options["scale"] = template_scale(face_width)
    template = shapes.draw_mask(mask_type, rng, colour, variant, options)
    height, width = image.shape[:2]
    for attempt in range(1, params.fit_attempts + 1):
        matrix = anchor_homography(jittered(targets, rng, params.jitter), template.scale)
        colour_pm, alpha = warp_template(template, matrix, (width, height))
        binary = (alpha * 255 >= 0.5).astype(np.uint8)
        problem = placement_problem(binary, landmarks)
        if problem is None:
            colour_pm, alpha = recorded_only(colour_pm, alpha, binary)
            masked = composite(image, colour_pm, alpha, face_shading(image, alpha, face_width), rng)
            # The recorded region is every pixel the drawing changed: body, ear loops, straps and their shadows.
            binary |= (masked != image).any(axis=2).astype(np.uint8)
            return FittedMask(masked, binary, mask_type, variant, attempt)
    raise FitError(f"placement: {problem} (after {params.fit_attempts} attempts)")


def apply_mask(image_rgb: np.ndarray, landmarks68: np.ndarray, mask_type: str, rng: np.random.Generator,
               params: MaskParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(masked_rgb (H, W, 3) uint8, binary_mask (H, W) uint8 in {0, 1})`` for one face; see :func:`fit_mask`."""
    fitted = fit_mask(image_rgb, landmarks68, mask_type, rng, params)
    return fitted.masked, fitted.binary


def choose_mask_type(rng: np.random.Generator, params: MaskParams) -> str:
    names, weights = params.type_weights()
    return names[int(rng.choice(len(names), p=weights))]
