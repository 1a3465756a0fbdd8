"""A fixed "reframed" test set: the aligned test photos zoomed out and in, shifted and rotated, as users' photos are.

The parser is trained on aligned, CelebA-HQ-style crops; a user's photo is not one. Each test photo ``(S, S, 3)``
and its label ``(S, S)`` are moved by one random similarity transform (a uniform scale, a rotation about the
photo's centre and a shift) into a new ``S x S`` photo of the same size, so the parser can be scored on it as
it stands (the "whole photo" score) and through ``faceparse``'s detect-align-parse-paste path.

Padding. Where the warp reaches outside the photo (always, when zooming out), the photo is continued with
``cv2.BORDER_REFLECT_101``: a mirror of the photo itself, so the padding looks like a real background rather
than a black frame that a detector or the parser could key on. The label is warped by the same matrix with
nearest-neighbour interpolation and the same border mode, so a padded pixel is labelled with the class of the
pixel it mirrors: when a zoomed-out photo shows a mirrored copy of part of the face (or hair) in its padding,
the label marks that copy too.

What is scored. A CelebA-HQ crop is mostly face and hair, so its mirror is mostly mirrored face parts, cut off by
the mirror line: on the real CelebAMask-HQ test split about a third of the reframed set's foreground pixels are
such copies. No user's photo holds a ring of half-faces around the face, and ``faceparse`` is right not to call
one a face, so the headline scores count the pixels that show the photo itself (its *footprint*, the warped
photo square; all of the frame when zooming in) and leave the padding out, as an unlabelled void would be.
The scores with the padding included are reported beside them, so the cost of the mirrored copies stays visible.

Determinism. Photo ``i`` gets its transform from a generator seeded by ``(seed, i)``, so the same seed gives
the same set whatever the number of photos taken, as LaMa's fixed evaluation mask sets do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import Field, model_validator

from stages.core.common.params import ParamsSection


class ReframedParams(ParamsSection):
    """``benchmark.reframed``: how the reframed test set is drawn and how the parse path detects faces in it.

    ``scale_min``/``scale_max``: the face's zoom (below 1 zooms out), drawn log-uniformly in that range;
    ``max_shift``: the largest shift along each axis, as a fraction of the photo side; ``max_rotation``: degrees,
    drawn uniformly in ``[-max_rotation, max_rotation]``; ``images``: how many test photos, the first ones
    (0 = all); ``detector``, ``upsample``, ``min_face_size`` (pixels of the ``S x S`` photo): the dlib settings
    of the parse path (``faceparse``'s defaults are hog+cnn, 1 and 40 px for photos of any size; the cache's
    photos are small, and a face zoomed out to 0.4 of its aligned size is about 45 px wide at 256 px, so the
    default keeps faces down to 24 px); ``sample_rows``: rows of ``metrics/plots/parser_reframed.png``.
    """

    SECTION = "benchmark.reframed"
    scale_min: float = Field(0.4, gt=0)
    scale_max: float = Field(1.5, gt=0)
    max_shift: float = Field(0.15, ge=0, le=0.5)
    max_rotation: float = Field(30, ge=0, le=180)
    seed: int = 0
    images: int = Field(0, ge=0)
    detector: Literal["hog", "cnn", "hog+cnn"] = "hog+cnn"
    upsample: int = Field(1, ge=0, le=3)
    min_face_size: int = Field(24, ge=1)
    sample_rows: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _ordered_scales(self) -> ReframedParams:
        if self.scale_min > self.scale_max:
            raise ValueError(f"scale_min {self.scale_min} is above scale_max {self.scale_max}")
        return self


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of photo ``index`` of the set drawn with ``seed``; independent of every other photo's."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def random_transform(rng: np.random.Generator, size: int, settings: ReframedParams) -> np.ndarray:
    """A ``(2, 3)`` float64 similarity matrix taking aligned-photo pixels to reframed-photo pixels (both ``size``
    square): scale (log-uniform in ``[scale_min, scale_max]``) and rotation (uniform, degrees, positive turns the
    face anticlockwise as seen) about the photo's centre, then a shift (uniform per axis, in pixels)."""
    scale = float(np.exp(rng.uniform(np.log(settings.scale_min), np.log(settings.scale_max))))
    angle = float(rng.uniform(-settings.max_rotation, settings.max_rotation))
    shift = rng.uniform(-settings.max_shift, settings.max_shift, size=2) * size
    centre = (size - 1) / 2.0  # pixel centres, as cv2.warpAffine maps them
    matrix = cv2.getRotationMatrix2D((centre, centre), angle, scale)
    matrix[:, 2] += shift
    return matrix


