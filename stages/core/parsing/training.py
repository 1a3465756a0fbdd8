"""Training the face parser from the packed cache: augmentation, optimizer, scheduler, the loop, checkpoints.

Runs on CPU by default and is deterministic there: same params and seed, same weights and metrics.
Every epoch reseeds torch, numpy and the augmentation from ``seed + epoch``, so a run resumed from its
last checkpoint ends with the same weights as an uninterrupted one. On CUDA it uses mixed precision.

The ``parser`` params section is :class:`ParserParams`: every key, its type, range and default (the defaults
equal params.yaml). ``scheduler`` cosine steps per batch after ``warmup_epochs`` of linear warm-up; plateau is
ReduceLROnPlateau on the val foreground-mean F1. ``early_stopping_patience`` and ``max_minutes`` (0 = off) stop
early; ``train_limit`` / ``val_limit`` (0 = all) make smoke runs; ``resume`` continues from a ``parser_last.pt``.
``devices`` > 1 trains with DistributedDataParallel under torchrun (:mod:`stages.core.common.distributed`); ``batch_size``
is then per process. ``loader_workers`` are DataLoader processes on CUDA (CPU training loads in the main process,
which keeps it deterministic).
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2
import numpy as np
import torch
from pydantic import Field, field_validator
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from stages.core.common.classes import CLASS_NAMES, NUM_CLASSES
from stages.core.common.distributed import (
    DistributedContext,
    distributed_loader,
    from_main,
    per_rank_seed,
    single_process,
    sum_over_ranks,
    unwrap,
    wrap_model,
)
from stages.core.common.io import atomic_path
from stages.core.common.params import ParamsError, ParamsSection
from stages.core.common.torch_utils import (
    load_checkpoint,
    require_keys,
    resume_differences,
    save_checkpoint,
    seed_everything,
    snapshot,
)
from stages.core.data.cache_arrays import CachedSplit
from stages.core.data.masked_arrays import MaskedPhotos
from stages.core.models.preprocessing import normalise
from stages.core.models.registry import PARSER_BUILDERS, build_parser
from stages.core.parsing.losses import LOSSES, build_loss, supervised_loss
from stages.core.parsing.scoring import evaluate

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "adamp", "adabelief", "sgd")
SCHEDULERS = ("cosine", "plateau", "none")


class AugmentParams(ParamsSection):
    """``parser.augment``: each value named after a transform is its probability (see ``build_augmentation``);
    ``masked_photo``: the probability of training on a photo's masked copy (see ``SegmentationArrays``)."""

    SECTION = "parser.augment"
    hflip: float = Field(0.5, ge=0, le=1)
    affine: float = Field(0.5, ge=0, le=1)
    scale_limit: float = Field(0.1, ge=0, lt=1)
    rotate_limit: float = Field(15, ge=0, le=180)
    shift_limit: float = Field(0.05, ge=0, le=0.5)
    color_jitter: float = Field(0, ge=0, le=1)
    jitter: float = Field(0.2, ge=0, le=1)
    coarse_dropout: float = Field(0, ge=0, le=1)
    dropout_holes: int = Field(4, ge=1)
    dropout_size: float = Field(0.25, gt=0, le=1)
    blur: float = Field(0, ge=0, le=1)
    noise: float = Field(0, ge=0, le=1)
    jpeg: float = Field(0, ge=0, le=1)
    masked_photo: float = Field(0.3, ge=0, le=1)


class LossOptions(ParamsSection):
    """``parser.loss_options``: hyper-parameters of the losses in :mod:`stages.core.parsing.losses`."""

    SECTION = "parser.loss_options"
    focal_gamma: float = Field(2.0, ge=0)
    focal_alpha: float = Field(1.0, gt=0)
    tversky_alpha: float = Field(0.3, ge=0)
    tversky_beta: float = Field(0.7, ge=0)
    bias_alpha: float = Field(0.3, ge=0)
    bias_beta: float = Field(0.3, ge=0)


