"""Contact sheets: a grid of captioned RGB tiles, for looking at masked faces."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def pick_examples(mask_types: Sequence[str], count: int) -> list[int]:
    """Indices of up to ``count`` items: one of each mask type first (in order of appearance), then the rest in order."""
    chosen: list[int] = []
    seen: set[str] = set()
    for i, mask_type in enumerate(mask_types):
        if mask_type not in seen:
            seen.add(mask_type)
            chosen.append(i)
    chosen = chosen[:count]
    rest = [i for i in range(len(mask_types)) if i not in set(chosen)]
    return sorted(chosen + rest[: max(count - len(chosen), 0)])


def captioned(tile: np.ndarray, caption: str, size: int) -> np.ndarray:
    """``tile`` ``(H, W, 3)`` uint8 resized to ``size`` x ``size`` with ``caption`` on a dark band at the bottom."""
    out = cv2.resize(np.ascontiguousarray(tile), (size, size), interpolation=cv2.INTER_AREA)
    band = max(size // 12, 12)
    out[-band:] = (out[-band:].astype(np.float32) * 0.35).astype(np.uint8)
    scale = band / 30
    cv2.putText(out, caption, (4, size - band // 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(tiles: Sequence[np.ndarray], captions: Sequence[str], columns: int = 6, size: int = 192) -> np.ndarray:
    """``(rows * size, columns * size, 3)`` uint8 grid of the tiles (each ``(H, W, 3)`` uint8), captioned.

    With no tiles, a single grey tile saying so (so that the output file always exists).
    """
    if not tiles:
        empty = np.full((size, size, 3), 64, np.uint8)
        return captioned(empty, "no masked images", size)
    cells = [captioned(t, c, size) for t, c in zip(tiles, captions)]
    columns = min(columns, len(cells))
    rows = -(-len(cells) // columns)
    cells += [np.zeros_like(cells[0])] * (rows * columns - len(cells))
    return np.vstack([np.hstack(cells[r * columns:(r + 1) * columns]) for r in range(rows)])