def decompose(matrix: np.ndarray, size: int) -> tuple[float, float, np.ndarray]:
    """``(scale, angle in degrees, shift (2,) in pixels)`` of a matrix made by :func:`random_transform`."""
    matrix = np.asarray(matrix, np.float64)
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    angle = float(np.degrees(np.arctan2(matrix[0, 1], matrix[0, 0])))
    centre = np.full(2, (size - 1) / 2.0)
    shift = matrix[:, :2] @ centre + matrix[:, 2] - centre
    return scale, angle, shift


def warp(image: np.ndarray, label: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (S, S, 3) uint8 and ``label`` (S, S) uint8 moved by ``matrix`` (2, 3) into an ``S x S`` frame.

    The image is interpolated bilinearly, the label with nearest-neighbour; both continue past the photo's edge
    with ``BORDER_REFLECT_101`` (see the module docstring), so padded pixels are a mirrored photo and its label.
    """
    height, width = label.shape
    out_image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
    out_label = cv2.warpAffine(np.ascontiguousarray(label), matrix, (width, height), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_REFLECT_101)
    return out_image, out_label


def footprint(matrix: np.ndarray, size: int) -> np.ndarray:
    """``(size, size)`` bool: the pixels of a reframed frame that ``matrix`` (2, 3) fills from inside the photo
    (the ones :func:`warp` does not take from the padding)."""
    inside = np.ones((size, size), np.uint8)
    return cv2.warpAffine(inside, np.asarray(matrix, np.float64), (size, size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def reframe(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
            settings: ReframedParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One reframed photo: ``(image (S, S, 3) uint8, label (S, S) uint8, matrix (2, 3) float64)``.

    ``image`` (S, S, 3) uint8 and ``label`` (S, S) uint8 are an aligned photo and its label; ``matrix`` takes
    their pixels to the returned ones (``cv2.transform`` moves landmarks with it).
    """
    if image.shape[:2] != label.shape or label.shape[0] != label.shape[1]:
        raise ValueError(f"expected a square (S, S, 3) image and (S, S) label, got {image.shape} and {label.shape}")
    matrix = random_transform(rng, label.shape[0], settings)
    out_image, out_label = warp(image, label, matrix)
    return out_image, out_label, matrix


@dataclass(frozen=True)
class ReframedSet:
    """``images`` (N, S, S, 3) uint8, ``labels`` (N, S, S) uint8, ``matrices`` (N, 2, 3) float64, the test
    split's ``rows`` (N,) they came from, and ``footprints`` (N, S, S) bool, the pixels that show the photo
    itself rather than its mirrored padding (see :func:`footprint`)."""

    images: np.ndarray
    labels: np.ndarray
    matrices: np.ndarray
    rows: np.ndarray
    footprints: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def reframed_set(images: np.ndarray, labels: np.ndarray, settings: ReframedParams) -> ReframedSet:
    """The reframed set of the first ``settings.images`` (all when 0) of ``images`` (N, S, S, 3) uint8 and
    ``labels`` (N, S, S) uint8 (a cached split's arrays); photo ``i`` is drawn from :func:`image_rng`
    ``(settings.seed, i)``."""
    n = min(len(images), settings.images) if settings.images else len(images)
    size = labels.shape[1]
    out_images = np.empty((n, size, size, 3), np.uint8)
    out_labels = np.empty((n, size, size), np.uint8)
    matrices = np.empty((n, 2, 3), np.float64)
    for i in range(n):
        out_images[i], out_labels[i], matrices[i] = reframe(np.asarray(images[i]), np.asarray(labels[i]),
                                                            image_rng(settings.seed, i), settings)
    footprints = np.stack([footprint(m, size) for m in matrices]) if n else np.zeros((0, size, size), bool)
    return ReframedSet(out_images, out_labels, matrices, np.arange(n), footprints)