class ParserParams(ParamsSection):
    """The ``parser`` section of params.yaml; its defaults are params.yaml's (see the module docstring)."""

    SECTION = "parser"
    arch: str = "regseg"
    encoder: str = "tu-mobilenetv3_small_100"
    encoder_weights: str | None = None
    decoder_channels: list[int] | None = [64, 48, 32, 16, 16]
    decoder_width: int | None = Field(None, gt=0)
    arch_options: dict[str, Any] = {}
    class_weights: Literal["none", "equal", "empirical", "proportional"] | list[float] = "none"
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(4, ge=1)
    devices: int = Field(1, ge=1)
    loader_workers: int = Field(0, ge=0)
    optimizer: str = "adamw"
    lr: float = Field(0.003, gt=0)
    weight_decay: float = Field(0.0001, ge=0)
    momentum: float = Field(0.9, ge=0)
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    warmup_epochs: float = Field(0, ge=0)
    plateau_patience: int = Field(2, ge=0)
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    early_stopping_patience: int = Field(0, ge=0)
    max_minutes: float = Field(0, ge=0)
    train_limit: int = Field(0, ge=0)
    val_limit: int = Field(0, ge=0)
    amp: bool = True
    resume: str = ""
    augment: AugmentParams = AugmentParams()
    loss_options: LossOptions = LossOptions()
    threads: int = Field(2, ge=1)
    seed: int = 0

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        if arch.lower() not in PARSER_BUILDERS:
            raise ValueError(f"unknown architecture; known: {', '.join(sorted(PARSER_BUILDERS))}")
        return arch

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, name: str) -> str:
        from timm.optim import list_optimizers

        if name.lower() not in set(list_optimizers()) | set(OPTIMIZERS):
            raise ValueError(f"unknown optimizer; try one of {', '.join(OPTIMIZERS)} or any timm.optim name")
        return name


def parser_params(cfg: ParserParams | dict[str, Any]) -> ParserParams:
    """``cfg`` as a checked :class:`ParserParams` (tests and checkpoints pass plain dicts)."""
    return cfg if isinstance(cfg, ParserParams) else ParserParams.from_params(cfg)


def check_loss_spec(spec: Any) -> str:
    """The ``loss`` section: one loss name or a sum such as ``ce+dice``; raises :class:`ParamsError`."""
    names = [n.strip().lower() for n in str(spec).split("+")] if isinstance(spec, str) else []
    unknown = [n for n in names if n not in LOSSES]
    if not names or unknown:
        raise ParamsError(f"params.yaml: loss: unknown loss {spec!r}; known: {', '.join(sorted(LOSSES))} "
                          "(sums like 'ce+dice' work)")
    return spec


# --------------------------------------------------------------------------------------------- augmentation

def build_augmentation(cfg: AugmentParams | dict[str, Any]) -> A.Compose | None:
    """Albumentations pipeline from ``parser.augment``; every value named after a transform is its probability.

    Keys: ``hflip``; ``affine`` with ``scale_limit`` [0.1] (fraction), ``rotate_limit`` [15] (degrees) and
    ``shift_limit`` [0.05] (fraction of the side); ``color_jitter`` with ``jitter`` [0.2] (brightness,
    contrast and saturation; hue gets a tenth); ``coarse_dropout`` with ``dropout_holes`` [4] and
    ``dropout_size`` [0.25] (largest hole side as a fraction of the image); ``blur``; ``noise``; ``jpeg``.

    Labels always use nearest-neighbour and pad with background. The unified classes have no left/right,
    so a horizontal flip needs no label swap. CoarseDropout leaves the label as it is: the parser learns
    to name the face part under an occluder, which is what mask removal needs.
    """
    cfg = cfg if isinstance(cfg, AugmentParams) else AugmentParams.from_params(cfg)

    def p(key: str) -> float:
        return float(getattr(cfg, key))

    steps: list[A.BasicTransform] = []
    if p("hflip"):
        steps.append(A.HorizontalFlip(p=p("hflip")))
    if p("affine"):
        scale, shift, rotate = cfg.scale_limit, cfg.shift_limit, cfg.rotate_limit
        steps.append(A.Affine(scale=(1 - scale, 1 + scale), translate_percent=(-shift, shift), rotate=(-rotate, rotate),
                              interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                              border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=p("affine")))
    if p("color_jitter"):
        j = cfg.jitter
        steps.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=j / 10, p=p("color_jitter")))
    if p("coarse_dropout"):
        size = cfg.dropout_size
        steps.append(A.CoarseDropout(num_holes_range=(1, cfg.dropout_holes),
                                     hole_height_range=(size / 4, size), hole_width_range=(size / 4, size),
                                     fill="random_uniform", p=p("coarse_dropout")))
    if p("blur"):
        steps.append(A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 7))], p=p("blur")))
    if p("noise"):
        steps.append(A.GaussNoise(std_range=(0.02, 0.08), p=p("noise")))
    if p("jpeg"):
        steps.append(A.ImageCompression(quality_range=(40, 90), p=p("jpeg")))
    return A.Compose(steps) if steps else None


