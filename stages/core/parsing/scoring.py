"""Scoring a parser on a cached split: the one definition the training loop (best epoch) and the benchmark share."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from stages.core.common.classes import NUM_CLASSES
from stages.core.data.cache_arrays import CachedSplit
from stages.core.data.masked_arrays import MaskedPhotos
from stages.core.models.preprocessing import images_to_tensor
from stages.core.parsing.metrics import confusion_matrix, segmentation_report


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


def masked_region_scores(predict: Callable[[np.ndarray], np.ndarray], masked: MaskedPhotos, clean: CachedSplit,
                         batch_size: int = 16) -> dict:
    """The parser under the mask: scores restricted to the pixels of each photo's mask region.

    ``predict``: ``(N, S, S, 3)`` uint8 -> ``(N, S, S)`` class ids. ``masked``: the masks stage's photos of a
    split; ``clean``: the same cache split (clean photos and their labels, found by ``masked.source_index``).
    ``masked_photo``: the parser on the masked photos, where it must name the face parts the mask hides;
    ``clean_photo``: the parser on the clean photos, over the same pixels (what it could do with the face in
    view). Each is a full ``segmentation_report`` from one confusion matrix over every region pixel of the
    split; ``*_f1_fg`` repeat their foreground-mean F1 and ``clean_minus_masked_f1_fg`` is the gap.
    """
    cm_masked = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    cm_clean = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for start in range(0, len(masked), batch_size):
        stop = min(start + batch_size, len(masked))
        rows = masked.source_index[start:stop]
        regions = np.asarray(masked.masks[start:stop]).astype(bool)
        labels = np.stack([np.asarray(clean.labels[r]) for r in rows])
        cm_masked += confusion_matrix(labels[regions], predict(np.asarray(masked.masked[start:stop]))[regions])
        clean_images = np.stack([np.asarray(clean.images[r]) for r in rows])
        cm_clean += confusion_matrix(labels[regions], predict(clean_images)[regions])
    masked_report, clean_report = segmentation_report(cm_masked), segmentation_report(cm_clean)
    masked_f1, clean_f1 = masked_report["mean_f1_fg"], clean_report["mean_f1_fg"]
    return {"images": len(masked), "pixels": int(cm_masked.sum()),
            "masked_photo_f1_fg": masked_f1, "clean_photo_f1_fg": clean_f1,
            "clean_minus_masked_f1_fg": None if masked_f1 is None or clean_f1 is None else clean_f1 - masked_f1,
            "masked_photo": masked_report, "clean_photo": clean_report}
