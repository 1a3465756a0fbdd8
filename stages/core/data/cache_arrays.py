"""The packed, memory-mappable training cache: one array file per split and kind.

Layout of ``data/cache/``:
``{split}_images.npy`` (N, S, S, 3) uint8 RGB, ``{split}_labels.npy`` (N, S, S) uint8 unified ids,
``{split}_landmarks.npy`` (N, 68, 2) float32 (x, y) in cache pixels, NaN rows where unknown, and
``{split}_ids.csv`` (row, id, source). Photos are padded to a square (centred, black, labelled
background) and resized with area interpolation; labels with nearest-neighbour.
"""
from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from numpy.lib.format import open_memmap
from pydantic import Field
from tqdm import tqdm

from stages.core.common.classes import NUM_CLASSES
from stages.core.common.io import atomic_path, read_image, read_label, write_bytes_atomic
from stages.core.common.params import ParamsSection
from stages.core.common.splits import SPLITS


class CacheParams(ParamsSection):
    """The ``cache`` section: the side of the square arrays (a multiple of 32, the parsers' stride) and workers."""

    SECTION = "cache"
    size: int = Field(128, ge=32, multiple_of=32)
    workers: int = Field(2, ge=1)

NUM_LANDMARKS = 68


def square_resize(image: np.ndarray, label: np.ndarray, landmarks: np.ndarray | None, size: int):
    """Pad ``image`` (H, W, 3) and ``label`` (H, W) to a centred square, resize to ``size``; move the landmarks.

    Returns (image (S, S, 3), label (S, S), landmarks (68, 2) float32, NaN when ``landmarks`` is None).
    """
    h, w = label.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    if (h, w) != (side, side):
        pad = ((top, side - h - top), (left, side - w - left))
        image = np.pad(image, pad + ((0, 0),))
        label = np.pad(label, pad)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    label = cv2.resize(label, (size, size), interpolation=cv2.INTER_NEAREST)
    if landmarks is None:
        points = np.full((NUM_LANDMARKS, 2), np.nan, np.float32)
    else:
        # pixel centres: x_new + 0.5 = (x + left + 0.5) * size / side
        points = ((np.asarray(landmarks, np.float64) + [left + 0.5, top + 0.5]) * (size / side) - 0.5).astype(np.float32)
    return image, label, points


@dataclass(frozen=True)
class _Row:
    image: str
    label: str
    landmarks: tuple | None


def _load_row(row: _Row, size: int):
    image = read_image(row.image)
    label = read_label(row.label).astype(np.uint8)
    if label.shape != image.shape[:2]:
        raise ValueError(f"{row.label}: unified label {label.shape} does not match its image {image.shape[:2]}")
    return square_resize(image, label, None if row.landmarks is None else np.asarray(row.landmarks), size)


_SIZE = 0


def _init_worker(size: int) -> None:
    global _SIZE
    _SIZE = size
    cv2.setNumThreads(1)


def _worker(row: _Row):
    return _load_row(row, _SIZE)


def pack_split(manifest: pd.DataFrame, landmarks: dict[str, list], split: str, size: int, out_dir: Path,
               workers: int = 2) -> np.ndarray:
    """Write the arrays of one split (rows in manifest order). Returns its per-class pixel counts (11,)."""
    rows = manifest[manifest["split"] == split].reset_index(drop=True)
    n = len(rows)
    jobs = [_Row(r.image, r.label, tuple(map(tuple, landmarks[r.id])) if r.id in landmarks else None)
            for r in rows.itertuples()]
    counts = np.zeros(NUM_CLASSES, np.int64)
    with atomic_path(out_dir / f"{split}_images.npy") as img_tmp, \
            atomic_path(out_dir / f"{split}_labels.npy") as lbl_tmp, \
            atomic_path(out_dir / f"{split}_landmarks.npy") as lm_tmp:
        images = open_memmap(img_tmp, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        labels = open_memmap(lbl_tmp, mode="w+", dtype=np.uint8, shape=(n, size, size))
        points = open_memmap(lm_tmp, mode="w+", dtype=np.float32, shape=(n, NUM_LANDMARKS, 2))
        if workers > 1 and n > 32:
            # plain fork can deadlock once OpenCV or torch run threads
            with mp.get_context("forkserver").Pool(workers, initializer=_init_worker, initargs=(size,)) as pool:
                results = pool.imap(_worker, jobs, chunksize=16)
                for i, (img, lbl, lm) in enumerate(tqdm(results, total=n, desc=f"cache {split}")):
                    images[i], labels[i], points[i] = img, lbl, lm
                    counts += np.bincount(lbl.ravel(), minlength=NUM_CLASSES)
        else:
            for i, job in enumerate(tqdm(jobs, desc=f"cache {split}")):
                images[i], labels[i], points[i] = _load_row(job, size)
                counts += np.bincount(labels[i].ravel(), minlength=NUM_CLASSES)
        for arr in (images, labels, points):
            arr.flush()
        del images, labels, points
    ids = pd.DataFrame({"row": np.arange(n), "id": rows["id"], "source": rows["source"]})
    write_bytes_atomic(out_dir / f"{split}_ids.csv", ids.to_csv(index=False).encode())
    return counts


class CachedSplit:
    """Read access to one split of the cache; arrays are memory-mapped, nothing is decoded."""

    def __init__(self, cache_dir: str | Path, split: str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        self.dir, self.split = Path(cache_dir), split
        path = self.dir / f"{split}_images.npy"
        if not path.exists():
            raise FileNotFoundError(f"{path}: cache split not found (run `dvc repro cache`)")

    def _load(self, kind: str) -> np.ndarray:
        return np.load(self.dir / f"{self.split}_{kind}.npy", mmap_mode="r")

    @cached_property
    def images(self) -> np.ndarray:
        return self._load("images")

    @cached_property
    def labels(self) -> np.ndarray:
        return self._load("labels")

    @cached_property
    def landmarks(self) -> np.ndarray:
        return self._load("landmarks")

    @cached_property
    def ids(self) -> pd.DataFrame:
        return pd.read_csv(self.dir / f"{self.split}_ids.csv")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def check(self) -> CachedSplit:
        """Raise ``ValueError`` naming the file when an array's shape or dtype breaks the layout above."""
        n = len(self)
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"{self.dir / f'{self.split}_images.npy'}: expected (N, S, S, 3) uint8, "
                             f"got {self.images.shape} {self.images.dtype}")
        if self.labels.shape != self.images.shape[:3]:
            raise ValueError(f"{self.dir / f'{self.split}_labels.npy'}: expected {self.images.shape[:3]}, "
                             f"got {self.labels.shape}")
        if self.landmarks.shape != (n, NUM_LANDMARKS, 2):
            raise ValueError(f"{self.dir / f'{self.split}_landmarks.npy'}: expected ({n}, {NUM_LANDMARKS}, 2), "
                             f"got {self.landmarks.shape}")
        if len(self.ids) != n or not {"row", "id"} <= set(self.ids.columns):
            raise ValueError(f"{self.dir / f'{self.split}_ids.csv'}: expected {n} rows with columns row, id")
        return self
