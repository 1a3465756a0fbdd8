"""Masking the cached splits: ``data/cache/{split}_*`` in, ``data/masks/`` out (the masks stage's work).

Inputs per split: ``{split}_images.npy`` (N, S, S, 3) uint8, ``{split}_landmarks.npy`` (N, 68, 2) float32
(NaN rows: detect with dlib), ``{split}_ids.csv`` (row, id, source).
Outputs: ``{split}_masked.npy`` (M, S, S, 3) uint8, ``{split}_masks.npy`` (M, S, S) uint8 in {0, 1},
``{split}_source_index.npy`` (M,) int64 (row in the cache arrays), ``{split}_landmarks.npy`` (M, 68, 2) float32
(the masked face's landmarks, given or dlib's; the largest face's where there were several), ``manifest.csv``, ``report.csv``
(failures) and ``examples.png``; the folder is replaced as a whole (built beside it, then renamed).

Each row draws from its own generator seeded by ``(seed, split, row)``, so outputs depend on nothing
but the inputs and the params.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from stages.core.common.io import atomic_path, load_npy, write_bytes_atomic, write_npy_atomic, write_png
from stages.core.common.staging import staged_dir
from stages.core.data.cache_arrays import CachedSplit
from stages.core.masks.config import MaskParams
from stages.core.masks.contact_sheet import contact_sheet, pick_examples
from stages.core.masks.fitting import FitError
from stages.core.masks.photo import mask_photo

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ["split", "row", "id", "mask_type", "variant", "coverage", "landmark_source", "faces", "masked_row"]
REPORT_COLUMNS = ["split", "row", "id", "reason"]


@dataclass
class SplitResult:
    manifest: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)


def row_rng(seed: int, split: str, row: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), SPLITS.index(split), int(row)])


def read_split(cache_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Memory-mapped images ``(N, S, S, 3)``, landmarks ``(N, 68, 2)`` and the ids table of one split."""
    cached = CachedSplit(cache_dir, split).check()
    return cached.images, cached.landmarks, cached.ids.sort_values("row").reset_index(drop=True)


def mask_split(cache_dir: Path, out_dir: Path, split: str, params: MaskParams) -> SplitResult:
    """Mask one split and write its three arrays; return its manifest rows and failures."""
    images, landmarks, ids = read_split(cache_dir, split)
    count, size = len(images), images.shape[1:3]
    result = SplitResult()
    with tempfile.TemporaryDirectory(prefix=f".{split}_scratch.", dir=out_dir) as scratch:
        # Written row by row into N-row scratch arrays (no need to hold a split in memory),
        # then cut to the M masked rows.
        masked_all = np.lib.format.open_memmap(Path(scratch) / "masked.npy", "w+", np.uint8, (max(count, 1), *size, 3))
        masks_all = np.lib.format.open_memmap(Path(scratch) / "masks.npy", "w+", np.uint8, (max(count, 1), *size))
        source_rows: list[int] = []
        face_landmarks: list[np.ndarray] = []
        for row in tqdm(range(count), desc=f"masks {split}", unit="img", mininterval=2):
            image_id = str(ids.at[row, "id"])
            try:
                photo = mask_photo(images[row], landmarks[row], row_rng(params.seed, split, row), params)
            except FitError as exc:
                result.failures.append({"split": split, "row": row, "id": image_id, "reason": str(exc)})
                continue
            masked_all[len(source_rows)] = photo.masked
            masks_all[len(source_rows)] = photo.binary
            result.manifest.append({
                "split": split, "row": row, "id": image_id, "mask_type": photo.mask_type,
                "variant": "+".join(photo.variants), "coverage": round(photo.coverage, 6),
                "landmark_source": photo.landmark_source, "faces": len(photo.variants), "masked_row": len(source_rows),
            })
            source_rows.append(row)
            face_landmarks.append(photo.landmarks[0])
        kept = len(source_rows)
        _save_rows(out_dir / f"{split}_masked.npy", masked_all, kept)
        _save_rows(out_dir / f"{split}_masks.npy", masks_all, kept)
        del masked_all, masks_all
    write_npy_atomic(out_dir / f"{split}_source_index.npy", np.asarray(source_rows, np.int64))
    write_npy_atomic(out_dir / f"{split}_landmarks.npy", np.asarray(face_landmarks, np.float32).reshape(-1, 68, 2))
    log.info("masks %s: %d of %d images masked, %d failed", split, kept, count, len(result.failures))
    return result


def _save_rows(path: Path, scratch: np.memmap, rows: int) -> None:
    """Write the first ``rows`` rows of ``scratch`` as the final ``path`` (atomically)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(scratch[:rows]))


def write_examples(out_dir: Path, manifest: pd.DataFrame, count: int) -> None:
    """``examples.png``: up to ``count`` masked images, every mask type included, captioned type/variant."""
    picks = pick_examples(list(manifest["mask_type"]), count) if len(manifest) else []
    tiles, captions = [], []
    for i in picks:
        entry = manifest.iloc[i]
        tiles.append(np.asarray(load_npy(out_dir / f"{entry['split']}_masked.npy")[int(entry["masked_row"])]))
        captions.append(f"{entry['mask_type']} {entry['variant']}")
    write_png(out_dir / "examples.png", contact_sheet(tiles, captions))


def run_masks(cache_dir: str | os.PathLike, out_dir: str | os.PathLike, params: MaskParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mask every split of ``cache_dir`` into ``out_dir``; returns (manifest, failures) tables.

    The whole folder is built beside ``out_dir`` and swapped in at the end (:func:`staged_dir`), so an
    interrupted run leaves the previous ``out_dir`` (or none), never a mix of old and new splits.
    """
    cache_dir, out_dir = Path(cache_dir), Path(out_dir)
    manifest_rows, failure_rows = [], []
    with staged_dir(out_dir) as building:
        for split in SPLITS:
            result = mask_split(cache_dir, building, split, params)
            manifest_rows += result.manifest
            failure_rows += result.failures
        manifest = pd.DataFrame(manifest_rows, columns=MANIFEST_COLUMNS)
        failures = pd.DataFrame(failure_rows, columns=REPORT_COLUMNS)
        write_bytes_atomic(building / "manifest.csv", manifest.to_csv(index=False).encode())
        write_bytes_atomic(building / "report.csv", failures.to_csv(index=False).encode())
        write_examples(building, manifest, params.examples)
    return manifest, failures
