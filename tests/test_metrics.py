import math

import numpy as np
import pytest

from stages.core.parsing.metrics import (
    confusion_matrix,
    masked_l1,
    masked_psnr,
    masked_ssim,
    per_class_scores,
    segmentation_report,
)


def test_confusion_matrix_counts_rows_true_columns_predicted():
    truth = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    cm = confusion_matrix(truth, pred, num_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])


def test_scores_against_hand_computed_values():
    # class 0: TP 1, FP 1, FN 1 -> IoU 1/3, F1 2/4; class 1: TP 2, FP 1, FN 0 -> IoU 2/3, F1 4/5
    # class 2: TP 0, FP 0, FN 1 -> 0; class 3: absent from truth and prediction -> undefined
    cm = confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), num_classes=4)
    scores = per_class_scores(cm)
    np.testing.assert_allclose(scores["iou"][:3], [1 / 3, 2 / 3, 0])
    np.testing.assert_allclose(scores["f1"][:3], [0.5, 0.8, 0])
    assert math.isnan(scores["iou"][3]) and math.isnan(scores["f1"][3])


def test_absent_class_is_not_a_perfect_score():
    cm = confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), num_classes=4)
    report = segmentation_report(cm, class_names=("bg", "a", "b", "c"))
    assert report["per_class"]["c"]["f1"] is None
    assert report["mean_f1_fg"] == pytest.approx((0.8 + 0) / 2)  # not (0.8 + 0 + 1) / 3
    assert report["mean_f1_all"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    assert report["mean_iou_fg"] == pytest.approx((2 / 3) / 2)
    assert report["pixel_accuracy"] == pytest.approx(3 / 5)


def test_split_level_accumulation_differs_from_per_image_means():
    # image 1 has one pixel of class 1, predicted wrong; image 2 has 99 right. Split-level F1 is ~0.995.
    cm = confusion_matrix(np.array([1]), np.array([0]), 2) + confusion_matrix(np.ones(99, int), np.ones(99, int), 2)
    assert per_class_scores(cm)["f1"][1] == pytest.approx(2 * 99 / (2 * 99 + 1))


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="pixels"):
        confusion_matrix(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="class ids"):
        confusion_matrix(np.array([11]), np.array([0]))


def test_masked_restoration_metrics():
    target = np.full((16, 16, 3), 100, np.uint8)
    pred = target.copy()
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 1
    pred[mask.astype(bool)] = 110
    pred[0, 0] = 0  # outside the mask: ignored
    assert masked_l1(pred, target, mask) == pytest.approx(10 / 255)
    assert masked_psnr(pred, target, mask) == pytest.approx(10 * math.log10(255**2 / 100))
    assert masked_psnr(target, target, mask) == math.inf
    assert masked_ssim(target, target, mask) == pytest.approx(1.0)
    assert masked_ssim(pred, target, mask) < 1.0
    with pytest.raises(ValueError, match="empty"):
        masked_l1(pred, target, np.zeros_like(mask))
