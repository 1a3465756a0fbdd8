"""Masking every face of one photo: landmarks (given or from dlib), one mask type, one fit per face."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.core.masks.config import MaskParams
from stages.core.masks.fitting import FitError, choose_mask_type, fit_mask
from stages.core.masks.landmarks import detect_landmarks


@dataclass
class MaskedPhoto:
    """``masked`` ``(H, W, 3)`` uint8, ``binary`` ``(H, W)`` uint8 in {0, 1} (union over faces); ``landmarks``: each
    masked face's ``(68, 2)`` float32 points, the largest face first."""

    masked: np.ndarray
    binary: np.ndarray
    mask_type: str
    variants: list[str]
    landmark_source: str  # "given" or "dlib"
    attempts: list[int]  # per face: which jitter draw passed the placement check (1 = the first)
    landmarks: list[np.ndarray]

    @property
    def coverage(self) -> float:
        """Mask area over image area."""
        return float(self.binary.mean())

    @property
    def first_attempt(self) -> bool:
        """Whether every face's first fit passed the placement check."""
        return all(a == 1 for a in self.attempts)


def faces_of(image_rgb: np.ndarray, given_landmarks: np.ndarray | None, params: MaskParams) -> tuple[list[np.ndarray], str]:
    """The faces to mask and where their landmarks came from.

    ``given_landmarks`` ``(68, 2)`` (e.g. a synthetic generator's) are used when finite; otherwise dlib
    finds every face at least ``params.min_face_size`` px wide. Raises :class:`FitError` when there is none.
    """
    if given_landmarks is not None and np.isfinite(given_landmarks).all():
        width = float(np.linalg.norm(given_landmarks[16] - given_landmarks[0]))
        if width < params.min_face_size:
            raise FitError(f"face too small ({width:.0f} px wide, minimum {params.min_face_size})")
        return [np.asarray(given_landmarks, np.float32)], "given"
    faces = detect_landmarks(image_rgb, params.min_face_size, params.upsample)
    if not faces:
        raise FitError(f"no face found (minimum size {params.min_face_size} px)")
    return faces, "dlib"


def mask_photo(image_rgb: np.ndarray, given_landmarks: np.ndarray | None, rng: np.random.Generator,
               params: MaskParams) -> MaskedPhoto:
    """Put one randomly chosen mask type on every face of ``image_rgb`` ``(H, W, 3)`` uint8.

    Raises :class:`FitError` (with the reason) when there is no usable face, or any face's fit fails.
    """
    image = np.asarray(image_rgb)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    faces, source = faces_of(image, given_landmarks, params)
    mask_type = choose_mask_type(rng, params)
    masked = np.ascontiguousarray(image, dtype=np.uint8)
    binary = np.zeros(masked.shape[:2], np.uint8)
    variants, attempts = [], []
    for number, landmarks in enumerate(faces, 1):
        try:
            fitted = fit_mask(masked, landmarks, mask_type, rng, params)
        except FitError as exc:
            prefix = f"face {number} of {len(faces)}: " if len(faces) > 1 else ""
            raise FitError(f"{prefix}{exc}") from None
        masked = fitted.masked
        binary |= fitted.binary
        variants.append(fitted.variant)
        attempts.append(fitted.attempts)
    return MaskedPhoto(masked, binary, mask_type, variants, source, attempts, [np.asarray(f, np.float32) for f in faces])
