"""CelebAMask-HQ, in its official per-part layout and in the community's merged layout.

Official: ``CelebA-HQ-img/{id}.jpg`` (1024²) and ``CelebAMask-HQ-mask-anno/{id // 2000}/{id:05d}_{part}.png``,
one binary mask per part (512²). Parts are painted in :data:`PARTS` order, a later part covering an
earlier one, exactly as the dataset's own ``g_mask.py`` does (a pixel belongs to a part where the
mask is non-zero).
Merged: ``images/{id}.jpg`` and ``labels/{id}.png`` holding 0 (background) and the part ids 1..18.

Options (``data.<source>`` in params.yaml): ``layout`` (auto | official | merged), ``mapping``
(``{part: class}`` overrides of :data:`DEFAULT_MAPPING`), ``split`` (auto | official | hash),
``mapping_file`` / ``partition_file`` (the official split files; default: searched in the root and its parent).
"""
from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path

import numpy as np

from stages.core.common.io import BadInputError, read_label
from stages.core.data.datasets.base import DatasetAdapter, Item
from stages.core.data.datasets.label_mapping import apply_index_lut, index_lut, unified_class
from stages.core.data.datasets.paired_folders import id_sort_key, paired_items

PARTS: tuple[str, ...] = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)
PART_IDS: dict[str, int] = {part: i + 1 for i, part in enumerate(PARTS)}  # 0 is background
DEFAULT_MAPPING: dict[str, str] = {
    "background": "background", "skin": "face", "nose": "nose", "eye_g": "glasses",
    "l_eye": "eyes", "r_eye": "eyes", "l_brow": "eyebrows", "r_brow": "eyebrows",
    "l_ear": "ears", "r_ear": "ears", "mouth": "teeth", "u_lip": "lips", "l_lip": "lips",
    "hair": "hair", "hat": "background", "ear_r": "background", "neck_l": "background",
    "neck": "face", "cloth": "background",
}
OFFICIAL_IMAGE_DIR = "CelebA-HQ-img"
OFFICIAL_MASK_DIR = "CelebAMask-HQ-mask-anno"
SPLIT_FILES = ("CelebA-HQ-to-CelebA-mapping.txt", "list_eval_partition.txt")
PARTITION_SPLITS = {"0": "train", "1": "val", "2": "test"}
_PART_FILE = re.compile(r"^(\d+)_(" + "|".join(sorted(PARTS, key=len, reverse=True)) + r")\.png$")


def part_lut(mapping: dict[str, str] | None = None) -> np.ndarray:
    """``(256,)`` table: merged part id (0..18) -> unified id; other values unmapped."""
    merged = {**DEFAULT_MAPPING, **(mapping or {})}
    unknown = set(merged) - set(PARTS) - {"background"}
    if unknown:
        raise ValueError(f"celebamask_hq mapping names unknown parts {sorted(unknown)}; parts are {', '.join(PARTS)}")
    ids = {0 if part == "background" else PART_IDS[part]: unified_class(cls, f"celebamask_hq mapping[{part}]")
           for part, cls in merged.items()}
    return index_lut(ids)


