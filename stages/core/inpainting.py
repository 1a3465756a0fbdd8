"""Training and running the mask inpainter on the masks stage's arrays.

Training pairs come from ``data/masks/{split}_masked.npy`` / ``{split}_masks.npy`` and the clean photo
``data/cache/{split}_images.npy[source_index]``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from stages.core.cache_arrays import CachedSplit
from stages.core.models.inpainter import MaskInpainter
from stages.core.training import make_loader, seed_everything

log = logging.getLogger(__name__)


class MaskedSplit:
    """One split of the masks stage joined to the clean cached photos (all memory-mapped)."""

    def __init__(self, masks_dir: str | Path, cache_dir: str | Path, split: str):
        masks_dir = Path(masks_dir)
        path = masks_dir / f"{split}_masked.npy"
        if not path.exists():
            raise FileNotFoundError(f"{path}: masked split not found (run `dvc repro masks`)")
        self.masked = np.load(path, mmap_mode="r")
        self.masks = np.load(masks_dir / f"{split}_masks.npy", mmap_mode="r")
        self.source_index = np.load(masks_dir / f"{split}_source_index.npy")
        self.clean = CachedSplit(cache_dir, split).images

    def __len__(self) -> int:
        return int(self.masked.shape[0])

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(masked (S, S, 3) uint8, mask (S, S) uint8 {0, 1}, clean (S, S, 3) uint8)."""
        return np.asarray(self.masked[i]), np.asarray(self.masks[i]), np.asarray(self.clean[self.source_index[i]])


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC (or HWC) -> float NCHW (CHW) in [-1, 1]."""
    x = torch.from_numpy(np.array(images, copy=True)).float().div(127.5).sub(1)
    return x.movedim(-1, -3)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> uint8 NHWC."""
    return tensor.movedim(-3, -1).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()


class InpaintingPairs(Dataset):
    def __init__(self, split: MaskedSplit, hflip: float = 0.0):
        self.split, self.hflip = split, hflip

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        masked, mask, clean = self.split.pair(i)
        if self.hflip and torch.rand(()) < self.hflip:
            masked, mask, clean = masked[:, ::-1], mask[:, ::-1], clean[:, ::-1]
        return (to_unit_range(masked), torch.from_numpy(np.array(mask, dtype=np.float32))[None],
                to_unit_range(clean))


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole_weight: float) -> torch.Tensor:
    """``mean(|pred - target| * (1 + (hole_weight - 1) * mask))``: the hole counts ``hole_weight`` times more."""
    return ((pred - target).abs() * (1 + (hole_weight - 1) * mask)).mean()


@dataclass
class InpainterRun:
    model: MaskInpainter
    history: list[dict]
    seconds_per_epoch: float


@torch.no_grad()
def inpaint(model: MaskInpainter, masked: np.ndarray, masks: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """``masked`` (N, S, S, 3) uint8 and ``masks`` (N, S, S) {0, 1} -> restored (N, S, S, 3) uint8, eval mode."""
    model.eval()
    out = np.empty_like(np.asarray(masked))
    for s in range(0, len(masked), batch_size):
        m = torch.from_numpy(np.array(masks[s:s + batch_size], copy=True)).float()[:, None]
        out[s:s + batch_size] = to_uint8(model(to_unit_range(masked[s:s + batch_size]), m))
    return out


def telea_baseline(masked: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """OpenCV's Telea inpainting of one ``(S, S, 3)`` uint8 photo over ``mask`` (S, S)."""
    return cv2.inpaint(np.ascontiguousarray(masked), (np.asarray(mask) > 0).astype(np.uint8), radius,
                       cv2.INPAINT_TELEA)


def fit_inpainter(cfg: dict[str, Any], masks_dir: Path, cache_dir: Path, live=None) -> InpainterRun:
    """Train on the train split with weighted L1 and Adam; log per-epoch train/val loss."""
    seed = int(cfg.get("seed", 0))
    seed_everything(seed, int(cfg.get("threads", 2)))
    train = MaskedSplit(masks_dir, cache_dir, "train")
    val = MaskedSplit(masks_dir, cache_dir, "val")
    model = MaskInpainter(tuple(cfg.get("widths", (32, 64, 96, 128))))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    hole_weight = float(cfg.get("hole_weight", 6.0))
    loader = make_loader(InpaintingPairs(train, float(cfg.get("hflip", 0.5))), int(cfg["batch_size"]), True, seed)
    epochs, history, elapsed = int(cfg["epochs"]), [], 0.0
    for epoch in range(epochs):
        model.train()
        start, total, n = time.perf_counter(), 0.0, 0
        for masked, mask, clean in tqdm(loader, desc=f"inpainter epoch {epoch + 1}/{epochs}", leave=False):
            optimizer.zero_grad(set_to_none=True)
            loss = weighted_l1(model(masked, mask), clean, mask, hole_weight)
            loss.backward()
            optimizer.step()
            total, n = total + loss.item() * len(masked), n + len(masked)
        elapsed += time.perf_counter() - start
        val_l1 = _val_hole_l1(model, val)
        row = {"epoch": epoch + 1, "train_loss": total / max(n, 1), "val_hole_l1": val_l1}
        history.append(row)
        log.info("inpainter epoch %d: %s", epoch + 1, row)
        if live is not None:
            live.log_metric("train_loss", row["train_loss"])
            live.log_metric("val_hole_l1", val_l1)
            live.next_step()
    return InpainterRun(model, history, elapsed / max(epochs, 1))


def _val_hole_l1(model: MaskInpainter, val: MaskedSplit) -> float:
    restored = inpaint(model, val.masked, val.masks)
    clean = np.asarray(val.clean)[val.source_index]
    m = np.asarray(val.masks).astype(bool)
    return float(np.abs(restored[m].astype(np.float32) - clean[m].astype(np.float32)).mean() / 255.0)


def load_inpainter(path: str | Path) -> MaskInpainter:
    payload = torch.load(path, map_location="cpu", weights_only=False)
    model = MaskInpainter(tuple(payload["config"].get("widths", (32, 64, 96, 128))))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