class SegmentationArrays(Dataset):
    """``(3, S, S)`` float image and ``(S, S)`` int64 label from a cached split.

    ``masked`` (the masks stage's photos of the same split) and ``masked_photo`` (a probability): a photo that
    has a masked copy is replaced by it that often, before the other augmentations, and keeps the clean
    photo's label, so the parser learns to name the face parts under a mask. The draw uses numpy's global
    generator, which the training loop reseeds every epoch; with ``masked_photo`` 0 nothing is drawn.
    """

    def __init__(self, split: CachedSplit, augment: A.Compose | None = None, masked: MaskedPhotos | None = None,
                 masked_photo: float = 0.0):
        self.split, self.augment = split, augment
        self.masked, self.masked_photo = masked, (masked_photo if masked is not None else 0.0)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        image, label = np.asarray(self.split.images[i]), np.asarray(self.split.labels[i])
        if self.masked_photo:
            row = self.masked.masked_row(i)
            if row is not None and np.random.random() < self.masked_photo:
                image = np.asarray(self.masked.masked[row])
        if self.augment is not None:
            out = self.augment(image=image, mask=label)
            image, label = out["image"], out["mask"]
        return torch.from_numpy(normalise(image)), torch.from_numpy(label.astype(np.int64))


# ------------------------------------------------------------------------------------------ evaluation, export

def export_onnx(model: torch.nn.Module, path: str | Path, size: int, opset: int = 17) -> None:
    """ONNX with input ``image`` (N, 3, S, S) float32 and output ``logits`` (N, 11, S, S); N is dynamic.

    Uses the TorchScript exporter; models it cannot export (smp PSPNet/UPerNet at sizes where adaptive
    pooling does not divide evenly) go through the dynamo exporter instead, with a fixed batch of 1.
    """
    model = model.eval().cpu()
    dummy = torch.zeros(1, 3, size, size)
    names = {"input_names": ["image"], "output_names": ["logits"]}
    with atomic_path(path) as tmp:
        try:
            torch.onnx.export(model, dummy, str(tmp), dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                              opset_version=opset, dynamo=False, **names)
        except torch.onnx.errors.SymbolicValueError as err:
            log.warning("TorchScript ONNX export failed (%s); using the dynamo exporter", str(err).splitlines()[0])
            program = torch.onnx.export(model, (dummy,), None, opset_version=max(opset, 18), dynamo=True, **names)
            program.save(str(tmp))


# ------------------------------------------------------------------------------- optimizer, scheduler, stopping

def build_optimizer(model: torch.nn.Module, cfg: ParserParams | dict[str, Any]) -> torch.optim.Optimizer:
    """``timm.optim.create_optimizer_v2`` with ``optimizer``, ``lr``, ``weight_decay`` and ``momentum`` (sgd)."""
    from timm.optim import create_optimizer_v2

    cfg = parser_params(cfg)
    name = cfg.optimizer.lower()
    extra = {"momentum": cfg.momentum} if name in ("sgd", "momentum") else {}
    return create_optimizer_v2(model, opt=name, lr=cfg.lr, weight_decay=cfg.weight_decay,
                               **extra)


