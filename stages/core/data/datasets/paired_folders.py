"""Pairing photos in one folder with labels in another by file stem (shared by several adapters)."""
from __future__ import annotations

import os
from pathlib import Path

from stages.core.data.datasets.base import Item

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LABEL_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif")


def id_sort_key(item_id: str) -> tuple:
    """Numeric ids in numeric order ("2" before "10"), then everything else by text."""
    return (0, int(item_id), "") if item_id.isdigit() else (1, 0, item_id)


def _files_by_stem(folder: Path, suffixes: tuple[str, ...], recursive: bool) -> dict[str, Path]:
    """``{relative stem: path}`` for files with one of ``suffixes``; stems use "/" between folders."""
    found: dict[str, Path] = {}
    walker = os.walk(folder) if recursive else [(str(folder), [], os.listdir(folder))]
    for dirpath, dirnames, filenames in walker:
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in filenames:
            path = Path(dirpath) / filename
            if filename.startswith(".") or path.suffix.lower() not in suffixes:
                continue
            stem = path.relative_to(folder).with_suffix("").as_posix()
            found.setdefault(stem, path)
    return found


def paired_items(image_dir: Path, label_dir: Path, split: str | None = None, recursive: bool = False,
                 label_suffix: str = "") -> list[Item]:
    """One :class:`Item` per photo in ``image_dir``, and one per label without a photo, sorted by id.

    The label is the file in ``label_dir`` with the same relative stem (plus ``label_suffix``, e.g.
    ``"_mask"``). A photo without one still becomes an item, with the expected label path, so that
    reading its label raises a ``BadInputError`` naming the missing file. A label without a photo
    becomes an item whose ``image_path`` (the stem, without suffix) does not exist, so that reading its
    photo raises one naming the label. Ids use "__" for "/".
    """
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: image folder not found")
    if not label_dir.is_dir():
        raise FileNotFoundError(f"{label_dir}: label folder not found")
    images = _files_by_stem(image_dir, IMAGE_SUFFIXES, recursive)
    labels = _files_by_stem(label_dir, LABEL_SUFFIXES, recursive)
    items = []
    for stem, image_path in images.items():
        label_path = labels.get(stem + label_suffix, label_dir / f"{stem}{label_suffix}.png")
        items.append(Item(stem.replace("/", "__"), image_path, label_path, split))
    for label_stem in sorted(set(labels) - {stem + label_suffix for stem in images}):
        stem = label_stem[: len(label_stem) - len(label_suffix)] if label_stem.endswith(label_suffix) else label_stem
        if stem not in images:
            items.append(Item(stem.replace("/", "__"), image_dir / stem, labels[label_stem], split))
    return sorted(items, key=lambda item: id_sort_key(item.item_id))
