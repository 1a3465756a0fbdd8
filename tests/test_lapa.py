"""LaPa adapter: official splits, the 11 LaPa classes, landmarks files, bad values."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stages.core.common.classes import CLASS_IDS
from stages.core.common.io import BadInputError
from stages.core.data.datasets import build_adapter

LAPA_TO_UNIFIED = ["background", "face", "eyebrows", "eyebrows", "eyes", "eyes", "nose", "lips", "teeth",
                   "lips", "hair"]


def _write_lapa(root, names_by_split, label=None):
    label = np.arange(11, dtype=np.uint8).repeat(3)[None].repeat(4, axis=0) if label is None else label
    for split, names in names_by_split.items():
        for sub in ("images", "labels", "landmarks"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.fromarray(np.zeros((*label.shape, 3), np.uint8)).save(root / split / "images" / f"{name}.jpg")
            Image.fromarray(label).save(root / split / "labels" / f"{name}.png")
            points = "\n".join(f"{i}.5 {2 * i}.25" for i in range(106))
            (root / split / "landmarks" / f"{name}.txt").write_text(f"106\n{points}\n")
    return label


def test_splits_and_class_mapping(tmp_path):
    label = _write_lapa(tmp_path, {"train": ["a", "b"], "val": ["c"], "test": ["d"]})
    adapter = build_adapter("lapa", tmp_path)
    items = adapter.items()
    assert {(i.item_id, i.split) for i in items} == {
        ("train__a", "train"), ("train__b", "train"), ("val__c", "val"), ("test__d", "test")}
    unified = adapter.read_label(items[0])
    expected = np.array([CLASS_IDS[n] for n in LAPA_TO_UNIFIED], np.uint8)[label]
    np.testing.assert_array_equal(unified, expected)


def test_landmarks_106_are_read_and_not_passed_as_68(tmp_path):
    _write_lapa(tmp_path, {"train": ["a"]})
    adapter = build_adapter("lapa", tmp_path)
    item = adapter.items()[0]
    points = adapter.read_landmarks_106(item)
    assert points.shape == (106, 2) and points[3].tolist() == [3.5, 6.25]
    assert adapter.read_landmarks(item) is None


def test_broken_landmark_file(tmp_path):
    _write_lapa(tmp_path, {"train": ["a"]})
    (tmp_path / "train" / "landmarks" / "a.txt").write_text("106\n1 2\n")
    adapter = build_adapter("lapa", tmp_path)
    with pytest.raises(BadInputError, match=r"a\.txt: landmark file announces 106 points but holds 1"):
        adapter.read_landmarks_106(adapter.items()[0])


def test_value_outside_lapa_classes(tmp_path):
    label = np.zeros((4, 4), np.uint8)
    label[0, 0] = 11
    _write_lapa(tmp_path, {"val": ["a"]}, label)
    adapter = build_adapter("lapa", tmp_path)
    with pytest.raises(BadInputError, match=r"val/labels/a\.png: label values 11 are outside the mapping"):
        adapter.read_label(adapter.items()[0])


def test_missing_label_and_missing_layout(tmp_path):
    _write_lapa(tmp_path, {"test": ["a"]})
    (tmp_path / "test" / "labels" / "a.png").unlink()
    adapter = build_adapter("lapa", tmp_path)
    with pytest.raises(BadInputError, match="label file is missing"):
        adapter.read_label(adapter.items()[0])
    with pytest.raises(FileNotFoundError, match="no LaPa split folders"):
        build_adapter("lapa", tmp_path / "empty").items()