class LearningRateSchedule:
    """One object for both kinds of schedule: ``after_step()`` each batch, ``after_epoch(val_f1)`` each epoch.

    cosine: ``lr_t = lr * t / warm`` during warm-up, then ``lr * (1 + cos(pi * (t - warm) / (T - warm))) / 2``
    over the T optimizer steps of the run. plateau: ReduceLROnPlateau in ``max`` mode on the val F1.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ParserParams | dict[str, Any], steps_per_epoch: int,
                 epochs: int):
        cfg = parser_params(cfg)
        self.kind = cfg.scheduler
        total = max(steps_per_epoch * epochs, 1)
        warm = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)
        if self.kind == "cosine":
            def factor(step: int) -> float:
                if step < warm:
                    return (step + 1) / warm
                return 0.5 * (1 + math.cos(math.pi * min(step - warm, total - warm) / (total - warm)))
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        elif self.kind == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", patience=cfg.plateau_patience, factor=cfg.plateau_factor)
        else:
            self.scheduler = None

    def after_step(self) -> None:
        if self.kind == "cosine":
            self.scheduler.step()

    def after_epoch(self, val_f1: float | None) -> None:
        if self.kind == "plateau":
            self.scheduler.step(val_f1 if val_f1 is not None else 0.0)

    def state_dict(self) -> dict:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)


class EarlyStopping:
    """Stop when the score has not beaten its best for ``patience`` epochs in a row (``patience`` 0: never)."""

    def __init__(self, patience: int):
        self.patience, self.best, self.bad_epochs = int(patience), None, 0

    def update(self, score: float | None) -> bool:
        """Record one epoch's score; True when training should stop."""
        score = float("-inf") if score is None else score
        if self.best is None or score > self.best:
            self.best, self.bad_epochs = score, 0
        else:
            self.bad_epochs += 1
        return self.patience > 0 and self.bad_epochs >= self.patience


# ---------------------------------------------------------------------------------------------------- the loop

@dataclass
class ParserRun:
    model: torch.nn.Module
    history: list[dict]
    best: dict
    seconds_per_epoch: float
    stopped_early: bool = False


def load_class_weights(path: str | Path, mode: str | list) -> torch.Tensor | None:
    """Weights from ``data/unified/class_weights.json`` by mode name, a custom list, or None for 'none'."""
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


def _limited(dataset: Dataset, limit: int) -> Dataset:
    return Subset(dataset, range(min(limit, len(dataset)))) if limit else dataset


def _autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", enabled=False)


def _train_one_epoch(model, loader, loss_fn, optimizer, schedule, scaler, ctx: DistributedContext, use_amp,
                     desc, extra_loss: ExtraLoss | None = None) -> float:
    """One pass over ``loader`` in train mode; returns the mean training loss per image over all ranks."""
    model.train()
    device = ctx.device
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    total, n = 0.0, 0
    for images, labels in tqdm(loader, desc=desc, leave=False, disable=not ctx.is_main):
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        labels = labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, use_amp):
            outputs = model(images)
            loss = supervised_loss(unwrap(model), outputs, labels, loss_fn)
            if extra_loss is not None:
                loss = extra_loss(images, outputs, loss)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        schedule.after_step()
        total, n = total + float(loss.detach()) * len(images), n + len(images)
    total, n = sum_over_ranks([total, n], ctx)
    return total / max(n, 1)


# ``extra_loss(images, outputs, supervised_loss) -> loss``: how distillation adds its teacher term (see
# stages/core/parsing/distillation.py); ``images`` are the normalised (B, 3, S, S) batch, ``outputs`` the raw forward output.
ExtraLoss = Callable[[torch.Tensor, Any, torch.Tensor], torch.Tensor]


def _log_epoch(live, row: dict) -> None:
    """One epoch's row into dvclive: its numbers, and the val F1 of each foreground class (``row["val_f1"]``)."""
    if live is None:
        return
    for key, value in row.items():
        if key != "epoch" and isinstance(value, (int, float)):
            live.log_metric(key, value)
    for name, f1 in row["val_f1"].items():
        if f1 is not None:
            live.log_metric(f"val_f1/{name}", f1)
    live.next_step()


