"""Any labelled folder: ``images/`` plus ``labels/`` (or ``{train,val,test}/images`` + ``labels``), with a user mapping.

The mapping (``mapping:`` inline in params.yaml, or ``mapping_file:`` a YAML file holding the same)
is either index -> class or colour -> class, told apart by its keys::

    mapping: {0: background, 1: face, 2: hair}               # index labels (gray or palette PNGs)
    mapping: {"0,0,0": background, "#ff0000": lips}          # colour labels ("R,G,B" or "#rrggbb")

Classes are unified names or ids. Values that the mapping does not name make the file fail with a
``BadInputError``; colour labels are snapped within ``tolerance`` (see :mod:`colour_labels`).
Other options: ``image_dir`` / ``label_dir`` (default images / labels), ``label_suffix`` (e.g. "_mask"),
``recursive`` (match sub-folders too), ``tolerance``, ``max_off_palette``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from stages.core.common.io import BadInputError, read_label
from stages.core.data.datasets.base import SPLITS, DatasetAdapter, Item
from stages.core.data.datasets.colour_labels import (
    DEFAULT_MAX_OFF_PALETTE,
    DEFAULT_TOLERANCE,
    ColourPalette,
    SnapCounts,
)
from stages.core.data.datasets.label_mapping import apply_index_lut, index_lut, unified_class
from stages.core.data.datasets.paired_folders import id_sort_key, paired_items


def parse_colour(key: Any, where: str) -> tuple[int, int, int]:
    """``"R,G,B"``, ``"R G B"``, ``"#rrggbb"`` or a 3-sequence -> ``(r, g, b)``; ``ValueError`` naming ``where``."""
    try:
        if isinstance(key, str) and key.strip().startswith("#") and len(key.strip()) == 7:
            text = key.strip()
            rgb = tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
        elif isinstance(key, str):
            rgb = tuple(int(v) for v in key.replace(",", " ").split())
        else:
            rgb = tuple(int(v) for v in key)
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"{where}: {key!r} is not a colour; write 'R,G,B' or '#rrggbb'")
    return rgb  # type: ignore[return-value]


def _is_index_key(key: Any) -> bool:
    return isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit())


def load_mapping(options: dict[str, Any], root: Path) -> dict:
    if options.get("mapping") and options.get("mapping_file"):
        raise ValueError("folder source: give mapping or mapping_file, not both")
    if options.get("mapping_file"):
        path = Path(options["mapping_file"])
        path = path if path.is_absolute() else root / path if (root / path).exists() else path
        with open(path) as fh:
            mapping = yaml.safe_load(fh)
        if isinstance(mapping, dict) and "mapping" in mapping:
            mapping = mapping["mapping"]
    else:
        mapping = options.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError("folder source: a mapping is required (index -> class or 'R,G,B' -> class); "
                         "see docs/datasets.md")
    return mapping


class FolderAdapter(DatasetAdapter):
    name = "folder"
    OPTIONS = frozenset({"mapping", "mapping_file", "tolerance", "max_off_palette", "image_dir", "label_dir",
                         "recursive", "label_suffix"})

    def __init__(self, root, options=None):
        super().__init__(root, options)
        mapping = load_mapping(self.options, self.root)
        kinds = {_is_index_key(k) for k in mapping}
        if len(kinds) != 1:
            raise ValueError("folder mapping mixes index keys and colour keys; use one kind")
        self.kind = "index" if kinds == {True} else "rgb"
        if self.kind == "index":
            table = {int(k): unified_class(v, f"folder mapping[{k}]") for k, v in mapping.items()}
            self.lut = index_lut(table, size=65536 if max(table) > 255 else 256)
        else:
            colours = [parse_colour(k, "folder mapping") for k in mapping]
            ids = [unified_class(v, f"folder mapping[{k}]") for k, v in mapping.items()]
            self.palette = ColourPalette(colours, ids, self.options.get("tolerance", DEFAULT_TOLERANCE),
                                         self.options.get("max_off_palette", DEFAULT_MAX_OFF_PALETTE))

    def items(self) -> list[Item]:
        image_dir = self.options.get("image_dir", "images")
        label_dir = self.options.get("label_dir", "labels")
        kwargs = {"recursive": bool(self.options.get("recursive", False)),
                  "label_suffix": str(self.options.get("label_suffix", ""))}
        split_roots = [s for s in SPLITS if (self.root / s / image_dir).is_dir()]
        if not split_roots:
            return paired_items(self.root / image_dir, self.root / label_dir, **kwargs)
        items = []
        for split in split_roots:
            for item in paired_items(self.root / split / image_dir, self.root / split / label_dir, split, **kwargs):
                items.append(Item(f"{split}__{item.item_id}", item.image_path, item.label_path, split))
        return sorted(items, key=lambda item: id_sort_key(item.item_id))

    def read_label_counted(self, item: Item) -> tuple[np.ndarray, SnapCounts | None]:
        """The unified ``(H, W)`` uint8 label, and for colour labels the snap counts (else ``None``)."""
        if item.label_path is None or not item.label_path.exists():
            raise BadInputError(item.label_path or item.image_path, "label file is missing")
        if self.kind == "index":
            return apply_index_lut(read_label(item.label_path), self.lut, item.label_path), None
        return self.palette.to_ids(read_label(item.label_path, mode="rgb"), item.label_path)

    def read_label(self, item: Item) -> np.ndarray:
        return self.read_label_counted(item)[0]
