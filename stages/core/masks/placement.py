"""The placement check: is a fitted mask where a worn mask would be?"""
from __future__ import annotations

import cv2
import numpy as np

from stages.core.masks.landmarks import CHIN, EYES, MOUTH, NOSE_LOWER, face_height


def _inside(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: which ``(N, 2)`` (x, y) points fall on a non-zero pixel of ``mask`` ``(H, W)``."""
    height, width = mask.shape
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, width - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, height - 1)
    return mask[ys, xs] > 0


def _distance_to_mask(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N,)`` pixel distance from each point to the nearest mask pixel (0 inside)."""
    height, width = mask.shape
    outside = (mask == 0).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, width - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, height - 1)
    # A point beyond the image border (a cropped chin) adds its distance to the border.
    beyond = np.hypot(points[:, 0] - xs, points[:, 1] - ys)
    return distance[ys, xs] + beyond


def placement_problem(mask: np.ndarray, landmarks: np.ndarray, chin_tolerance: float = 0.03) -> str | None:
    """Why ``mask`` ``(H, W)`` (non-zero = mask) is misplaced on the face of ``landmarks`` ``(68, 2)``, or ``None``.

    Inside the mask: the lower nose (31-35) and the mouth (48-67). The chin (7-9): inside, or within
    ``chin_tolerance`` x face height of the mask's edge. Outside: the eyes (36-47).
    """
    lm = np.asarray(landmarks, np.float64)
    missing = ~_inside(mask, lm[NOSE_LOWER])
    if missing.any():
        return f"nose landmarks {[31 + int(i) for i in np.flatnonzero(missing)]} not covered"
    missing = ~_inside(mask, lm[MOUTH])
    if missing.any():
        return f"mouth landmarks {[48 + int(i) for i in np.flatnonzero(missing)]} not covered"
    chin_gap = _distance_to_mask(mask, lm[CHIN])
    limit = chin_tolerance * face_height(lm)
    if (chin_gap > limit).any():
        return f"chin {float(chin_gap.max()):.1f} px from the mask (limit {limit:.1f})"
    covered = _inside(mask, lm[EYES])
    if covered.any():
        return f"eye landmarks {[36 + int(i) for i in np.flatnonzero(covered)]} covered"
    return None