TIMING_KEYS = ("epoch_seconds",)
# Keys of the parser section that may differ between a run and the one it resumes: where to resume from, threads
# (same weights), and the time budget (how an interrupted run is given more time).
RESUME_MAY_CHANGE = ("resume", "threads", "max_minutes")


def without_timings(rows: list[dict]) -> list[dict]:
    """History rows as checkpoints store them: without wall-clock times, so that the same training gives
    byte-identical checkpoints (and a retrained but equal parser does not re-run the benchmark)."""
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


def check_resumable(state: dict, cfg: ParserParams, loss_spec: str, seed: int, path: str | Path) -> None:
    """Refuse a checkpoint written by a run with other params, loss or seed: continuing it would not give the
    model these params describe. Raises ``ValueError`` naming the file and the first differences."""
    differ = resume_differences(dict(state.get("config") or {}), cfg.as_dict(), "parser", RESUME_MAY_CHANGE)
    if state.get("loss") != loss_spec:
        differ.append(f"loss: {state.get('loss')!r} there, {loss_spec!r} here")
    if state.get("seed") != seed:
        differ.append(f"seed: {state.get('seed')!r} there, {seed!r} here")
    if differ:
        raise ValueError(f"{path}: cannot resume: the checkpoint was written with other params ({'; '.join(differ[:4])})")


RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "history", "best", "best_state", "config", "loss", "seed")


