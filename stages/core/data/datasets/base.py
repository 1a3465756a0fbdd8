"""The small interface every dataset adapter implements.

An adapter knows one on-disk format. It lists the items, reads a photo, and reads the photo's label
already converted to the unified ids of :mod:`stages.core.common.classes`. It never resizes or writes.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stages.core.common.io import BadInputError, read_image
from stages.core.common.params import ParamsError
from stages.core.common.splits import SPLITS, hash_split

__all__ = ["SPLITS", "DatasetAdapter", "Item", "hash_split"]



@dataclass(frozen=True)
class Item:
    """One labelled photo of a source.

    ``split`` is the dataset's official split when it has one, else ``None`` (the remap stage then
    assigns a deterministic hash split). ``extra`` holds adapter-specific paths (landmarks, part masks).
    """

    item_id: str
    image_path: Path
    label_path: Path | None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class DatasetAdapter(ABC):
    """Base class. ``root`` is the dataset folder; ``options`` is the source's params section."""

    name: str = ""
    # Keys of ``data.<source>`` that every source may set (the download stage and remap read them) ...
    COMMON_OPTIONS: frozenset[str] = frozenset({"adapter", "uri", "sha256", "label_scale"})
    # ... and the ones this adapter reads; any other key is a typo and is refused.
    OPTIONS: frozenset[str] = frozenset()

    def __init__(self, root: str | Path, options: dict[str, Any] | None = None):
        self.root = Path(root)
        self.options = dict(options or {})

    @classmethod
    def check_options(cls, source: str, options: dict[str, Any]) -> None:
        """Refuse keys of ``data.<source>`` that neither the pipeline nor this adapter reads."""
        unknown = sorted(set(options) - cls.COMMON_OPTIONS - cls.OPTIONS)
        if unknown:
            known = ", ".join(sorted(cls.COMMON_OPTIONS | cls.OPTIONS))
            raise ParamsError(f"params.yaml: data.{source}: unknown keys {unknown} for the {cls.name} adapter "
                              f"(its keys: {known})")

    @abstractmethod
    def items(self) -> list[Item]:
        """All items, sorted by id."""

    def read_image(self, item: Item) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB; raises ``BadInputError`` naming the file."""
        if not item.image_path.exists() and item.label_path is not None and item.label_path.exists():
            raise BadInputError(item.label_path, f"label without an image (no photo {item.image_path.name}.* "
                                                 f"in {item.image_path.parent})")
        return read_image(item.image_path)

    @abstractmethod
    def read_label(self, item: Item) -> np.ndarray:
        """``(H, W)`` uint8 unified class ids; raises ``BadInputError`` naming the file and the problem."""

    def read_landmarks(self, item: Item) -> np.ndarray | None:
        """``(68, 2)`` float32 iBUG landmarks (x, y) in image pixels, or ``None`` when the source has none."""
        return None
