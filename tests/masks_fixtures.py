"""Shared fixtures for the masks tests: a real face that ships in a wheel (scikit-image's astronaut)."""
from __future__ import annotations

import functools

import cv2
import numpy as np


@functools.lru_cache(maxsize=1)
def _astronaut_face() -> tuple[np.ndarray, np.ndarray]:
    import skimage.data

    from stages.core.masks.landmarks import detect_landmarks

    photo = skimage.data.astronaut()  # (512, 512, 3) uint8
    crop = np.ascontiguousarray(photo[40:200, 140:300])
    image = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_AREA)
    faces = detect_landmarks(image, min_face_size=40)
    assert len(faces) == 1, "dlib should find the astronaut's face"
    return image, faces[0]


def astronaut_face() -> tuple[np.ndarray, np.ndarray]:
    """``(256, 256, 3)`` uint8 face photo and its ``(68, 2)`` float32 dlib landmarks (copies)."""
    image, landmarks = _astronaut_face()
    return image.copy(), landmarks.copy()
