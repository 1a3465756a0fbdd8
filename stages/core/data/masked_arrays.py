"""Reading the masks stage's arrays: ``data/masks/{split}_*`` joined to the clean photos of ``data/cache``.

Per split: ``{split}_masked.npy`` (M, S, S, 3) uint8, ``{split}_masks.npy`` (M, S, S) uint8 in {0, 1} (every
pixel the drawing changed) and ``{split}_source_index.npy`` (M,) int64, the row of the cache split each masked
photo was made from, and ``{split}_landmarks.npy`` (M, 68, 2) float32, the masked face's landmarks (what the
inpainter needs to draw a new mask on the clean photo). Faces the masks stage could not mask have no row.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np


class MaskedPhotos:
    """One split of the masks stage (memory-mapped). ``masked_row(cache_row)`` finds a cache photo's masked copy."""

    def __init__(self, masks_dir: str | Path, split: str):
        masks_dir = Path(masks_dir)
        paths = [masks_dir / f"{split}_{kind}.npy" for kind in ("masked", "masks", "source_index", "landmarks")]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: masks stage output not found (run `dvc repro masks`)")
        self.masked = np.load(paths[0], mmap_mode="r")
        self.masks = np.load(paths[1], mmap_mode="r")
        self.source_index = np.load(paths[2]).astype(np.int64)
        self.landmarks = np.load(paths[3], mmap_mode="r")
        rows = {len(self.masked), len(self.masks), len(self.source_index), len(self.landmarks)}
        if len(rows) != 1 or self.masked.shape[1:3] != self.masks.shape[1:3] or self.landmarks.shape[1:] != (68, 2):
            raise ValueError(f"{masks_dir}: the {split} arrays disagree: masked {self.masked.shape}, masks "
                             f"{self.masks.shape}, source_index {self.source_index.shape}, landmarks "
                             f"{self.landmarks.shape}")

    def __len__(self) -> int:
        return int(self.masked.shape[0])

    @cached_property
    def _rows_by_source(self) -> dict[int, int]:
        return {int(source): row for row, source in enumerate(self.source_index)}

    def masked_row(self, cache_row: int) -> int | None:
        """The masked row made from ``cache_row`` of the cache split, or None when that face was not masked."""
        return self._rows_by_source.get(int(cache_row))
