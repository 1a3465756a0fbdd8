"""mut1ny adapter: RGB-coded labels, XML pair lists and folder pairing."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stages.core.common.classes import CLASS_COLOURS, CLASS_IDS, NUM_CLASSES
from stages.core.common.io import BadInputError
from stages.core.data.datasets import build_adapter

CODE = {  # the issue's table, written out independently of CLASS_COLOURS
    "background": (0, 0, 0), "lips": (255, 0, 0), "eyes": (0, 255, 0), "nose": (0, 0, 255),
    "hair": (255, 255, 0), "eyebrows": (255, 0, 255), "teeth": (255, 255, 255), "face": (128, 128, 128),
    "ears": (0, 255, 255), "glasses": (0, 128, 128), "beard": (255, 192, 192),
}


def _stripes() -> tuple[np.ndarray, np.ndarray]:
    """(22, 11, 3) colour label with two rows per class, and its (22, 11) expected ids."""
    ids = np.repeat(np.arange(NUM_CLASSES), 2)[:, None].repeat(11, axis=1).astype(np.uint8)
    names = list(CODE)
    rgb = np.array([CODE[names[i]] for i in range(NUM_CLASSES)], np.uint8)[ids]
    return rgb, ids


def _write_pair(root, image_rel, label_rel, rgb):
    (root / image_rel).parent.mkdir(parents=True, exist_ok=True)
    (root / label_rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(rgb.shape, 100, np.uint8)).save(root / image_rel)
    Image.fromarray(rgb).save(root / label_rel)


def test_colour_code_matches_the_issue_table():
    for name, colour in CODE.items():
        assert tuple(CLASS_COLOURS[CLASS_IDS[name]]) == colour


def test_xml_pairs_with_windows_paths(tmp_path):
    rgb, ids = _stripes()
    _write_pair(tmp_path, "images/p1/a.jpg", "labels/p1/a_lbl.png", rgb)
    _write_pair(tmp_path, "images/p2/b.jpg", "labels/p2/b_lbl.png", rgb[::-1])
    (tmp_path / "training.xml").write_text(
        '<?xml version="1.0"?>\n<dataset>\n'
        '<srcimg name="images\\p1\\a.jpg"/><labelimg name="labels\\p1\\a_lbl.png"/>\n'
        '<srcimg name="images\\p2\\b.jpg"/><labelimg name="labels\\p2\\b_lbl.png"/>\n</dataset>\n')
    adapter = build_adapter("mut1ny", tmp_path)
    items = adapter.items()
    assert [i.item_id for i in items] == ["images__p1__a", "images__p2__b"]
    np.testing.assert_array_equal(adapter.read_label(items[0]), ids)
    np.testing.assert_array_equal(adapter.read_label(items[1]), ids[::-1])


def test_folder_pairs_and_jpeg_noise_are_snapped(tmp_path):
    rgb, ids = _stripes()
    big = np.kron(rgb, np.ones((8, 8, 1), np.uint8))
    _write_pair(tmp_path, "images/x.jpg", "labels/x.png", big)
    Image.fromarray(big).save(tmp_path / "labels" / "x.jpg", quality=90)  # a lossy copy of the same label
    (tmp_path / "labels" / "x.png").unlink()
    (tmp_path / "labels" / "x.jpg").rename(tmp_path / "labels" / "x.png.jpg")
    adapter = build_adapter("mut1ny", tmp_path, {"max_off_palette": 0.2})
    item = adapter.items()[0]
    item = type(item)(item.item_id, item.image_path, tmp_path / "labels" / "x.png.jpg")
    label, counts = adapter.read_label_counted(item)
    expected = np.kron(ids, np.ones((8, 8), np.uint8))
    assert counts.snapped > 0
    assert (label == expected).mean() > 0.97


def test_extra_colours_and_off_palette_refusal(tmp_path):
    rgb, _ = _stripes()
    rgb[:6] = (0, 128, 0)  # a colour of a later dataset version, not in the 11 codes
    _write_pair(tmp_path, "images/x.jpg", "labels/x.png", rgb)
    with pytest.raises(BadInputError, match=r"x\.png.*off-palette.*\(0, 128, 0\)"):
        adapter = build_adapter("mut1ny", tmp_path)
        adapter.read_label(adapter.items()[0])
    adapter = build_adapter("mut1ny", tmp_path, {"extra_colours": {"0,128,0": "background"}})
    assert (adapter.read_label(adapter.items()[0])[:6] == 0).all()


def test_missing_label(tmp_path):
    rgb, _ = _stripes()
    _write_pair(tmp_path, "images/x.jpg", "labels/y.png", rgb)
    adapter = build_adapter("mut1ny", tmp_path)
    with pytest.raises(BadInputError, match=r"labels/x\.png: label file is missing"):
        adapter.read_label(adapter.items()[0])