class CelebAMaskHQAdapter(DatasetAdapter):
    """Both CelebAMask-HQ layouts; see the module docstring for the options."""

    name = "celebamask_hq"
    OPTIONS = frozenset({"mapping", "layout", "split", "mapping_file", "partition_file"})

    def __init__(self, root, options=None):
        super().__init__(root, options)
        self.lut = part_lut(self.options.get("mapping"))
        self.part_names = {0: "background", **{i: p for p, i in PART_IDS.items()}}

    @cached_property
    def layout(self) -> str:
        layout = self.options.get("layout", "auto")
        if layout == "auto":
            if (self.root / OFFICIAL_MASK_DIR).is_dir():
                return "official"
            if (self.root / "images").is_dir() and (self.root / "labels").is_dir():
                return "merged"
            raise FileNotFoundError(
                f"{self.root}: neither the official CelebAMask-HQ layout ({OFFICIAL_IMAGE_DIR}/ + "
                f"{OFFICIAL_MASK_DIR}/) nor the merged one (images/ + labels/)")
        if layout not in ("official", "merged"):
            raise ValueError(f"celebamask_hq layout must be auto, official or merged, not {layout!r}")
        return layout

    # ------------------------------------------------------------------------------------ listing
    def items(self) -> list[Item]:
        items = self._official_items() if self.layout == "official" else self._merged_items()
        splits = self._official_splits()
        if splits:
            items = [Item(i.item_id, i.image_path, i.label_path, splits.get(i.item_id), i.extra) for i in items]
        return items

    def _merged_items(self) -> list[Item]:
        return paired_items(self.root / "images", self.root / "labels")

    def _official_items(self) -> list[Item]:
        image_dir, mask_dir = self.root / OFFICIAL_IMAGE_DIR, self.root / OFFICIAL_MASK_DIR
        parts_by_id: dict[int, dict[str, Path]] = {}
        for folder in sorted(p for p in mask_dir.iterdir() if p.is_dir()):
            for entry in os.scandir(folder):
                match = _PART_FILE.match(entry.name)
                if match:
                    parts_by_id.setdefault(int(match.group(1)), {})[match.group(2)] = Path(entry.path)
        items = []
        for entry in os.scandir(image_dir):
            stem, suffix = os.path.splitext(entry.name)
            if not stem.isdigit() or suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            number = int(stem)
            parts = parts_by_id.get(number, {})
            ordered = tuple((PART_IDS[p], parts[p]) for p in PARTS if p in parts)
            expected = mask_dir / str(number // 2000) / f"{number:05d}_skin.png"
            label_path = parts.get("skin", ordered[0][1] if ordered else expected)
            items.append(Item(str(number), Path(entry.path), label_path, None, {"parts": ordered}))
        return sorted(items, key=lambda item: id_sort_key(item.item_id))

    def _split_file(self, option: str, filename: str) -> Path | None:
        if self.options.get(option):
            path = Path(self.options[option])
            if not path.exists():
                raise FileNotFoundError(f"celebamask_hq {option}: {path} not found")
            return path
        for folder in (self.root, self.root.parent):
            if (folder / filename).exists():
                return folder / filename
        return None

    def _official_splits(self) -> dict[str, str]:
        """``{item id: split}`` from the official files, or ``{}`` when absent or ``split: hash``."""
        mode = self.options.get("split", "auto")
        if mode == "hash":
            return {}
        mapping_file = self._split_file("mapping_file", SPLIT_FILES[0])
        partition_file = self._split_file("partition_file", SPLIT_FILES[1])
        if mapping_file is None or partition_file is None:
            if mode == "official":
                raise FileNotFoundError(f"{self.root}: split: official needs {' and '.join(SPLIT_FILES)}")
            return {}
        return read_official_splits(mapping_file, partition_file)

    # ------------------------------------------------------------------------------------ reading
    def read_label(self, item: Item) -> np.ndarray:
        if self.layout == "official":
            parts = self.read_part_index(item)
            return apply_index_lut(parts, self.lut, item.label_path, self.part_names)
        if item.label_path is None or not item.label_path.exists():
            raise BadInputError(item.label_path or item.image_path, "label file is missing")
        values = read_label(item.label_path)
        return apply_index_lut(values, self.lut, item.label_path, self.part_names)

    def read_part_index(self, item: Item) -> np.ndarray:
        """Paint the part masks of an official item into one ``(H, W)`` uint8 map of part ids 0..18."""
        parts = item.extra.get("parts", ())
        if not parts:
            raise BadInputError(item.label_path, "label file is missing (no part masks for this image)")
        index = None
        for part_id, path in parts:
            mask = read_label(path)
            if mask.ndim != 2:
                raise BadInputError(path, f"part mask has shape {mask.shape}, expected a single channel")
            if index is None:
                index = np.zeros(mask.shape, np.uint8)
            elif mask.shape != index.shape:
                raise BadInputError(path, f"part mask is {mask.shape[1]}x{mask.shape[0]}, other parts of "
                                          f"this image are {index.shape[1]}x{index.shape[0]}")
            index[mask != 0] = part_id
        return index


def read_official_splits(mapping_file: Path, partition_file: Path) -> dict[str, str]:
    """``{CelebA-HQ id: split}`` from ``CelebA-HQ-to-CelebA-mapping.txt`` and ``list_eval_partition.txt``.

    The mapping file has a header line then ``idx orig_idx orig_file`` rows; the partition file has
    ``000001.jpg 0`` rows (0 train, 1 val, 2 test), whitespace or comma separated.
    """
    partition: dict[str, str] = {}
    for line in Path(partition_file).read_text().splitlines():
        fields = line.replace(",", " ").split()
        if len(fields) == 2 and fields[1] in PARTITION_SPLITS:
            partition[fields[0]] = PARTITION_SPLITS[fields[1]]
    splits: dict[str, str] = {}
    for line in Path(mapping_file).read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].isdigit() and fields[2] in partition:
            splits[str(int(fields[0]))] = partition[fields[2]]
    if not splits:
        raise BadInputError(mapping_file, f"no CelebA-HQ id could be matched with {partition_file}")
    return splits


__all__ = ["DEFAULT_MAPPING", "PARTS", "PART_IDS", "CelebAMaskHQAdapter", "part_lut", "read_official_splits"]
