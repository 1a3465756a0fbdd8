import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages.core.common.classes import NUM_CLASSES
from stages.core.common.io import BadInputError, read_label
from stages.core.data.synthetic_faces import generate_dataset
from stages.core.data.unify import PIXEL_COLUMNS, UnifySettings, match_label_size, unify_source

OPTIONS = {"adapter": "synthetic"}


@pytest.fixture()
def faces(tmp_path):
    root = tmp_path / "raw"
    generate_dataset(root, count=12, size=64, seed=0, progress=False)
    return root


def test_unify_writes_exact_labels_and_a_full_manifest(faces, tmp_path):
    settings = UnifySettings(workers=1)
    manifest, report, landmarks = unify_source("synthetic", faces, OPTIONS, tmp_path / "out", settings)
    assert len(manifest) == 12 and report.empty
    assert set(manifest["split"]) <= {"train", "val", "test"}
    row = manifest.iloc[3]
    label = read_label(row["label"])
    np.testing.assert_array_equal(label, read_label(faces / "labels" / "00003.png"))
    counts = np.bincount(label.ravel(), minlength=NUM_CLASSES)
    np.testing.assert_array_equal(row[PIXEL_COLUMNS].to_numpy(dtype=np.int64), counts)
    assert row["width"] == 64 and row["height"] == 64
    assert len(landmarks[row["id"]]) == 68


def test_split_is_deterministic_and_roughly_proportional(faces, tmp_path):
    settings = UnifySettings(workers=1, val_fraction=0.25, test_fraction=0.25)
    a, _, _ = unify_source("synthetic", faces, OPTIONS, tmp_path / "a", settings)
    b, _, _ = unify_source("synthetic", faces, OPTIONS, tmp_path / "b", settings)
    assert list(a["split"]) == list(b["split"])
    salted, _, _ = unify_source("synthetic", faces, OPTIONS, tmp_path / "c",
                                UnifySettings(workers=1, val_fraction=0.25, test_fraction=0.25, split_salt="x"))
    assert list(salted["split"]) != list(a["split"])


def test_parallel_and_serial_runs_agree(faces, tmp_path):
    serial, _, _ = unify_source("synthetic", faces, OPTIONS, tmp_path / "s", UnifySettings(workers=1))
    many = faces.parent / "many"
    generate_dataset(many, count=40, size=48, seed=1, progress=False)
    par, _, _ = unify_source("synthetic", many, OPTIONS, tmp_path / "p", UnifySettings(workers=2))
    ser, _, _ = unify_source("synthetic", many, OPTIONS, tmp_path / "q", UnifySettings(workers=1))
    pd.testing.assert_frame_equal(par.drop(columns="label"), ser.drop(columns="label"))
    assert len(serial) == 12


def _break_items(root):
    (root / "images" / "00001.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    bad_values = np.asarray(Image.open(root / "labels" / "00002.png")).copy()
    bad_values[0, 0] = 42
    Image.fromarray(bad_values).save(root / "labels" / "00002.png")
    Image.fromarray(np.zeros((64, 80), np.uint8)).save(root / "labels" / "00003.png")  # other aspect ratio
    (root / "labels" / "00004.png").unlink()
    small = np.asarray(Image.open(root / "labels" / "00005.png"))[::2, ::2]  # same aspect, half size: accepted
    Image.fromarray(small).save(root / "labels" / "00005.png")


def test_bad_items_become_counted_skips_with_file_and_problem(faces, tmp_path):
    _break_items(faces)
    settings = UnifySettings(workers=1, max_skip_fraction=0.5)
    manifest, report, _ = unify_source("synthetic", faces, OPTIONS, tmp_path / "out", settings)
    assert len(manifest) == 8 and len(report) == 4
    problems = dict(zip(report["item_id"], report["problem"]))
    assert "truncated" in problems["00001"]
    assert "42" in problems["00002"]
    assert "aspect" in problems["00003"]
    assert "missing" in problems["00004"]
    assert report.set_index("item_id").loc["00001", "file"].endswith("00001.jpg")
    resized = manifest.set_index("item_id").loc["00005"]
    assert read_label(resized["label"]).shape == (64, 64)


def test_on_error_raise_stops_at_the_first_bad_file(faces, tmp_path):
    _break_items(faces)
    with pytest.raises(BadInputError, match="00001.jpg"):
        unify_source("synthetic", faces, OPTIONS, tmp_path / "out", UnifySettings(workers=1, on_error="raise"))


def test_too_many_skips_stop_the_run(faces, tmp_path):
    _break_items(faces)
    with pytest.raises(RuntimeError, match="4 of 12"):
        unify_source("synthetic", faces, OPTIONS, tmp_path / "out", UnifySettings(workers=1, max_skip_fraction=0.1))


def test_match_label_size_uses_nearest_and_keeps_values():
    label = np.array([[0, 10], [3, 7]], np.uint8)
    big = match_label_size(label, (4, 4), "x.png")
    assert set(np.unique(big)) == {0, 3, 7, 10}
    with pytest.raises(BadInputError, match="aspect"):
        match_label_size(label, (4, 6), "x.png")


def test_match_label_size_resizes_only_by_a_whole_factor_or_the_named_scale():
    label = np.kron(np.array([[0, 10], [3, 7]], np.uint8), np.ones((50, 50), np.uint8))  # 100x100
    assert match_label_size(label, (200, 200), "x.png").shape == (200, 200)  # 2x up
    assert match_label_size(label, (50, 50), "x.png").shape == (50, 50)  # 2x down
    with pytest.raises(BadInputError, match=r"x\.png: label is 100x100 but the image is 512x512: .*not a whole factor"):
        match_label_size(label, (512, 512), "x.png")  # would be stretched 5.12x
    with pytest.raises(BadInputError, match="aspect"):
        match_label_size(label, (200, 300), "x.png")  # whole factors, but 2 and 3
    stretched = match_label_size(label, (512, 512), "x.png", label_scale=5.12)
    assert stretched.shape == (512, 512) and set(np.unique(stretched)) == {0, 3, 7, 10}
    with pytest.raises(BadInputError, match="nor label_scale 5.12"):
        match_label_size(label, (320, 320), "x.png", label_scale=5.12)


def test_label_scale_is_read_from_the_source_options(faces, tmp_path):
    for path in sorted((faces / "labels").glob("*.png"))[:2]:  # 40x40 labels beside 64x64 photos
        Image.open(path).resize((40, 40), Image.NEAREST).save(path)
    settings = UnifySettings(workers=1, max_skip_fraction=0.5)
    _, report, _ = unify_source("synthetic", faces, OPTIONS, tmp_path / "a", settings)
    assert len(report) == 2 and report["problem"].str.contains("label is 40x40 but the image is 64x64").all()
    manifest, report, _ = unify_source("synthetic", faces, {**OPTIONS, "label_scale": 1.6}, tmp_path / "b", settings)
    assert report.empty and len(manifest) == 12
    with pytest.raises(ValueError, match="data.synthetic.label_scale"):
        unify_source("synthetic", faces, {**OPTIONS, "label_scale": "2x"}, tmp_path / "c", settings)


def test_settings_reject_unknown_modes():
    with pytest.raises(ValueError, match="on_error"):
        UnifySettings.from_params({"on_error": "ignore"})
    json.dumps(UnifySettings.from_params({"workers": 1}).__dict__)
