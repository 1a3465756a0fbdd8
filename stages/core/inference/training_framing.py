"""Measuring the framing of the parser's training faces from the cache (the ``framing`` stage's work).

The cache stores each face's 68 landmarks when its source has them (the synthetic faces do). Where it does not
(CelebAMask-HQ), dlib finds them on up to ``detect_limit`` of the training photos, an evenly spaced sample.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field
from tqdm import tqdm

from stages.core.common.params import ParamsSection
from stages.core.data.cache_arrays import CachedSplit
from stages.core.inference.alignment import Framing, measure_framing
from stages.core.masks.landmarks import detect_landmarks


class FramingParams(ParamsSection):
    """The ``framing`` section: how many training photos without landmarks dlib may look at, and the smallest
    face (pixels of the cache) it keeps."""

    SECTION = "framing"
    detect_limit: int = Field(300, ge=1)
    min_face_size: int = Field(40, ge=8)


def cache_landmarks(split: CachedSplit, params: FramingParams) -> np.ndarray:
    """``(N, 68, 2)`` landmarks of the split's faces: the cached ones, then dlib's on a sample of the rest
    (rows it finds no face in, or never looks at, stay NaN)."""
    landmarks = np.array(split.landmarks, np.float64)
    missing = np.flatnonzero(~np.isfinite(landmarks).all(axis=(1, 2)))
    if len(missing) > params.detect_limit:
        missing = missing[np.linspace(0, len(missing) - 1, params.detect_limit).round().astype(int)]
    for row in tqdm(missing, desc="framing: dlib landmarks", unit="photo", disable=not len(missing)):
        faces = detect_landmarks(np.asarray(split.images[row]), params.min_face_size)
        if faces:
            landmarks[row] = faces[0]
    return landmarks


def training_framing(cache_dir, params: FramingParams) -> Framing:
    """The framing of the cache's train split."""
    train = CachedSplit(cache_dir, "train")
    return measure_framing(cache_landmarks(train, params), int(train.images.shape[1]))
