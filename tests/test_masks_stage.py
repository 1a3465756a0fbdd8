"""The masks stage end to end on a tiny cache written by the test: contract, failures, determinism."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from masks_fixtures import astronaut_face

from stages.core.masks.cache_masking import MANIFEST_COLUMNS, run_masks
from stages.core.masks.config import MaskParams

SIZE = 256


def _write_split(cache, split, images, landmarks):
    np.save(cache / f"{split}_images.npy", np.stack(images).astype(np.uint8))
    np.save(cache / f"{split}_labels.npy", np.zeros((len(images), SIZE, SIZE), np.uint8))
    np.save(cache / f"{split}_landmarks.npy", np.stack(landmarks).astype(np.float32))
    ids = [f"fake/{split}{i}" for i in range(len(images))]
    pd.DataFrame({"row": range(len(images)), "id": ids, "source": "fake"}).to_csv(cache / f"{split}_ids.csv", index=False)


@pytest.fixture()
def fake_cache(tmp_path):
    """train: given landmarks, dlib landmarks, blank, tiny face, grayscale; val: one face; test: empty split."""
    face, landmarks = astronaut_face()
    nan = np.full((68, 2), np.nan, np.float32)
    tiny = np.full((SIZE, SIZE, 3), 120, np.uint8)
    tiny[100:132, 100:132] = cv2.resize(face, (32, 32), interpolation=cv2.INTER_AREA)
    gray = np.repeat(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    noise = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    cache = tmp_path / "cache"
    cache.mkdir()
    _write_split(cache, "train", [face, face, np.zeros_like(face), tiny, gray, noise],
                 [landmarks, nan, nan, nan, nan, nan])
    _write_split(cache, "val", [np.fliplr(face).copy()], [nan])
    np.save(cache / "test_images.npy", np.zeros((0, SIZE, SIZE, 3), np.uint8))
    np.save(cache / "test_labels.npy", np.zeros((0, SIZE, SIZE), np.uint8))
    np.save(cache / "test_landmarks.npy", np.zeros((0, 68, 2), np.float32))
    pd.DataFrame({"row": [], "id": [], "source": []}).to_csv(cache / "test_ids.csv", index=False)
    return cache


def test_outputs_follow_the_contract(fake_cache, tmp_path):
    out = tmp_path / "masks"
    manifest, failures = run_masks(fake_cache, out, MaskParams(seed=3))
    assert list(manifest.columns) == MANIFEST_COLUMNS
    train = manifest[manifest.split == "train"]
    assert list(train.row) == [0, 1, 4]
    assert list(train.landmark_source) == ["given", "dlib", "dlib"]
    assert set(failures.row[failures.split == "train"]) == {2, 3, 5}
    assert failures.reason.str.contains("no face found").all()
    masked, masks = np.load(out / "train_masked.npy"), np.load(out / "train_masks.npy")
    assert masked.shape == (3, SIZE, SIZE, 3) and masked.dtype == np.uint8
    assert masks.shape == (3, SIZE, SIZE) and set(np.unique(masks)) <= {0, 1}
    source = np.load(out / "train_source_index.npy")
    assert source.dtype == np.int64 and list(source) == [0, 1, 4]
    points = np.load(out / "train_landmarks.npy")
    assert points.shape == (3, 68, 2) and points.dtype == np.float32 and np.isfinite(points).all()
    _, given = astronaut_face()
    np.testing.assert_array_equal(points[0], given)  # the cache's landmarks, kept as given
    assert np.abs(points[1] - given).mean() < 3  # dlib's on the same face land near them
    np.testing.assert_allclose(train.coverage, masks.reshape(3, -1).mean(1), atol=1e-5)
    assert np.load(out / "test_masked.npy").shape == (0, SIZE, SIZE, 3)
    assert pd.read_csv(out / "report.csv").columns.tolist() == ["split", "row", "id", "reason"]
    assert cv2.imread(str(out / "examples.png")) is not None
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no scratch or temporary files left"


def test_same_seed_gives_byte_identical_outputs(fake_cache, tmp_path):
    run_masks(fake_cache, tmp_path / "a", MaskParams(seed=5))
    run_masks(fake_cache, tmp_path / "b", MaskParams(seed=5))
    run_masks(fake_cache, tmp_path / "c", MaskParams(seed=6))
    for name in ("train_masked.npy", "train_masks.npy", "train_landmarks.npy", "manifest.csv", "report.csv", "examples.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "train_masked.npy").read_bytes() != (tmp_path / "c" / "train_masked.npy").read_bytes()


def test_stage_main_reads_params_and_writes_data_masks(fake_cache, tmp_path, monkeypatch):
    from stages import masks as stage

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"masks": {"seed": 1, "type_probabilities": {"gas": 1}}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stage, "CACHE_DIR", fake_cache)
    stage.main()
    manifest = pd.read_csv(tmp_path / "data" / "masks" / "manifest.csv")
    assert len(manifest) == 4 and set(manifest.mask_type) == {"gas"}


def test_unknown_params_key_is_refused():
    with pytest.raises(ValueError, match="unknown keys"):
        MaskParams.from_dict({"seed": 0, "jiter": 0.1})
