"""Mappings from a dataset's own label values to unified class ids, and applying them strictly.

A value that the mapping does not name is never guessed: applying the mapping raises
``BadInputError`` naming the file and the stray values.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stages.core.common.classes import CLASS_IDS, CLASS_NAMES, NUM_CLASSES
from stages.core.common.io import BadInputError

UNMAPPED = 255


def unified_class(value: Any, where: str) -> int:
    """A class given by name ("face") or id (7) -> its unified id; ``ValueError`` naming ``where``."""
    if isinstance(value, str) and value.strip().lower() in CLASS_IDS:
        return CLASS_IDS[value.strip().lower()]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < NUM_CLASSES:
        return int(value)
    raise ValueError(f"{where}: {value!r} is not a class; use one of {', '.join(CLASS_NAMES)} (or ids 0-10)")


def index_lut(mapping: Mapping[int, int], size: int = 256) -> np.ndarray:
    """``(size,)`` uint8 table: source value -> unified id, :data:`UNMAPPED` for values not named."""
    lut = np.full(size, UNMAPPED, dtype=np.uint8)
    for value, class_id in mapping.items():
        if not 0 <= int(value) < size:
            raise ValueError(f"label value {value} is outside 0..{size - 1}")
        lut[int(value)] = class_id
    return lut


def apply_index_lut(values: np.ndarray, lut: np.ndarray, path: str | Path, names: Mapping[int, str] | None = None
                    ) -> np.ndarray:
    """``(H, W)`` integer source values -> ``(H, W)`` uint8 unified ids through ``lut``.

    Raises ``BadInputError`` naming ``path`` and the values outside the mapping.
    """
    values = np.asarray(values)
    if values.size and (values.min() < 0 or values.max() >= len(lut)):
        stray = np.unique(values[(values < 0) | (values >= len(lut))])[:10]
        raise BadInputError(path, f"label values {stray.tolist()} are outside the mapping (0..{len(lut) - 1})")
    ids = lut[values]
    unmapped = ids == UNMAPPED
    if unmapped.any():
        stray = np.unique(values[unmapped])[:10].tolist()
        described = [f"{v} ({names[v]})" if names and v in names else str(v) for v in stray]
        raise BadInputError(path, f"label values {', '.join(described)} are outside the mapping "
                                  f"({int(unmapped.sum())} pixels)")
    return ids
