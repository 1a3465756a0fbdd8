"""Face landmarks: dlib's HOG detector and 68-point shape predictor, and sanity checks on 68-point sets.

Landmarks are ``(68, 2)`` float32 arrays of iBUG-68 points ``(x, y)`` in image pixels, 0-based:
jaw 0-16, brows 17-26, nose bridge 27-30, lower nose 31-35, eyes 36-47, mouth 48-67.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import cv2
import numpy as np

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"

JAW = slice(0, 17)
NOSE_BRIDGE = slice(27, 31)
NOSE_LOWER = slice(31, 36)
RIGHT_EYE = slice(36, 42)  # the subject's right eye: on the image's left
LEFT_EYE = slice(42, 48)
EYES = slice(36, 48)
MOUTH = slice(48, 68)
CHIN = slice(7, 10)


def predictor_path() -> Path:
    """Path of the 68-point model shipped by the PyPI package ``face-recognition-models``.

    The package is located without importing it: its ``__init__`` imports ``pkg_resources``,
    which recent setuptools no longer provides.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the PyPI package 'face-recognition-models' is not installed; it ships the dlib 68-point model"
        )
    path = Path(spec.submodule_search_locations[0]) / "models" / PREDICTOR_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: dlib 68-point model missing from face-recognition-models")
    return path


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib  # imported lazily: stages that get landmarks from their source never need it

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor_path()))


def detect_faces(image_rgb: np.ndarray, min_face_size: int = 40, upsample: int = 0) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(left, top, right, bottom)`` whose shorter side is at least ``min_face_size`` pixels.

    ``image_rgb``: ``(H, W, 3)`` uint8 (``(H, W)`` gray is accepted too). Largest face first.
    ``upsample`` doubles the image that many times before detecting (finds faces under ~80 px, 4x slower).
    """
    detector, _ = _dlib_models()
    image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
    boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(image, int(upsample))]
    boxes = [b for b in boxes if min(b[2] - b[0], b[3] - b[1]) >= min_face_size]
    return sorted(boxes, key=lambda b: (-(b[2] - b[0]) * (b[3] - b[1]), b[0], b[1]))


def predict_landmarks(image_rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``(68, 2)`` float32 landmarks of the face in ``box`` = ``(left, top, right, bottom)``."""
    import dlib

    _, predictor = _dlib_models()
    shape = predictor(np.ascontiguousarray(image_rgb, dtype=np.uint8), dlib.rectangle(*[int(v) for v in box]))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def detect_landmarks(image_rgb: np.ndarray, min_face_size: int = 40, upsample: int = 0,
                     pad_retries: tuple[float, ...] = (0.25, 0.5)) -> list[np.ndarray]:
    """Landmarks of every face at least ``min_face_size`` px wide: a list of ``(68, 2)`` float32, largest first.

    When nothing is found, the search is repeated on the image padded by each of ``pad_retries`` x its
    size on every side (mid-grey): the HOG detector misses faces cropped tightly to the frame.
    """
    image = np.asarray(image_rgb)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    image = np.ascontiguousarray(image, dtype=np.uint8)
    faces = [predict_landmarks(image, box) for box in detect_faces(image, min_face_size, upsample)]
    for pad in pad_retries:
        if faces:
            break
        pad_y, pad_x = (int(round(pad * n)) for n in image.shape[:2])
        padded = cv2.copyMakeBorder(image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        offset = np.array([pad_x, pad_y], np.float32)
        faces = [predict_landmarks(padded, box) - offset for box in detect_faces(padded, min_face_size, upsample)]
    return faces


def face_height(landmarks: np.ndarray) -> float:
    """Brow-to-chin height of the landmark set, in pixels."""
    return float(landmarks[:, 1].max() - landmarks[:, 1].min())


def landmark_problem(landmarks: np.ndarray, image_shape: tuple[int, ...], min_face_size: float = 0) -> str | None:
    """Why a ``(68, 2)`` landmark set cannot carry a mask, or ``None`` when it passes the sanity checks.

    Checks: finite values; nose and mouth inside the image; the face at least ``min_face_size`` px wide;
    the anatomy in order (eyes above the nose tip, nose above the mouth, mouth above the chin, the
    subject's right eye on the image's left); plausible proportions (eye distance vs. jaw width).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        return f"landmarks have shape {lm.shape}, expected (68, 2)"
    if not np.isfinite(lm).all():
        return "landmarks are not finite"
    height, width = image_shape[:2]
    core = np.concatenate([lm[NOSE_LOWER], lm[MOUTH]])
    if (core[:, 0] < 0).any() or (core[:, 0] > width - 1).any() or (core[:, 1] < 0).any() or (core[:, 1] > height - 1).any():
        return "nose or mouth landmarks lie outside the image"
    jaw_width = float(np.linalg.norm(lm[16] - lm[0]))
    if jaw_width < max(min_face_size, 8):
        return f"face too small ({jaw_width:.0f} px wide, minimum {max(min_face_size, 8):.0f})"
    right_eye, left_eye = lm[RIGHT_EYE].mean(0), lm[LEFT_EYE].mean(0)
    eye_axis = left_eye - right_eye
    eye_distance = float(np.linalg.norm(eye_axis))
    if not 0.25 <= eye_distance / jaw_width <= 0.75:
        return f"implausible proportions (eye distance / jaw width = {eye_distance / jaw_width:.2f})"
    # Measure "below" along the face's own vertical axis so that rolled heads pass.
    down = np.array([-eye_axis[1], eye_axis[0]]) / max(eye_distance, 1e-6)
    eye_level = float((right_eye + left_eye) @ down / 2)
    nose_level = float(lm[33] @ down)
    mouth_level = float(lm[MOUTH].mean(0) @ down)
    chin_level = float(lm[8] @ down)
    if not eye_level < nose_level < mouth_level < chin_level:
        return "landmarks out of anatomical order (eyes, nose, mouth, chin)"
    return None


def head_yaw(landmarks: np.ndarray) -> float:
    """Signed yaw proxy in ``[-1, 1]``: 0 frontal, negative when the nose tip is nearer the image's left jaw edge.

    It is ``2 * r - 1`` where ``r`` is where the nose tip (30) falls between jaw points 0 and 16.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    axis = lm[16] - lm[0]
    r = float((lm[30] - lm[0]) @ axis / max(axis @ axis, 1e-6))
    return float(np.clip(2 * r - 1, -1, 1))
