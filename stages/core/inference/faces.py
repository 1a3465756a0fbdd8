"""Finding faces and their 68 landmarks in a user's photo with dlib.

dlib's HOG detector runs first. Its CNN detector (``mmod_human_face_detector.dat``, shipped in the PyPI package
face-recognition-models) then looks for the faces HOG misses: turned heads, poor light, small faces. Both feed
dlib's 68-point shape predictor. Faces smaller than the minimum size, or whose landmarks fail the anatomy checks
of :func:`stages.core.masks.landmarks.landmark_problem`, are set aside with the reason.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from stages.core.masks.landmarks import detect_faces, landmark_problem, predict_landmarks, predictor_path

CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"
DETECTORS = ("hog", "cnn", "hog+cnn")
SAME_FACE_IOU = 0.3


@dataclass(frozen=True)
class Face:
    """One face: ``box`` (left, top, right, bottom) in photo pixels, ``landmarks`` (68, 2) float32 (x, y),
    and the detector that found it (``hog`` or ``cnn``)."""

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    detector: str


@dataclass(frozen=True)
class Detection:
    """The usable faces of a photo (largest first) and why each other candidate was set aside."""

    faces: list[Face]
    rejected: list[str]


@functools.lru_cache(maxsize=1)
def _cnn_detector():
    import dlib

    path = predictor_path().parent / CNN_DETECTOR_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: dlib's CNN face detector is missing from face-recognition-models")
    return dlib.cnn_face_detection_model_v1(str(path))


def cnn_boxes(image: np.ndarray, max_side: int = 800, upsample: int = 0) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(left, top, right, bottom)`` from dlib's CNN detector, run on a copy of ``image`` (H, W, 3)
    shrunk to at most ``max_side`` pixels (it is slow on a CPU), in the photo's pixels."""
    scale = min(1.0, max_side / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = _cnn_detector()(np.ascontiguousarray(small, np.uint8), int(upsample))
    return [tuple(int(round(v / scale)) for v in (d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()))
            for d in found]


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def find_faces(image: np.ndarray, min_face_size: int = 40, detector: str = "hog+cnn", upsample: int = 1,
               cnn_max_side: int = 800) -> Detection:
    """Every face in ``image`` (H, W, 3) uint8 RGB whose box side is at least ``min_face_size`` pixels.

    ``detector``: ``hog``, ``cnn`` or ``hog+cnn`` (HOG, then the CNN for the faces HOG missed).
    ``upsample``: how many times HOG doubles the photo first (1 finds faces down to about 40 px).
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    candidates: list[tuple[tuple[int, int, int, int], str]] = []
    if "hog" in detector:
        candidates += [(box, "hog") for box in detect_faces(image, 1, upsample)]
    if "cnn" in detector:
        for box in cnn_boxes(image, cnn_max_side):
            if all(box_iou(box, known) < SAME_FACE_IOU for known, _ in candidates):
                candidates.append((box, "cnn"))
    faces, rejected = [], []
    for box, source in candidates:
        side = min(box[2] - box[0], box[3] - box[1])
        if side < min_face_size:
            rejected.append(f"a face of {side} px at {list(box)} is below the minimum size of {min_face_size} px")
            continue
        landmarks = predict_landmarks(image, box)
        problem = landmark_problem(landmarks, image.shape, min_face_size=0)
        if problem:
            rejected.append(f"the face at {list(box)} gave unusable landmarks: {problem}")
            continue
        faces.append(Face(box, landmarks, source))
    faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return Detection(faces, rejected)
