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
from pydantic import Field
from torch.utils.data import Dataset
from tqdm import tqdm

from stages.core.cache_arrays import CachedSplit
from stages.core.distributed import (
    DistributedContext,
    distributed_loader,
    per_rank_seed,
    single_process,
    sum_over_ranks,
    unwrap,
    wrap_model,
)
from stages.core.metrics import masked_l1, masked_psnr, masked_ssim
from stages.core.models.inpainter import MaskInpainter
from stages.core.params import ParamsSection
from stages.core.threads import thread_budget
from stages.core.torch_utils import load_checkpoint, require_keys, seed_everything

log = logging.getLogger(__name__)


class InpainterParams(ParamsSection):
    """The ``inpainter`` section of params.yaml. ``widths``: channels of the four encoder levels;
    ``hole_weight``: how many times more a pixel inside the mask counts in the L1 loss; ``hflip``: probability."""

    SECTION = "inpainter"
    widths: tuple[int, int, int, int] = (24, 48, 64, 96)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(8, ge=1)
    devices: int = Field(1, ge=1)
    lr: float = Field(0.002, gt=0)
    hole_weight: float = Field(6.0, ge=1)
    hflip: float = Field(0.5, ge=0, le=1)
    threads: int = Field(2, ge=1)
    seed: int = 0


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
    device = next(model.parameters()).device
    out = np.empty_like(np.asarray(masked))
    for s in range(0, len(masked), batch_size):
        m = torch.from_numpy(np.array(masks[s:s + batch_size], copy=True)).float()[:, None]
        restored = model(to_unit_range(masked[s:s + batch_size]).to(device), m.to(device))
        out[s:s + batch_size] = to_uint8(restored.cpu())
    return out


def telea_baseline(masked: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """OpenCV's Telea inpainting of one ``(S, S, 3)`` uint8 photo over ``mask`` (S, S)."""
    return cv2.inpaint(np.ascontiguousarray(masked), (np.asarray(mask) > 0).astype(np.uint8), radius,
                       cv2.INPAINT_TELEA)


def fit_inpainter(cfg: InpainterParams | dict[str, Any], masks_dir: Path, cache_dir: Path, live=None,
                  ctx: DistributedContext | None = None) -> InpainterRun:
    """Train on the train split with weighted L1 and Adam; log per-epoch train/val loss.

    ``ctx``: this process's place among torchrun's (default: one process); ``batch_size`` is per process, and
    rank 0 alone validates and logs (see :mod:`stages.core.distributed`).
    """
    cfg = cfg if isinstance(cfg, InpainterParams) else InpainterParams.from_params(cfg)
    ctx = ctx or single_process()
    seed = cfg.seed
    seed_everything(per_rank_seed(seed, ctx.rank), cfg.threads)
    train = MaskedSplit(masks_dir, cache_dir, "train")
    val = MaskedSplit(masks_dir, cache_dir, "val")
    net = wrap_model(MaskInpainter(cfg.widths).to(ctx.device), ctx)
    model = unwrap(net)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    hole_weight = cfg.hole_weight
    loader = distributed_loader(InpaintingPairs(train, cfg.hflip), cfg.batch_size, seed, ctx)
    epochs, history, elapsed = cfg.epochs, [], 0.0
    for epoch in range(epochs):
        net.train()
        loader.sampler.set_epoch(epoch)
        start, total, n = time.perf_counter(), 0.0, 0
        for masked, mask, clean in tqdm(loader, desc=f"inpainter epoch {epoch + 1}/{epochs}", leave=False,
                                        disable=not ctx.is_main):
            masked, mask, clean = masked.to(ctx.device), mask.to(ctx.device), clean.to(ctx.device)
            optimizer.zero_grad(set_to_none=True)
            loss = weighted_l1(net(masked, mask), clean, mask, hole_weight)
            loss.backward()
            optimizer.step()
            total, n = total + loss.item() * len(masked), n + len(masked)
        total, n = sum_over_ranks([total, n], ctx)
        elapsed += time.perf_counter() - start
        if not ctx.is_main:
            continue
        val_l1 = _val_hole_l1(model, val)
        row = {"epoch": epoch + 1, "train_loss": total / max(n, 1), "val_hole_l1": val_l1}
        history.append(row)
        log.info("inpainter epoch %d: %s", epoch + 1, row)
        if live is not None:
            live.log_metric("train_loss", row["train_loss"])
            live.log_metric("val_hole_l1", val_l1)
            live.next_step()
    return InpainterRun(model.cpu(), history, elapsed / max(epochs, 1))


def _val_hole_l1(model: MaskInpainter, val: MaskedSplit) -> float:
    restored = inpaint(model, val.masked, val.masks)
    clean = np.asarray(val.clean)[val.source_index]
    m = np.asarray(val.masks).astype(bool)
    return float(np.abs(restored[m].astype(np.float32) - clean[m].astype(np.float32)).mean() / 255.0)


def load_inpainter(path: str | Path) -> MaskInpainter:
    """The inpainter saved by the ``train_inpainter`` stage, in eval mode (loaded with ``weights_only=True``)."""
    payload = load_checkpoint(path)
    require_keys(payload, ("state_dict", "config"), path)
    model = MaskInpainter(InpainterParams.from_params(payload["config"], path).widths)
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def benchmark_inpainter(checkpoint: Path, masks_dir: Path, cache_dir: Path, threads: int, sample_count: int = 6):
    """PSNR, SSIM and L1 inside the mask for the inpainter and OpenCV Telea on the same test images.

    Returns (metrics dict, sample rows of (masked, inpainter, Telea, clean) photos for a PNG sheet).
    """
    torch.set_num_threads(thread_budget(threads))
    model = load_inpainter(checkpoint)
    test = MaskedSplit(masks_dir, cache_dir, "test")
    restored = inpaint(model, test.masked, test.masks)
    scores = {"inpainter": {"psnr": [], "ssim": [], "l1": []}, "telea": {"psnr": [], "ssim": [], "l1": []}}
    rows = []
    for i in range(len(test)):
        masked, mask, clean = test.pair(i)
        telea = telea_baseline(masked, mask)
        for name, pred in (("inpainter", restored[i]), ("telea", telea)):
            scores[name]["psnr"].append(masked_psnr(pred, clean, mask))
            scores[name]["ssim"].append(masked_ssim(pred, clean, mask))
            scores[name]["l1"].append(masked_l1(pred, clean, mask))
        if len(rows) < sample_count:
            rows.append([masked, restored[i], telea, clean])
    metrics = {name: {k: float(np.mean(v)) for k, v in s.items()} for name, s in scores.items()}
    metrics["test_images"] = len(test)
    metrics["mean_mask_coverage"] = float(np.asarray(test.masks).mean())
    metrics["params"] = int(sum(p.numel() for p in model.parameters()))
    return metrics, rows