def fit_parser(cfg: ParserParams | dict[str, Any], loss_spec: str, cache_dir: Path, class_weights: torch.Tensor | None,
               live=None, seed: int = 0, checkpoint_path: str | Path | None = None,
               resume_from: str | Path | None = None, masks_dir: Path | None = None,
               ctx: DistributedContext | None = None, extra_loss: ExtraLoss | None = None) -> ParserRun:
    """Train the parser of ``cfg`` (the ``parser`` params section); keep the weights of the best val epoch.

    ``masks_dir``: the masks stage's output, for ``parser.augment.masked_photo``; without it that augmentation
    is off (a warning says so when its probability is not 0).
    ``checkpoint_path``: where to write the full training state after every epoch (for resuming).
    ``resume_from`` (or ``cfg.resume``): a checkpoint written that way; training continues after its epoch.
    ``ctx``: this process's place among torchrun's (default: one process). Every rank trains on its share of
    each global batch; rank 0 alone validates, logs to ``live`` and writes checkpoints, and only its returned
    model holds the best epoch's weights.
    ``extra_loss``: replaces each batch's supervised loss by ``extra_loss(images, outputs, loss)`` (distillation).
    """
    cfg = parser_params(cfg)
    ctx = ctx or single_process()
    rank_seed = per_rank_seed(seed, ctx.rank)
    seed_everything(rank_seed, cfg.threads)
    device = ctx.device
    log.info("rank %d of %d on %s: %d torch threads, batch %d per process", ctx.rank, ctx.world_size, device,
             torch.get_num_threads(), cfg.batch_size)
    use_amp = cfg.amp and device.type == "cuda"
    train, val = CachedSplit(cache_dir, "train"), CachedSplit(cache_dir, "val")
    model = build_parser(cfg.as_dict(), NUM_CLASSES).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    net = wrap_model(model, ctx)
    model = unwrap(net)
    live = live if ctx.is_main else None
    loss_fn = build_loss(loss_spec, None if class_weights is None else class_weights.to(device),
                         cfg.loss_options.as_dict())
    optimizer = build_optimizer(model, cfg)
    augment = build_augmentation(cfg.augment)
    masked = MaskedPhotos(masks_dir, "train") if masks_dir is not None and cfg.augment.masked_photo else None
    if masked is None and cfg.augment.masked_photo:
        log.warning("parser.augment.masked_photo is %s but no masks folder was given: masked photos are not used",
                    cfg.augment.masked_photo)
    dataset = _limited(SegmentationArrays(train, augment, masked, cfg.augment.masked_photo), cfg.train_limit)
    batch_size, epochs = cfg.batch_size, cfg.epochs
    loader = distributed_loader(dataset, batch_size, seed, ctx, workers=cfg.loader_workers)
    schedule = LearningRateSchedule(optimizer, cfg, len(loader), epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and not torch.cuda.is_bf16_supported())
    stopper = EarlyStopping(cfg.early_stopping_patience)
    history, best, best_state, start_epoch = [], None, None, 0

    resume_from = resume_from or cfg.resume or None
    if resume_from:
        state = load_checkpoint(resume_from, map_location=device)
        require_keys(state, RESUME_KEYS, resume_from)
        check_resumable(state, cfg, loss_spec, seed, resume_from)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, best, best_state, start_epoch = state["history"], state["best"], state["best_state"], state["epoch"]
        for row in history:
            stopper.update(row["val_mean_f1_fg"])
            _log_epoch(live, row)  # the resumed run's log holds every epoch, as an uninterrupted run's does
        log.info("resumed from %s after epoch %d", resume_from, start_epoch)

    max_seconds = cfg.max_minutes * 60
    stopped_early = False
    for epoch in range(start_epoch, epochs):
        # Reseeding per epoch makes a resumed run identical to an uninterrupted one.
        seed_everything(rank_seed + epoch)
        if augment is not None:
            augment.set_random_seed(rank_seed + epoch)
        loader.sampler.set_epoch(epoch)
        start = time.perf_counter()
        train_loss = _train_one_epoch(net, loader, loss_fn, optimizer, schedule, scaler, ctx, use_amp,
                                      f"parser epoch {epoch + 1}/{epochs}", extra_loss)
        epoch_seconds = time.perf_counter() - start
        row = None
        if ctx.is_main:
            report = evaluate(model, val, limit=cfg.val_limit)
            row = {"epoch": epoch + 1, "train_loss": train_loss, "val_mean_f1_fg": report["mean_f1_fg"],
                   "val_mean_iou_fg": report["mean_iou_fg"], "val_pixel_accuracy": report["pixel_accuracy"],
                   "lr": float(optimizer.param_groups[0]["lr"]), "epoch_seconds": epoch_seconds,
                   "val_f1": {name: report["per_class"][name]["f1"] for name in CLASS_NAMES[1:]}}
        row = from_main(row, ctx)  # every rank steps the schedule and stops on rank 0's validation
        schedule.after_epoch(row["val_mean_f1_fg"])
        history.append(row)
        log.info("epoch %d: %s", epoch + 1, row)
        _log_epoch(live, row)
        if best is None or (row["val_mean_f1_fg"] or 0) > (best["val_mean_f1_fg"] or 0):
            best, best_state = row, snapshot(model) if ctx.is_main else None
        stop = stopper.update(row["val_mean_f1_fg"])
        if checkpoint_path and ctx.is_main:
            save_checkpoint(checkpoint_path, {"model": snapshot(model), "optimizer": optimizer.state_dict(),
                                              "scheduler": schedule.state_dict(), "scaler": scaler.state_dict(),
                                              "epoch": epoch + 1, "history": without_timings(history),
                                              "best": without_timings([best])[0], "best_state": best_state,
                                              "config": cfg.as_dict(), "loss": loss_spec, "seed": seed})
        # The budget counts this process's epochs: a resumed run's earlier times are not in its checkpoint.
        if stop or (max_seconds and sum(r.get("epoch_seconds", 0) for r in history) >= max_seconds):
            stopped_early = epoch + 1 < epochs
            log.info("stopping after epoch %d (%s)", epoch + 1, "early stopping" if stop else "max_minutes")
            break
    if ctx.is_main:
        model.load_state_dict(best_state)
    seconds = [r["epoch_seconds"] for r in history[start_epoch:]] or [0.0]
    return ParserRun(model.cpu(), history, best, float(np.mean(seconds)), stopped_early)
