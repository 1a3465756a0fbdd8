"""Contact sheets of masked real faces, to judge the masks by eye (written to reports/, never to git).

1. ``masks_celeba.png``: 24 CelebAMask-HQ faces at 256², the five mask types in turn.
2. ``masks_without_mask.png``: the 20 photos of ``masked-faces/without_mask`` (every face masked), with
   failures shown unmasked and captioned.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/masks_contact_sheet.py
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from stages.core.common.io import BadInputError, read_image, write_png
from stages.core.masks.config import MASK_TYPES, MaskParams
from stages.core.masks.contact_sheet import contact_sheet
from stages.core.masks.fitting import FitError
from stages.core.masks.photo import mask_photo

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def fit_longer_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink ``image`` ``(H, W, 3)`` so that its longer side is at most ``max_side`` (INTER_AREA)."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def square_tile(image: np.ndarray) -> np.ndarray:
    """Pad ``image`` to a square (black borders) so that the sheet keeps its aspect ratio."""
    height, width = image.shape[:2]
    side = max(height, width)
    out = np.zeros((side, side, 3), np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    out[top:top + height, left:left + width] = image
    return out


def celeba_sheet(root: Path, out: Path, count: int, seed: int) -> None:
    paths = sorted((root / "images").glob("*.jpg"), key=lambda p: int(p.stem))
    picks = np.random.default_rng(seed).choice(len(paths), size=min(len(paths), 3 * count), replace=False)
    tiles, captions = [], []
    for index in picks:
        if len(tiles) == count:
            break
        mask_type = MASK_TYPES[len(tiles) % len(MASK_TYPES)]
        params = MaskParams(seed=seed, type_probabilities={mask_type: 1.0})
        image = cv2.resize(read_image(paths[index]), (256, 256), interpolation=cv2.INTER_AREA)
        try:
            photo = mask_photo(image, None, np.random.default_rng([seed, int(index)]), params)
        except FitError:
            continue
        tiles.append(photo.masked)
        captions.append(f"{paths[index].stem} {mask_type} {'+'.join(photo.variants)}")
    write_png(out, contact_sheet(tiles, captions, columns=6, size=256))
    print(f"{out}: {len(tiles)} faces")


def folder_sheet(folder: Path, out: Path, seed: int, max_side: int) -> None:
    tiles, captions = [], []
    for number, path in enumerate(sorted(p for p in folder.iterdir() if p.is_file())):
        try:
            image = fit_longer_side(read_image(path), max_side)
        except BadInputError as exc:
            print(f"skipped: {exc}")
            continue
        params = MaskParams(seed=seed, upsample=1 if max(image.shape[:2]) < 400 else 0,
                            min_face_size=max(20, min(image.shape[:2]) // 12))
        try:
            photo = mask_photo(image, None, np.random.default_rng([seed, number]), params)
            tiles.append(square_tile(photo.masked))
            captions.append(f"{path.stem[-3:]} {photo.mask_type} x{len(photo.variants)}")
        except FitError as exc:
            tiles.append(square_tile(image))
            captions.append(f"{path.stem[-3:]} FAILED {str(exc)[:28]}")
            print(f"{path.name}: {exc}")
    write_png(out, contact_sheet(tiles, captions, columns=5, size=256))
    print(f"{out}: {len(tiles)} photos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-side", type=int, default=640)
    args = parser.parse_args()
    data = args.data.resolve()
    if not data.exists():
        raise SystemExit(f"{data}: real data folder not found (it lives in ../shared/data)")
    celeba_sheet(data / "celebamask-hq-subset", args.out / "masks_celeba.png", args.count, args.seed)
    folder_sheet(data / "masked-faces" / "without_mask", args.out / "masks_without_mask.png", args.seed, args.max_side)


if __name__ == "__main__":
    main()
