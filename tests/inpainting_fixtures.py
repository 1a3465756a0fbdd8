"""A tiny cache and masks-stage output on disk: 64-px photos of smooth colour gradients with a labelled disc,
and a rectangular 'mask' drawn over their lower half, as the inpainter's training and benchmark read them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 64


def _photo(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    base = rng.uniform(40, 200, 3)
    slope = rng.uniform(-60, 60, (2, 3))
    image = base + yy[..., None] * slope[0] + xx[..., None] * slope[1]
    centre, radius = rng.uniform(24, 40, 2), rng.uniform(10, 18)
    disc = (yy * SIZE - centre[0]) ** 2 + (xx * SIZE - centre[1]) ** 2 < radius**2
    image[disc] = rng.uniform(60, 220, 3)
    labels = np.where(disc, 7, 0).astype(np.uint8)  # face skin on background
    return np.clip(image, 0, 255).astype(np.uint8), labels


def write_masked_project(root: Path, counts: dict[str, int] | None = None) -> tuple[Path, Path]:
    """Write ``root/cache`` and ``root/masks`` for splits train/val/test; returns (masks_dir, cache_dir)."""
    counts = counts or {"train": 24, "val": 6, "test": 6}
    cache, masks = root / "cache", root / "masks"
    cache.mkdir(parents=True)
    masks.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in counts.items():
        photos = [_photo(rng) for _ in range(n)]
        images = np.stack([p[0] for p in photos])
        np.save(cache / f"{split}_images.npy", images)
        np.save(cache / f"{split}_labels.npy", np.stack([p[1] for p in photos]))
        landmarks = np.full((n, 68, 2), np.nan, np.float32)
        np.save(cache / f"{split}_landmarks.npy", landmarks)
        hole = np.zeros((n, SIZE, SIZE), np.uint8)
        hole[:, 36:56, 16:48] = 1
        masked = images.copy()
        masked[hole.astype(bool)] = (90, 140, 200)
        np.save(masks / f"{split}_masked.npy", masked)
        np.save(masks / f"{split}_masks.npy", hole)
        np.save(masks / f"{split}_source_index.npy", np.arange(n))
        np.save(masks / f"{split}_landmarks.npy", landmarks)
    return masks, cache


FACE_SIZE = 96


def write_face_project(root: Path, counts: dict[str, int] | None = None) -> tuple[Path, Path]:
    """Synthetic faces at 96 px with their labels and landmarks in ``root/cache``, masked by the masks stage's own
    code into ``root/masks``; returns (masks_dir, cache_dir)."""
    import pandas as pd

    from stages.core.data.synthetic_faces import face_rng, render_face
    from stages.core.masks.cache_masking import run_masks

    counts = counts or {"train": 12, "val": 4, "test": 4}
    cache = root / "cache"
    cache.mkdir(parents=True)
    start = 0
    for split, n in counts.items():
        faces = [render_face(face_rng(0, start + i), FACE_SIZE) for i in range(n)]
        start += n
        np.save(cache / f"{split}_images.npy", np.stack([f.image for f in faces]))
        np.save(cache / f"{split}_labels.npy", np.stack([f.label for f in faces]))
        np.save(cache / f"{split}_landmarks.npy", np.stack([f.landmarks for f in faces]).astype(np.float32))
        pd.DataFrame({"row": range(n), "id": [f"{split}{i}" for i in range(n)], "source": "synthetic"}).to_csv(
            cache / f"{split}_ids.csv", index=False)
    run_masks(cache, root / "masks", face_mask_params())
    return root / "masks", cache


def face_mask_params():
    """The masks stage's params for the 96-px faces (the default minimum face size is for 256-px photos)."""
    from stages.core.masks.config import MaskParams

    return MaskParams(min_face_size=16, examples=2)
