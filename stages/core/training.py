"""Training the face parser from the packed cache: data loading, augmentation, the loop, checkpoints.

Runs on CPU by default and is deterministic there: same params and seed, same weights and metrics.
"""
from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from tqdm import tqdm  # noqa: E402

from stages.core.cache_arrays import CachedSplit  # noqa: E402
from stages.core.classes import NUM_CLASSES  # noqa: E402
from stages.core.io import atomic_path  # noqa: E402
from stages.core.losses import build_loss  # noqa: E402
from stages.core.metrics import confusion_matrix, segmentation_report  # noqa: E402
from stages.core.models.preprocessing import images_to_tensor, normalise  # noqa: E402
from stages.core.models.registry import build_parser  # noqa: E402

log = logging.getLogger(__name__)


def seed_everything(seed: int, threads: int | None = None) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    cv2.setNumThreads(1)


def build_augmentation(cfg: dict[str, Any]) -> A.Compose | None:
    """Albumentations pipeline from ``parser.augment``; labels always use nearest-neighbour.

    The unified classes have no left/right, so a horizontal flip needs no label swap.
    """
    steps = []
    if cfg.get("hflip", 0):
        steps.append(A.HorizontalFlip(p=float(cfg["hflip"])))
    return A.Compose(steps) if steps else None


class SegmentationArrays(Dataset):
    """``(3, S, S)`` float image and ``(S, S)`` int64 label from a cached split."""

    def __init__(self, split: CachedSplit, augment: A.Compose | None = None):
        self.split, self.augment = split, augment

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        image, label = np.asarray(self.split.images[i]), np.asarray(self.split.labels[i])
        if self.augment is not None:
            out = self.augment(image=image, mask=label)
            image, label = out["image"], out["mask"]
        return torch.from_numpy(normalise(image)), torch.from_numpy(label.astype(np.int64))


def _seeded_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0,
                      worker_init_fn=_seeded_worker, drop_last=False)


@torch.no_grad()
def predict_labels(model: torch.nn.Module, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """``(N, S, S, 3)`` uint8 -> ``(N, S, S)`` uint8 argmax class ids, in eval mode."""
    model.eval()
    out = np.empty(images.shape[:3], np.uint8)
    for start in range(0, len(images), batch_size):
        logits = model(images_to_tensor(np.asarray(images[start:start + batch_size])))
        out[start:start + batch_size] = logits.argmax(1).numpy().astype(np.uint8)
    return out


def evaluate(model: torch.nn.Module, split: CachedSplit, batch_size: int = 16) -> dict:
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for start in range(0, len(split), batch_size):
        pred = predict_labels(model, split.images[start:start + batch_size], batch_size)
        cm += confusion_matrix(split.labels[start:start + batch_size], pred)
    return segmentation_report(cm)


def save_checkpoint(path: str | Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def export_onnx(model: torch.nn.Module, path: str | Path, size: int, opset: int = 17) -> None:
    """ONNX with input ``image`` (N, 3, S, S) float32 and output ``logits`` (N, 11, S, S); N is dynamic."""
    model.eval()
    dummy = torch.zeros(1, 3, size, size)
    with atomic_path(path) as tmp:
        torch.onnx.export(model, dummy, str(tmp), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                          dynamo=False)


@dataclass
class ParserRun:
    model: torch.nn.Module
    history: list[dict]
    best: dict
    seconds_per_epoch: float


def load_class_weights(path: str | Path, mode: str | list) -> torch.Tensor | None:
    """Weights from ``data/unified/class_weights.json`` by mode name, a custom list, or None for 'none'."""
    import json

    if isinstance(mode, (list, tuple)):
        weights = [float(w) for w in mode]
    elif mode in (None, "none"):
        return None
    else:
        table = json.loads(Path(path).read_text())
        if mode not in table:
            raise KeyError(f"class weight mode {mode!r} not in {path}; known: {', '.join(table)} or a list")
        weights = table[mode]
    if len(weights) != NUM_CLASSES:
        raise ValueError(f"class weights need {NUM_CLASSES} values, got {len(weights)}")
    return torch.tensor(weights, dtype=torch.float32)


def fit_parser(cfg: dict[str, Any], loss_spec: str, cache_dir: Path, class_weights: torch.Tensor | None,
               live=None, seed: int = 0) -> ParserRun:
    """Train the parser of ``cfg`` (the ``parser`` params section); keep the weights of the best val epoch."""
    seed_everything(seed, int(cfg.get("threads", 2)))
    train, val = CachedSplit(cache_dir, "train"), CachedSplit(cache_dir, "val")
    model = build_parser(cfg, NUM_CLASSES)
    loss_fn = build_loss(loss_spec, class_weights, cfg.get("loss_options"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg.get("weight_decay", 0)))
    epochs = int(cfg["epochs"])
    loader = make_loader(SegmentationArrays(train, build_augmentation(cfg.get("augment", {}))),
                         int(cfg["batch_size"]), shuffle=True, seed=seed)
    steps = epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    history, best, best_state, elapsed = [], None, None, 0.0
    for epoch in range(epochs):
        model.train()
        start, total, n = time.perf_counter(), 0.0, 0
        for images, labels in tqdm(loader, desc=f"parser epoch {epoch + 1}/{epochs}", leave=False):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total, n = total + float(loss) * len(images), n + len(images)
        elapsed += time.perf_counter() - start
        report = evaluate(model, val)
        row = {"epoch": epoch + 1, "train_loss": total / max(n, 1), "val_mean_f1_fg": report["mean_f1_fg"],
               "val_mean_iou_fg": report["mean_iou_fg"], "val_pixel_accuracy": report["pixel_accuracy"],
               "lr": optimizer.param_groups[0]["lr"]}
        history.append(row)
        log.info("epoch %d: %s", epoch + 1, row)
        if live is not None:
            for key, value in row.items():
                if key != "epoch" and value is not None:
                    live.log_metric(key, value)
            live.next_step()
        if best is None or (row["val_mean_f1_fg"] or 0) > (best["val_mean_f1_fg"] or 0):
            best = row
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return ParserRun(model, history, best, elapsed / max(epochs, 1))
