"""Contact sheet of random real pairs: photo | unified label overlay, for a look by eye.

Usage: ``.venv/bin/python scripts/contact_sheet_real.py [--source-root ../shared/data/celebamask-hq-subset]
[--adapter celebamask_hq] [--count 16] [--seed 0] [--out reports/contact_sheet_real.png]``

Goes through the adapter (so it shows exactly what the remap stage will write) and writes the PNG to
``reports/`` (git-ignored: it shows licensed data and must never be committed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.core.common.classes import CLASS_COLOURS, CLASS_NAMES, overlay
from stages.core.common.io import write_png
from stages.core.data.datasets import build_adapter
from stages.core.data.unify import match_label_size


def tile(image: np.ndarray, label: np.ndarray, title: str, side: int) -> np.ndarray:
    """(side, 2*side, 3) uint8: the photo beside the photo with the label's colours blended over it."""
    label = match_label_size(label, image.shape[:2], Path(title))
    photo = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    mixed = cv2.resize(overlay(image, label, alpha=0.55), (side, side), interpolation=cv2.INTER_AREA)
    pair = np.concatenate([photo, mixed], axis=1)
    cv2.putText(pair, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return pair


def legend(width: int) -> np.ndarray:
    """(24, width, 3) strip naming each class in its colour."""
    strip = np.zeros((24, width, 3), np.uint8)
    step = width // len(CLASS_NAMES)
    for i, name in enumerate(CLASS_NAMES):
        colour = tuple(int(c) for c in CLASS_COLOURS[i]) if i else (90, 90, 90)
        cv2.rectangle(strip, (i * step + 2, 4), (i * step + 14, 18), colour, -1)
        cv2.putText(strip, name, (i * step + 17, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1)
    return strip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-root", type=Path, default=ROOT.parent / "shared/data/celebamask-hq-subset")
    parser.add_argument("--adapter", default="celebamask_hq")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--side", type=int, default=192)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "contact_sheet_real.png")
    args = parser.parse_args()
    adapter = build_adapter(args.adapter, args.source_root, {})
    items = adapter.items()
    picks = np.random.default_rng(args.seed).choice(len(items), size=min(args.count, len(items)), replace=False)
    tiles = [tile(adapter.read_image(items[i]), adapter.read_label(items[i]), f"id {items[i].item_id}", args.side)
             for i in sorted(picks)]
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % args.columns)
    rows = [np.concatenate(tiles[r:r + args.columns], axis=1) for r in range(0, len(tiles), args.columns)]
    sheet = np.concatenate(rows, axis=0)
    sheet = np.concatenate([legend(sheet.shape[1]), sheet], axis=0)
    write_png(args.out, sheet)
    print(f"wrote {args.out} ({len(picks)} pairs of {len(items)}: ids {sorted(items[i].item_id for i in picks)})")


if __name__ == "__main__":
    main()
