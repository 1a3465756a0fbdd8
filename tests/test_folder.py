"""Generic folder adapter: index and colour mappings, inline or from a YAML file."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stages.core.common.classes import CLASS_IDS
from stages.core.common.io import BadInputError
from stages.core.data.datasets import build_adapter
from stages.core.data.datasets.folder import parse_colour


def _write(root, label, name="0", mode=None):
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((*label.shape[:2], 3), np.uint8)).save(root / "images" / f"{name}.png")
    img = Image.fromarray(label)
    img = img.convert(mode) if mode else img
    img.save(root / "labels" / f"{name}.png")


def test_index_mapping_with_16_bit_labels(tmp_path):
    label = np.array([[0, 300], [7, 300]], np.uint16)
    _write(tmp_path, label)
    adapter = build_adapter("mine", tmp_path, {"adapter": "folder", "mapping": {0: "background", 7: "hair", 300: 7}})
    ids = adapter.read_label(adapter.items()[0])
    np.testing.assert_array_equal(ids, [[0, CLASS_IDS["face"]], [CLASS_IDS["hair"], CLASS_IDS["face"]]])


def test_colour_mapping_from_yaml_file(tmp_path):
    label = np.zeros((4, 4, 3), np.uint8)
    label[:2] = (10, 20, 30)
    label[2:] = (200, 100, 0)
    label[3, 3] = (205, 98, 3)  # anti-aliased
    _write(tmp_path, label)
    (tmp_path / "map.yaml").write_text('mapping:\n  "10,20,30": background\n  "#c86400": nose\n')
    adapter = build_adapter("mine", tmp_path, {"adapter": "folder", "mapping_file": "map.yaml"})
    ids, counts = adapter.read_label_counted(adapter.items()[0])
    assert (ids[:2] == 0).all() and (ids[2:] == CLASS_IDS["nose"]).all() and counts.snapped == 1


def test_unmapped_index_value_is_refused(tmp_path):
    _write(tmp_path, np.array([[0, 5]], np.uint8))
    adapter = build_adapter("mine", tmp_path, {"adapter": "folder", "mapping": {0: "background"}})
    with pytest.raises(BadInputError, match=r"labels/0\.png: label values 5 are outside the mapping \(1 pixels\)"):
        adapter.read_label(adapter.items()[0])


def test_split_subfolders_are_kept(tmp_path):
    for split in ("train", "test"):
        _write(tmp_path / split, np.zeros((2, 2), np.uint8), name="a")
    adapter = build_adapter("mine", tmp_path, {"adapter": "folder", "mapping": {0: 0}})
    assert [(i.item_id, i.split) for i in adapter.items()] == [("test__a", "test"), ("train__a", "train")]


def test_label_suffix_and_missing_label(tmp_path):
    _write(tmp_path, np.zeros((2, 2), np.uint8), name="a")
    (tmp_path / "labels" / "a.png").rename(tmp_path / "labels" / "a_mask.png")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "images" / "b.png")
    adapter = build_adapter("mine", tmp_path, {"adapter": "folder", "mapping": {0: 0}, "label_suffix": "_mask"})
    a, b = adapter.items()
    assert adapter.read_label(a).shape == (2, 2)
    with pytest.raises(BadInputError, match=r"b_mask\.png: label file is missing"):
        adapter.read_label(b)


@pytest.mark.parametrize("mapping, message", [
    (None, "a mapping is required"),
    ({0: "background", "1,2,3": "face"}, "mixes index keys and colour keys"),
    ({"1,2": "face"}, "not a colour"),
    ({0: "skin"}, "not a class"),
])
def test_bad_mappings_are_explained(tmp_path, mapping, message):
    with pytest.raises(ValueError, match=message):
        build_adapter("mine", tmp_path, {"adapter": "folder", "mapping": mapping})


def test_parse_colour_forms():
    assert parse_colour("#FF8000", "x") == (255, 128, 0)
    assert parse_colour("1 2 3", "x") == (1, 2, 3)
    assert parse_colour([4, 5, 6], "x") == (4, 5, 6)
