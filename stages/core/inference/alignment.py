"""The framing the parser was trained on, measured from the training data, and warping faces into and out of it.

A :class:`Framing` is where the 68 iBUG landmarks sit, on average, in the ``S x S`` training images: a mean
shape (generalised Procrustes) placed at the median centre, scale and roll of the training faces. A face in a
user's photo is aligned by the similarity transform that maps its landmarks onto that template, so the parser
sees it as it saw its training faces; its class probabilities are warped back with the inverse transform.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stages.core.common.io import write_json_atomic

NUM_LANDMARKS = 68
EYE_RIGHT, EYE_LEFT = slice(36, 42), slice(42, 48)  # the subject's right eye is on the image's left
# The iBUG points a face mask leaves visible: eyebrows (17-26), nose bridge (27-30) and eyes (36-47). On a masked
# face dlib's jaw, lower nose and mouth points are guesses, and an alignment fitted to them inherits the guess.
UPPER_FACE = np.r_[17:31, 36:48]


def _pose(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centre ``(2,)``, RMS radius and roll (radians, of the eye axis) of one ``(68, 2)`` landmark set."""
    centre = points.mean(0)
    scale = float(np.sqrt(((points - centre) ** 2).sum(1).mean()))
    axis = points[EYE_LEFT].mean(0) - points[EYE_RIGHT].mean(0)
    return centre, scale, float(np.arctan2(axis[1], axis[0]))


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _normalised(points: np.ndarray) -> np.ndarray:
    """The shape with its centre at 0, RMS radius 1 and a level eye axis."""
    centre, scale, roll = _pose(points)
    return (points - centre) @ _rotation(-roll).T / scale


@dataclass(frozen=True)
class Framing:
    """``template``: ``(68, 2)`` float landmark positions (x, y) in pixels of a ``size x size`` parser input.

    ``faces``: how many training faces it was measured on; ``spread``: the 5th/50th/95th percentiles of their
    centre, scale (RMS landmark radius, px) and roll (degrees), which tell how varied the training framing is.
    """

    template: np.ndarray
    size: int
    faces: int
    spread: dict

    def scaled_to(self, size: int) -> Framing:
        """The same framing for a parser whose input side is ``size``."""
        return Framing(self.template * (size / self.size), size, self.faces, self.spread)

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, {"size": self.size, "faces": self.faces, "spread": self.spread,
                                 "template": np.round(self.template, 3).tolist()})

    @classmethod
    def load(cls, path: str | Path) -> Framing:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: framing not found (it is written by `dvc repro framing`)")
        try:
            data = json.loads(path.read_text())
            template = np.asarray(data["template"], np.float64)
            size = int(data["size"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a framing file ({exc})") from None
        if template.shape != (NUM_LANDMARKS, 2) or not np.isfinite(template).all() or size < 1:
            raise ValueError(f"{path}: the template must be 68 finite (x, y) points and size positive")
        return cls(template, size, int(data.get("faces", 0)), dict(data.get("spread", {})))


def measure_framing(landmarks: np.ndarray, size: int) -> Framing:
    """The framing of ``landmarks`` ``(N, 68, 2)`` in ``size x size`` images; rows with NaN are ignored.

    Raises ``ValueError`` when no row is usable.
    """
    landmarks = np.asarray(landmarks, np.float64)
    usable = landmarks[np.isfinite(landmarks).all(axis=(1, 2))]
    if not len(usable):
        raise ValueError("no training face has landmarks: the framing cannot be measured")
    shapes = np.stack([_normalised(p) for p in usable])
    mean = shapes.mean(0)
    for _ in range(3):  # generalised Procrustes: align every shape to the mean, then re-average
        shapes = np.stack([s @ _procrustes_rotation(s, mean) for s in shapes])
        mean = _normalised(shapes.mean(0))
    poses = [_pose(p) for p in usable]
    centres = np.stack([c for c, _, _ in poses])
    scales = np.array([s for _, s, _ in poses])
    rolls = np.array([r for _, _, r in poses])
    centre, scale, roll = np.median(centres, 0), float(np.median(scales)), float(np.median(rolls))
    template = mean @ _rotation(roll).T * scale + centre

    def percentiles(values: np.ndarray) -> list[float]:
        return [round(float(v), 3) for v in np.percentile(values, [5, 50, 95])]

    spread = {"centre_x": percentiles(centres[:, 0]), "centre_y": percentiles(centres[:, 1]),
              "scale": percentiles(scales), "roll_degrees": percentiles(np.degrees(rolls))}
    return Framing(template, int(size), len(usable), spread)


def _procrustes_rotation(shape: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ``(2, 2)`` rotation R minimising ``|shape @ R - target|`` (both centred)."""
    u, _, vt = np.linalg.svd(shape.T @ target)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, d]) @ vt


def alignment_matrix(landmarks: np.ndarray, framing: Framing, points: np.ndarray | None = None) -> np.ndarray:
    """``(2, 3)`` similarity transform (rotation, uniform scale, shift) taking photo pixels to parser-input pixels,
    fitted by least squares from a face's ``(68, 2)`` landmarks to the framing's template; ``points``: only these
    landmark indices (e.g. :data:`UPPER_FACE` for a masked face), all 68 by default."""
    chosen = slice(None) if points is None else points
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(landmarks, np.float32)[chosen],
                                            framing.template.astype(np.float32)[chosen], method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("landmarks are degenerate: no similarity transform fits them")
    return matrix


def warp_into_framing(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``(size, size, 3)`` parser input cut from ``image`` ``(H, W, 3)`` with ``matrix`` from
    :func:`alignment_matrix`. Outside the photo the border is reflected, as a real background would be, not black."""
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def paste_back(probabilities: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``(S, S, C)`` class probabilities of an aligned face back into a photo of ``shape`` (H, W).

    Returns ``(H, W, C)`` float32 probabilities (zero outside the face's crop) and the ``(H, W)`` float32
    coverage of the crop (1 inside, 0 outside, fractional along its edge).
    """
    height, width = shape
    size = probabilities.shape[0]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    pasted = np.empty((height, width, probabilities.shape[2]), np.float32)
    # In blocks of 4 channels: OpenCV interpolates images of more channels with a coarser fixed-point table
    # (errors of 0.02 against exact bilinear, measured), fine for pixels but not for probabilities.
    for start in range(0, probabilities.shape[2], 4):
        block = np.ascontiguousarray(probabilities[:, :, start:start + 4], dtype=np.float32)
        warped = cv2.warpAffine(block, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        pasted[:, :, start:start + 4] = warped.reshape(height, width, -1)
    coverage = cv2.warpAffine(np.ones((size, size), np.float32), matrix, (width, height), flags=flags,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return pasted, coverage
