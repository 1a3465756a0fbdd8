"""mut1ny face/head segmentation: photos with RGB colour-coded labels (the unified colour code).

Pairs come from the dataset's XML list (``<srcimg name=...>`` followed by ``<labelimg name=...>``,
Windows separators allowed) when one is present, else from ``images/`` and ``labels/`` matched by
relative path. Anti-aliased colours are snapped (see :mod:`colour_labels`).

Options: ``pairs_file`` (the XML list, default: the first ``*.xml`` in the root that has pairs),
``tolerance``, ``max_off_palette``, ``extra_colours`` (``{"R,G,B": class}`` for colours beyond the
11 codes, e.g. those of later dataset versions).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from stages.core.common.classes import CLASS_COLOURS, NUM_CLASSES
from stages.core.common.io import BadInputError, read_label
from stages.core.data.datasets.base import DatasetAdapter, Item
from stages.core.data.datasets.colour_labels import (
    DEFAULT_MAX_OFF_PALETTE,
    DEFAULT_TOLERANCE,
    ColourPalette,
    SnapCounts,
)
from stages.core.data.datasets.folder import parse_colour
from stages.core.data.datasets.label_mapping import unified_class
from stages.core.data.datasets.paired_folders import id_sort_key, paired_items


def read_pairs_xml(path: Path) -> list[tuple[str, str]]:
    """``[(image relative path, label relative path)]`` from a mut1ny XML list, in file order."""
    pairs, image = [], None
    for element in ET.parse(path).getroot().iter():
        name = element.attrib.get("name", "").replace("\\", "/")
        if element.tag == "srcimg":
            image = name
        elif element.tag == "labelimg" and image is not None:
            pairs.append((image, name))
            image = None
    return pairs


class Mut1nyAdapter(DatasetAdapter):
    name = "mut1ny"
    OPTIONS = frozenset({"extra_colours", "tolerance", "max_off_palette", "pairs_file"})

    def __init__(self, root, options=None):
        super().__init__(root, options)
        colours = [tuple(c) for c in CLASS_COLOURS.tolist()]
        ids = list(range(NUM_CLASSES))
        for key, cls in (self.options.get("extra_colours") or {}).items():
            colours.append(parse_colour(key, "mut1ny extra_colours"))
            ids.append(unified_class(cls, f"mut1ny extra_colours[{key}]"))
        self.palette = ColourPalette(colours, ids, self.options.get("tolerance", DEFAULT_TOLERANCE),
                                     self.options.get("max_off_palette", DEFAULT_MAX_OFF_PALETTE))

    def _pairs_file(self) -> Path | None:
        if self.options.get("pairs_file"):
            return self.root / self.options["pairs_file"]
        for path in sorted(self.root.glob("*.xml")):
            if read_pairs_xml(path):
                return path
        return None

    def items(self) -> list[Item]:
        pairs_file = self._pairs_file()
        if pairs_file is None:
            return paired_items(self.root / "images", self.root / "labels", recursive=True)
        items = []
        for image, label in read_pairs_xml(pairs_file):
            item_id = str(Path(image).with_suffix("")).replace("/", "__")
            items.append(Item(item_id, self.root / image, self.root / label))
        return sorted(items, key=lambda item: id_sort_key(item.item_id))

    def read_label_counted(self, item: Item) -> tuple[np.ndarray, SnapCounts]:
        """The unified ``(H, W)`` uint8 label and its snap counts (exact / snapped / off-palette pixels)."""
        if item.label_path is None or not item.label_path.exists():
            raise BadInputError(item.label_path or item.image_path, "label file is missing")
        return self.palette.to_ids(read_label(item.label_path, mode="rgb"), item.label_path)

    def read_label(self, item: Item) -> np.ndarray:
        return self.read_label_counted(item)[0]
