"""Adapter for the embedded synthetic faces written by :mod:`stages.core.data.synthetic_faces`."""
from __future__ import annotations

import json
from functools import cached_property

import numpy as np

from stages.core.common.classes import NUM_CLASSES
from stages.core.common.io import BadInputError, read_label
from stages.core.data.datasets.base import DatasetAdapter, Item


class SyntheticAdapter(DatasetAdapter):
    """``images/{id}.jpg``, ``labels/{id}.png`` (already unified ids) and ``landmarks.json``."""

    name = "synthetic"
    OPTIONS = frozenset({"count", "size", "seed"})

    @cached_property
    def _landmarks(self) -> dict[str, list]:
        path = self.root / "landmarks.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def items(self) -> list[Item]:
        images = sorted((self.root / "images").glob("*.jpg"))
        if not images:
            raise FileNotFoundError(f"{self.root / 'images'}: no synthetic faces found (run the download stage)")
        return [Item(p.stem, p, self.root / "labels" / f"{p.stem}.png") for p in images]

    def read_label(self, item: Item) -> np.ndarray:
        if item.label_path is None or not item.label_path.exists():
            raise BadInputError(item.label_path or item.image_path, "label file is missing")
        label = read_label(item.label_path)
        if label.size and int(label.max()) >= NUM_CLASSES:
            raise BadInputError(item.label_path, f"label value {int(label.max())} is not a unified class id")
        return label.astype(np.uint8)

    def read_landmarks(self, item: Item) -> np.ndarray | None:
        points = self._landmarks.get(item.item_id)
        return None if points is None else np.asarray(points, np.float32)
