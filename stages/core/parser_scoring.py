"""Scoring a parser on a cached split: the one definition the training loop (best epoch) and the benchmark share."""
from __future__ import annotations

import numpy as np
import torch

from stages.core.cache_arrays import CachedSplit
from stages.core.classes import NUM_CLASSES
from stages.core.metrics import confusion_matrix, segmentation_report
from stages.core.models.preprocessing import images_to_tensor


@torch.no_grad()
def predict_labels(model: torch.nn.Module, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """``(N, S, S, 3)`` uint8 -> ``(N, S, S)`` uint8 argmax class ids, in eval mode, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = np.empty(images.shape[:3], np.uint8)
    for start in range(0, len(images), batch_size):
        logits = model(images_to_tensor(np.asarray(images[start:start + batch_size])).to(device))
        out[start:start + batch_size] = logits.argmax(1).cpu().numpy().astype(np.uint8)
    return out


def split_confusion(model: torch.nn.Module, split: CachedSplit, batch_size: int = 16, limit: int = 0,
                    keep: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """The ``(11, 11)`` confusion matrix (rows truth) over the first ``limit`` images (all when 0), and the
    predicted ``(S, S)`` labels of the first ``keep`` images."""
    n = min(len(split), limit) if limit else len(split)
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    kept: list[np.ndarray] = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        pred = predict_labels(model, split.images[start:stop], batch_size)
        cm += confusion_matrix(split.labels[start:stop], pred)
        kept.extend(pred[: max(keep - len(kept), 0)])
    return cm, kept


def evaluate(model: torch.nn.Module, split: CachedSplit, batch_size: int = 16, limit: int = 0) -> dict:
    """``segmentation_report`` of the model over the first ``limit`` images of ``split`` (all when 0)."""
    return segmentation_report(split_confusion(model, split, batch_size, limit)[0])
