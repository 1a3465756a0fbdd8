"""LaPa: ``{train,val,test}/{images,labels,landmarks}`` with 11-class index labels; official splits kept.

LaPa's classes: 0 background, 1 skin, 2 left brow, 3 right brow, 4 left eye, 5 right eye, 6 nose,
7 upper lip, 8 inner mouth, 9 lower lip, 10 hair. Its landmarks are 106 points (JD-106 scheme), not
the iBUG 68 the pipeline uses, so :meth:`read_landmarks` returns ``None`` (the masks stage detects
68 points itself); :meth:`read_landmarks_106` gives the raw points.
"""
from __future__ import annotations

import numpy as np

from stages.core.common.io import BadInputError, read_label
from stages.core.data.datasets.base import SPLITS, DatasetAdapter, Item
from stages.core.data.datasets.label_mapping import apply_index_lut, index_lut, unified_class
from stages.core.data.datasets.paired_folders import paired_items

LAPA_CLASSES: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "inner_mouth", "l_lip", "hair",
)
DEFAULT_MAPPING: dict[str, str] = {
    "background": "background", "skin": "face", "l_brow": "eyebrows", "r_brow": "eyebrows",
    "l_eye": "eyes", "r_eye": "eyes", "nose": "nose", "u_lip": "lips", "inner_mouth": "teeth",
    "l_lip": "lips", "hair": "hair",
}


class LaPaAdapter(DatasetAdapter):
    """Options: ``mapping`` (``{lapa class: unified class}`` overrides of :data:`DEFAULT_MAPPING`)."""

    name = "lapa"
    OPTIONS = frozenset({"mapping"})

    def __init__(self, root, options=None):
        super().__init__(root, options)
        mapping = {**DEFAULT_MAPPING, **(self.options.get("mapping") or {})}
        unknown = set(mapping) - set(LAPA_CLASSES)
        if unknown:
            raise ValueError(f"lapa mapping names unknown classes {sorted(unknown)}; LaPa has {', '.join(LAPA_CLASSES)}")
        self.lut = index_lut({LAPA_CLASSES.index(k): unified_class(v, f"lapa mapping[{k}]") for k, v in mapping.items()})
        self.value_names = dict(enumerate(LAPA_CLASSES))

    def items(self) -> list[Item]:
        splits = [s for s in SPLITS if (self.root / s / "images").is_dir()]
        if not splits:
            raise FileNotFoundError(f"{self.root}: no LaPa split folders ({'/images, '.join(SPLITS)}/images)")
        items = []
        for split in splits:
            for item in paired_items(self.root / split / "images", self.root / split / "labels", split):
                landmarks = self.root / split / "landmarks" / f"{item.image_path.stem}.txt"
                # ids are prefixed by split: LaPa reuses no names across splits, but nothing guarantees it
                items.append(Item(f"{split}__{item.item_id}", item.image_path, item.label_path, split,
                                  {"landmarks": landmarks}))
        return sorted(items, key=lambda item: item.item_id)

    def read_label(self, item: Item) -> np.ndarray:
        if item.label_path is None or not item.label_path.exists():
            raise BadInputError(item.label_path or item.image_path, "label file is missing")
        return apply_index_lut(read_label(item.label_path), self.lut, item.label_path, self.value_names)

    def read_landmarks_106(self, item: Item) -> np.ndarray | None:
        """``(106, 2)`` float32 (x, y) from the item's landmark file (first line: the count), or ``None``."""
        path = item.extra.get("landmarks")
        if path is None or not path.exists():
            return None
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        try:
            count = int(lines[0])
            points = np.array([[float(v) for v in line.split()[:2]] for line in lines[1:1 + count]], np.float32)
        except (ValueError, IndexError):
            raise BadInputError(path, "landmark file is not '<count>' followed by 'x y' lines") from None
        if points.shape != (count, 2):
            raise BadInputError(path, f"landmark file announces {count} points but holds {len(points)}")
        return points
