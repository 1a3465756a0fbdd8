"""The parser under the mask: scores restricted to the mask region, on masked and on clean photos."""
import numpy as np
import pandas as pd
import pytest

from stages.core.data.cache_arrays import CachedSplit
from stages.core.data.masked_arrays import MaskedPhotos
from stages.core.parsing.scoring import masked_region_scores

SIZE = 8


def colour_coded_predict(images: np.ndarray) -> np.ndarray:
    """A stand-in parser that reads the class from the red channel (class id x 20)."""
    return (np.asarray(images)[..., 0] // 20).astype(np.uint8)


@pytest.fixture
def masked_case(tmp_path):
    """Two clean photos that encode their labels exactly; their masked copies show skin (7) under a 4x4 region
    whose truth is 8 lips (1) and 8 skin (7) pixels; the second photo's masked copy is listed first."""
    labels = np.full((2, SIZE, SIZE), 7, np.uint8)
    labels[:, 2:4, 2:6] = 1  # lips: 8 pixels inside the region rows 2..5, columns 2..5
    labels[:, 6:8, :] = 4    # hair, outside the region
    images = np.repeat((labels * 20)[..., None], 3, axis=3).astype(np.uint8)
    cache, masks = tmp_path / "cache", tmp_path / "masks"
    cache.mkdir(), masks.mkdir()
    np.save(cache / "test_images.npy", images)
    np.save(cache / "test_labels.npy", labels)
    np.save(cache / "test_landmarks.npy", np.full((2, 68, 2), np.nan, np.float32))
    pd.DataFrame({"row": [0, 1], "id": ["a", "b"], "source": "x"}).to_csv(cache / "test_ids.csv", index=False)
    region = np.zeros((SIZE, SIZE), np.uint8)
    region[2:6, 2:6] = 1
    masked = images[[1, 0]].copy()
    masked[:, 2:6, 2:6] = 7 * 20
    np.save(masks / "test_masked.npy", masked)
    np.save(masks / "test_masks.npy", np.stack([region, region]))
    np.save(masks / "test_source_index.npy", np.array([1, 0], np.int64))
    np.save(masks / "test_landmarks.npy", np.full((2, 68, 2), np.nan, np.float32))
    return MaskedPhotos(masks, "test"), CachedSplit(cache, "test")


def test_scores_count_only_mask_pixels(masked_case):
    masked, clean = masked_case
    scores = masked_region_scores(colour_coded_predict, masked, clean, batch_size=1)
    assert scores["images"] == 2 and scores["pixels"] == 2 * 16
    # masked: lips all predicted skin (F1 0); skin: TP 16, FP 16, FN 0 -> 32 / 48. Hair is outside the region.
    assert scores["masked_photo"]["per_class"]["lips"]["f1"] == 0.0
    assert scores["masked_photo"]["per_class"]["face"]["f1"] == pytest.approx(2 / 3)
    assert scores["masked_photo"]["per_class"]["hair"]["f1"] is None
    assert scores["masked_photo_f1_fg"] == pytest.approx(1 / 3)
    assert scores["clean_photo_f1_fg"] == pytest.approx(1.0)
    assert scores["clean_minus_masked_f1_fg"] == pytest.approx(2 / 3)


def test_a_parser_that_sees_through_the_mask_scores_like_on_clean_photos(masked_case):
    masked, clean = masked_case

    def oracle(images):  # both photos share one label map
        return np.repeat(np.asarray(clean.labels[:1]), len(images), axis=0)

    scores = masked_region_scores(oracle, masked, clean, batch_size=2)
    assert scores["masked_photo_f1_fg"] == pytest.approx(1.0)
    assert scores["clean_minus_masked_f1_fg"] == pytest.approx(0.0)
