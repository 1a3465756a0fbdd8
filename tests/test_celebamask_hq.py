"""CelebAMask-HQ adapter: merged and official layouts, their equivalence, splits, mapping, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stages.core.common.classes import CLASS_IDS
from stages.core.common.io import BadInputError
from stages.core.data.datasets import build_adapter
from stages.core.data.datasets.celebamask_hq import PART_IDS, PARTS


def _random_merged_label(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """(size, size) uint8 part ids 0..18 in blocks, every part present somewhere."""
    blocks = rng.integers(0, 19, size=(size // 8, size // 8)).astype(np.uint8)
    blocks.ravel()[:19] = np.arange(19)
    return np.kron(blocks, np.ones((8, 8), np.uint8))


def write_merged(root: Path, labels: dict[int, np.ndarray], palette: bool = True) -> None:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for number, label in labels.items():
        Image.fromarray(np.full((*label.shape, 3), 90, np.uint8)).save(root / "images" / f"{number}.jpg")
        img = Image.fromarray(label)
        if palette:
            img = img.convert("P")
            img.putpalette(np.random.default_rng(0).integers(0, 256, 768).astype(np.uint8).tobytes())
        img.save(root / "labels" / f"{number}.png")


def write_official_from_merged(root: Path, labels: dict[int, np.ndarray], image_size: int) -> None:
    """Split merged labels into per-part binary masks, as the official download lays them out."""
    (root / "CelebA-HQ-img").mkdir(parents=True)
    for number, label in labels.items():
        Image.fromarray(np.full((image_size, image_size, 3), 90, np.uint8)).save(
            root / "CelebA-HQ-img" / f"{number}.jpg")
        folder = root / "CelebAMask-HQ-mask-anno" / str(number // 2000)
        folder.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            mask = label == PART_IDS[part]
            if mask.any():
                Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"{number:05d}_{part}.png")


LABELS = {n: _random_merged_label(np.random.default_rng(n)) for n in (0, 1, 2, 2001, 10)}


def test_merged_layout_lists_numerically_and_maps_parts(tmp_path):
    write_merged(tmp_path, LABELS)
    adapter = build_adapter("celebamask_hq", tmp_path)
    items = adapter.items()
    assert [i.item_id for i in items] == ["0", "1", "2", "10", "2001"]
    assert adapter.layout == "merged" and all(i.split is None for i in items)
    unified = adapter.read_label(items[0])
    source = LABELS[0]
    expected = {"skin": "face", "neck": "face", "mouth": "teeth", "hat": "background", "cloth": "background",
                "ear_r": "background", "neck_l": "background", "u_lip": "lips", "l_lip": "lips",
                "l_eye": "eyes", "r_eye": "eyes", "l_brow": "eyebrows", "r_brow": "eyebrows",
                "l_ear": "ears", "r_ear": "ears", "eye_g": "glasses", "nose": "nose", "hair": "hair"}
    for part, cls in expected.items():
        assert (unified[source == PART_IDS[part]] == CLASS_IDS[cls]).all(), part
    assert (unified[source == 0] == 0).all()
    assert unified.dtype == np.uint8 and unified.shape == (64, 64)


def test_official_layout_equals_merged_layout(tmp_path):
    write_merged(tmp_path / "merged", LABELS)
    write_official_from_merged(tmp_path / "official", LABELS, image_size=128)
    merged = build_adapter("celebamask_hq", tmp_path / "merged")
    official = build_adapter("celebamask_hq", tmp_path / "official")
    assert official.layout == "official"
    m_items, o_items = merged.items(), official.items()
    assert [i.item_id for i in m_items] == [i.item_id for i in o_items]
    for m, o in zip(m_items, o_items):
        np.testing.assert_array_equal(official.read_part_index(o), LABELS[int(o.item_id)])
        np.testing.assert_array_equal(official.read_label(o), merged.read_label(m))
    assert official.read_image(o_items[0]).shape == (128, 128, 3)  # 2x the label: the remap resizes


def test_later_official_part_covers_an_earlier_one(tmp_path):
    folder = tmp_path / "CelebAMask-HQ-mask-anno" / "0"
    folder.mkdir(parents=True)
    (tmp_path / "CelebA-HQ-img").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "CelebA-HQ-img" / "3.jpg")
    skin = np.full((8, 8), 255, np.uint8)
    hair = np.zeros((8, 8), np.uint8)
    hair[:4] = 255
    Image.fromarray(skin).save(folder / "00003_skin.png")
    Image.fromarray(hair).save(folder / "00003_hair.png")
    adapter = build_adapter("celebamask_hq", tmp_path)
    label = adapter.read_label(adapter.items()[0])
    assert (label[:4] == CLASS_IDS["hair"]).all() and (label[4:] == CLASS_IDS["face"]).all()


def test_mapping_is_configurable(tmp_path):
    write_merged(tmp_path, {0: LABELS[0]})
    adapter = build_adapter("celebamask_hq", tmp_path, {"mapping": {"hat": "hair", "neck": "background"}})
    label = adapter.read_label(adapter.items()[0])
    assert (label[LABELS[0] == PART_IDS["hat"]] == CLASS_IDS["hair"]).all()
    assert (label[LABELS[0] == PART_IDS["neck"]] == 0).all()
    with pytest.raises(ValueError, match="unknown parts"):
        build_adapter("celebamask_hq", tmp_path, {"mapping": {"beard": "beard"}})
    with pytest.raises(ValueError, match="not a class"):
        build_adapter("celebamask_hq", tmp_path, {"mapping": {"hat": "hats"}})


def test_official_split_files_are_used(tmp_path):
    write_merged(tmp_path, {0: LABELS[0], 1: LABELS[1], 2: LABELS[2]})
    (tmp_path / "CelebA-HQ-to-CelebA-mapping.txt").write_text(
        "idx         orig_idx    orig_file\n0 119613 119614.jpg\n1 99094 099095.jpg\n2 200118 200119.jpg\n")
    (tmp_path / "list_eval_partition.txt").write_text("099095.jpg 1\n119614.jpg 0\n200119.jpg 2\n")
    splits = {i.item_id: i.split for i in build_adapter("celebamask_hq", tmp_path).items()}
    assert splits == {"0": "train", "1": "val", "2": "test"}
    assert all(i.split is None for i in build_adapter("celebamask_hq", tmp_path, {"split": "hash"}).items())


def test_values_outside_the_mapping_are_refused(tmp_path):
    bad = LABELS[0].copy()
    bad[0, 0] = 19
    bad[1, 1] = 200
    write_merged(tmp_path, {0: bad}, palette=False)
    adapter = build_adapter("celebamask_hq", tmp_path)
    with pytest.raises(BadInputError, match=r"0\.png.*19, 200.*outside the mapping"):
        adapter.read_label(adapter.items()[0])


def test_missing_label_is_refused_naming_the_file(tmp_path):
    write_merged(tmp_path, {0: LABELS[0], 1: LABELS[1]})
    (tmp_path / "labels" / "1.png").unlink()
    adapter = build_adapter("celebamask_hq", tmp_path)
    item = adapter.items()[1]
    with pytest.raises(BadInputError, match=r"labels/1\.png: label file is missing"):
        adapter.read_label(item)


def test_official_image_without_masks_is_refused(tmp_path):
    write_official_from_merged(tmp_path, {0: LABELS[0]}, 64)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "CelebA-HQ-img" / "5.jpg")
    adapter = build_adapter("celebamask_hq", tmp_path)
    with pytest.raises(BadInputError, match=r"00005_skin\.png.*no part masks"):
        adapter.read_label(adapter.items()[1])


def test_unknown_layout_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither the official"):
        build_adapter("celebamask_hq", tmp_path).items()


@pytest.mark.realdata
def test_real_subset_reads_and_round_trips_through_the_official_layout(shared_data, tmp_path):
    real = shared_data / "celebamask-hq-subset"
    merged = build_adapter("celebamask_hq", real)
    items = merged.items()
    assert len(items) == 3000
    picked = items[:: 750]
    labels = {int(i.item_id): np.asarray(Image.open(i.label_path)) for i in picked}
    write_official_from_merged(tmp_path, labels, image_size=1024)  # built in tmp_path, never kept
    official = build_adapter("celebamask_hq", tmp_path)
    for m, o in zip(picked, official.items()):
        unified = merged.read_label(m)
        np.testing.assert_array_equal(official.read_label(o), unified)
        assert unified.max() < 11 and (unified == CLASS_IDS["face"]).mean() > 0.05
