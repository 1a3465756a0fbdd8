"""Label statistics over a manifest, and the three class-weight modes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages.core.common.classes import CLASS_NAMES, NUM_CLASSES
from stages.core.data.label_stats import class_weights, label_statistics, pixel_counts


def _manifest() -> pd.DataFrame:
    rows = []
    for i, (split, source) in enumerate([("train", "a"), ("train", "b"), ("val", "a")]):
        counts = np.zeros(NUM_CLASSES, int)
        counts[0] = 100 * (i + 1)
        counts[7] = 50
        if i == 1:
            counts[9] = 10  # glasses in one training image only
        rows.append({"id": f"{source}/{i}", "source": source, "split": split,
                     **{f"px_{n}": int(c) for n, c in zip(CLASS_NAMES, counts)}})
    return pd.DataFrame(rows)


def test_statistics_overall_and_per_split():
    stats = label_statistics(_manifest())
    overall = stats["overall"]
    assert overall["images"] == 3 and overall["pixels"] == 600 + 150 + 10
    assert overall["pixel_count"]["face"] == 150 and overall["images_with_class"]["face"] == 3
    assert overall["images_with_class"]["glasses"] == 1 and overall["images_with_class"]["beard"] == 0
    assert overall["pixel_frequency"]["glasses"] == pytest.approx(10 / 760)
    assert sum(overall["pixel_frequency"].values()) == pytest.approx(1.0)
    assert stats["splits"]["train"]["images"] == 2 and stats["splits"]["val"]["pixel_count"]["background"] == 300
    assert stats["sources"]["b"]["images_with_class"]["glasses"] == 1
    assert stats["classes"] == list(CLASS_NAMES)


def test_missing_column_is_named():
    with pytest.raises(KeyError, match="px_beard"):
        label_statistics(_manifest().drop(columns=["px_beard"]))


def test_pixel_counts_of_the_training_split():
    counts = pixel_counts(_manifest())
    assert counts[0] == 300 and counts[7] == 100 and counts[9] == 10


def test_equal_and_empirical_and_custom():
    assert (class_weights(np.ones(11), "equal") == 1).all()
    np.testing.assert_array_equal(class_weights(np.ones(11), "empirical"),
                                  [0.5, 3, 3, 1, 0.5, 3, 2, 0.5, 1.5, 1.5, 1.5])
    custom = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    np.testing.assert_array_equal(class_weights(np.ones(11), custom), custom)
    with pytest.raises(ValueError, match="11 finite"):
        class_weights(np.ones(11), [1, 2])
    with pytest.raises(ValueError, match="equal, empirical, proportional"):
        class_weights(np.ones(11), "inverse")


def test_proportional_is_inverse_frequency_over_its_geometric_mean():
    counts = np.array([800, 10, 20, 40, 400, 10, 5, 600, 30, 0, 0], float)
    weights = class_weights(counts, "proportional")
    present = counts > 0
    assert np.exp(np.log(weights[present]).mean()) == pytest.approx(1.0)
    ratio = weights[present] * counts[present]  # inverse frequency: weight * count is constant
    assert np.allclose(ratio, ratio[0])
    assert weights[6] > weights[1] > weights[0]
    assert (weights[~present] == 1.0).all()
    with pytest.raises(ValueError, match="no labelled pixels"):
        class_weights(np.zeros(11), "proportional")
