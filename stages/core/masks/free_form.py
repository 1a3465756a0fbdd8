"""Free-form holes over the lower face, in the manner of LaMa's irregular training masks: thick random strokes and
boxes. The inpainter's training adds them to a drawn mask so that it also fills regions of other shapes, such as the
mask finder's dilated regions at inference.

LaMa's own generators (``saicinpainting/training/data/masks.py``) are not packaged, and they place holes anywhere
in the photo; these are placed by the face's landmarks, so they are written here (a few OpenCV calls).
"""
from __future__ import annotations

import cv2
import numpy as np

from stages.core.masks.landmarks import JAW


def lower_face_box(landmarks: np.ndarray, shape: tuple[int, int], margin: float = 0.15) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the box from the nose bridge's middle (point 29) down to the chin, across the jaw,
    grown by ``margin`` × the jaw's width on each side and clipped to the ``(H, W)`` photo."""
    lm = np.asarray(landmarks, np.float64)
    jaw = lm[JAW]
    width = float(jaw[:, 0].max() - jaw[:, 0].min())
    grow = margin * width
    x0, x1 = jaw[:, 0].min() - grow, jaw[:, 0].max() + grow
    y0, y1 = lm[29, 1] - grow / 2, jaw[:, 1].max() + grow
    height, width_px = shape
    return (int(np.clip(np.floor(x0), 0, width_px)), int(np.clip(np.floor(y0), 0, height)),
            int(np.clip(np.ceil(x1), 0, width_px)), int(np.clip(np.ceil(y1), 0, height)))


def free_form_hole(landmarks: np.ndarray, shape: tuple[int, int], rng: np.random.Generator,
                   strokes: tuple[int, int] = (1, 4), boxes: tuple[int, int] = (0, 2)) -> np.ndarray:
    """An ``(H, W)`` uint8 {0, 1} hole inside :func:`lower_face_box` of the face of ``landmarks`` ``(68, 2)``.

    ``strokes``: how many polylines (inclusive range), each of 2 to 6 segments, as thick as 6 to 18 % of the box's
    width, turning by up to 120° at each vertex. ``boxes``: how many rectangles, each side 15 to 50 % of the box's.
    """
    hole = np.zeros(shape, np.uint8)
    x0, y0, x1, y1 = lower_face_box(landmarks, shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return hole
    side = float(x1 - x0)
    for _ in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        point = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        angle = rng.uniform(0, 2 * np.pi)
        vertices = [point.copy()]
        for _ in range(int(rng.integers(2, 7))):
            angle += rng.uniform(-2 * np.pi / 3, 2 * np.pi / 3)
            point = point + rng.uniform(0.1, 0.35) * side * np.array([np.cos(angle), np.sin(angle)])
            point = np.clip(point, (x0, y0), (x1, y1))
            vertices.append(point.copy())
        thickness = max(int(round(rng.uniform(0.06, 0.18) * side)), 1)
        cv2.polylines(hole, [np.round(vertices).astype(np.int32)], False, 1, thickness, cv2.LINE_8)
    for _ in range(int(rng.integers(boxes[0], boxes[1] + 1))):
        w, h = rng.uniform(0.15, 0.5, 2) * np.array([x1 - x0, y1 - y0])
        left, top = rng.uniform(x0, x1 - w), rng.uniform(y0, y1 - h)
        cv2.rectangle(hole, (int(left), int(top)), (int(left + w), int(top + h)), 1, -1)
    clip = np.zeros(shape, np.uint8)
    clip[y0:y1, x0:x1] = 1
    return hole & clip
