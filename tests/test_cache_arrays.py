import json

import numpy as np
import pandas as pd
import pytest

from stages.core.common.io import read_label, write_png
from stages.core.data.cache_arrays import CachedSplit, pack_split, square_resize
from stages.core.data.synthetic_faces import generate_dataset
from stages.core.data.unify import UnifySettings, unify_source


def test_square_resize_pads_and_moves_landmarks():
    image = np.zeros((40, 80, 3), np.uint8)
    label = np.zeros((40, 80), np.uint8)
    label[10:30, 20:60] = 7
    points = np.array([[20.0, 10.0], [59.0, 29.0]] + [[0.0, 0.0]] * 66, np.float32)
    img, lbl, lm = square_resize(image, label, points, 40)
    assert img.shape == (40, 40, 3) and lbl.shape == (40, 40)
    # the 80x40 photo becomes 80x80 with 20 rows above, then halves: the box moves to rows 15:25, cols 10:30
    assert lbl[20, 20] == 7 and lbl[16, 11] == 7 and lbl[5, 20] == 0 and lbl[20, 35] == 0 and lbl[30, 20] == 0
    np.testing.assert_allclose(lm[0], [(20 + 0.5) / 2 - 0.5, (10 + 20 + 0.5) / 2 - 0.5])
    assert set(np.unique(lbl)) <= {0, 7}
    _, _, missing = square_resize(image, label, None, 40)
    assert np.isnan(missing).all() and missing.shape == (68, 2)


def test_cache_round_trip_matches_the_unified_labels(tmp_path):
    raw = tmp_path / "raw"
    generate_dataset(raw, count=10, size=64, seed=2, progress=False)
    manifest, _, landmarks = unify_source("synthetic", raw, {}, tmp_path / "unified",
                                          UnifySettings(workers=1, val_fraction=0.3, test_fraction=0.3))
    out = tmp_path / "cache"
    out.mkdir()
    totals = 0
    for split in ("train", "val", "test"):
        counts = pack_split(manifest, landmarks, split, 64, out, workers=1)
        cached = CachedSplit(out, split)
        rows = manifest[manifest["split"] == split].reset_index(drop=True)
        assert len(cached) == len(rows)
        assert isinstance(cached.images, np.memmap)
        assert list(cached.ids["id"]) == list(rows["id"])
        for i, row in rows.iterrows():
            # same size: the cached label is the unified label, bit for bit
            np.testing.assert_array_equal(cached.labels[i], read_label(row["label"]))
            np.testing.assert_allclose(cached.landmarks[i], np.asarray(landmarks[row["id"]]), atol=1e-3)
        totals += counts.sum()
    assert totals == 10 * 64 * 64
    assert not list(out.glob("*.tmp*")), "temporary files must not be left behind"


def test_cache_downsizes_with_nearest_labels(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    label = np.zeros((100, 100), np.uint8)
    label[:, 50:] = 4
    write_png(tmp_path / "img.png", image)
    write_png(tmp_path / "lbl.png", label)
    manifest = pd.DataFrame([{"id": "s/a", "source": "s", "split": "train", "image": str(tmp_path / "img.png"),
                              "label": str(tmp_path / "lbl.png")}])
    pack_split(manifest, {}, "train", 32, tmp_path, workers=1)
    cached = CachedSplit(tmp_path, "train")
    assert set(np.unique(cached.labels[0])) == {0, 4}
    assert np.isnan(cached.landmarks[0]).all()
    json.dumps(cached.ids.to_dict())


def test_missing_split_names_the_stage_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="dvc repro cache"):
        CachedSplit(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        CachedSplit(tmp_path, "holdout")


def test_check_names_the_file_that_breaks_the_layout(tmp_path):
    np.save(tmp_path / "val_images.npy", np.zeros((2, 8, 8, 3), np.uint8))
    np.save(tmp_path / "val_labels.npy", np.zeros((2, 8, 8), np.uint8))
    np.save(tmp_path / "val_landmarks.npy", np.zeros((2, 5, 2), np.float32))
    pd.DataFrame({"row": [0, 1], "id": ["a", "b"]}).to_csv(tmp_path / "val_ids.csv", index=False)
    with pytest.raises(ValueError, match="val_landmarks.npy"):
        CachedSplit(tmp_path, "val").check()
    np.save(tmp_path / "val_landmarks.npy", np.zeros((2, 68, 2), np.float32))
    assert len(CachedSplit(tmp_path, "val").check()) == 2
