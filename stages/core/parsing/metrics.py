"""Segmentation and restoration metrics.

Segmentation scores come from one confusion matrix accumulated over a whole split, never averaged
per image. A class that appears in neither the truth nor the prediction has an undefined score
(NaN): it is left out of the means rather than counted as a perfect 1.0.
"""
from __future__ import annotations

import numpy as np

from stages.core.common.classes import CLASS_NAMES, NUM_CLASSES


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """``(C, C)`` int64 counts; rows are true classes, columns predicted. Any matching shapes."""
    truth = np.asarray(truth).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    if truth.shape != pred.shape:
        raise ValueError(f"truth has {truth.size} pixels but the prediction has {pred.size}")
    if truth.size and (truth.max() >= num_classes or pred.max() >= num_classes or min(truth.min(), pred.min()) < 0):
        raise ValueError(f"class ids must lie in [0, {num_classes})")
    return np.bincount(truth * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """IoU = TP / (TP + FP + FN) and F1 = 2TP / (2TP + FP + FN) per class; NaN where TP + FP + FN = 0."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        f1 = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return {"iou": iou, "f1": f1}


def _nanmean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def segmentation_report(cm: np.ndarray, class_names: tuple[str, ...] = CLASS_NAMES) -> dict:
    """Per-class IoU/F1, their means over the foreground classes (1..C-1) and over all, and pixel accuracy.

    Undefined scores are written as ``None`` (JSON null).
    """
    scores = per_class_scores(cm)
    total = float(np.asarray(cm).sum())
    report: dict = {
        "pixel_accuracy": float(np.trace(cm) / total) if total else None,
        "mean_iou_fg": _nanmean(scores["iou"][1:]),
        "mean_f1_fg": _nanmean(scores["f1"][1:]),
        "mean_iou_all": _nanmean(scores["iou"]),
        "mean_f1_all": _nanmean(scores["f1"]),
        "per_class": {},
    }
    for i, name in enumerate(class_names):
        report["per_class"][name] = {
            "iou": None if np.isnan(scores["iou"][i]) else float(scores["iou"][i]),
            "f1": None if np.isnan(scores["f1"][i]) else float(scores["f1"][i]),
            "support": int(np.asarray(cm)[i].sum()),
        }
    return report


def masked_l1(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute error in [0, 1] units over the pixels where ``mask`` (H, W) is set; images (H, W, 3) uint8."""
    m = np.asarray(mask).astype(bool)
    if not m.any():
        raise ValueError("mask is empty")
    return float(np.abs(pred[m].astype(np.float64) - target[m].astype(np.float64)).mean() / 255.0)


def masked_psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB over the masked pixels of uint8 images (peak 255). Identical pixels give +inf."""
    m = np.asarray(mask).astype(bool)
    if not m.any():
        raise ValueError("mask is empty")
    mse = float(((pred[m].astype(np.float64) - target[m].astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def masked_ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean of scikit-image's SSIM map (7x7 window, colour channels) over the masked pixels."""
    from skimage.metrics import structural_similarity

    m = np.asarray(mask).astype(bool)
    if not m.any():
        raise ValueError("mask is empty")
    _, ssim_map = structural_similarity(pred, target, channel_axis=2, data_range=255, full=True)
    return float(ssim_map.mean(axis=2)[m].mean())
