"""Training and scoring the mask finder: which pixels of an aligned face are a face mask.

Training data is the masks stage's output, whose regions are exact (every pixel the drawing changed):
``data/masks/{split}_masked.npy`` with ``{split}_masks.npy`` as the target, plus clean photos of
``data/cache/{split}_images.npy`` with an empty target, so that the finder learns to say "no mask".
Drawn masks are few kinds in few colours; real ones are surgical, KN95, cloth, fashion and printed masks in any
colour and light. So the mask pixels are restyled before the usual augmentations (:func:`restyle_region`):
recoloured (hue, saturation, value), covered with a printed pattern (stripes, checks, dots, noise textures,
printed shapes) or toned like the wearer's own skin (beige, peach and nude masks, or a white one under warm
light, are where the finder missed real masks), each keeping the drawn shading; and the photo gets light
changes (brightness ramps, shadows, gamma, colour temperature) and camera effects (blur, noise, JPEG,
downscaling). Clean photos often get confounders painted, placed by
their labels (:mod:`stages.core.mask_finding.confounders`: red lips, beards, dark skin below the nose, scarves
that leave the mouth free), with their target left empty: real unmasked faces with these are where the finder
found false masks.

The ``mask_finder`` params section is :class:`MaskFinderParams`. The stage never reads the parser's outputs.
Running the trained finder on photos is :mod:`stages.core.mask_finding.finder`.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2
import numpy as np
import torch
from pydantic import Field, model_validator
from torch.utils.data import Dataset
from tqdm import tqdm

from stages.core.common.classes import BEARD, EYEBROWS, EYES, FACE, LIPS, NOSE, TEETH
from stages.core.common.io import atomic_path
from stages.core.common.params import ParamsSection
from stages.core.common.torch_utils import make_loader, seed_everything, snapshot
from stages.core.data.cache_arrays import CachedSplit
from stages.core.data.masked_arrays import MaskedPhotos
from stages.core.mask_finding.confounders import paint_confounders
from stages.core.mask_finding.finder import (
    NO_MASK_FRACTION,
    FinderSettings,
    MaskFinder,
    regions_from_probabilities,
    resize_image,
    stretch_contrast,
)
from stages.core.models.mask_finder import MaskFinderNet
from stages.core.models.preprocessing import normalise

log = logging.getLogger(__name__)


class FinderAugmentParams(ParamsSection):
    """``mask_finder.augment``: probabilities. ``recolour``, ``pattern`` and ``skin_tone`` restyle the mask
    pixels (one of them, so their sum is at most 1); ``lighting``: brightness/contrast, gamma, a brightness ramp,
    shadows or a colour temperature;
    ``camera``: blur, noise, JPEG or downscaling; ``close_up``: the photo ends inside the crop
    (:func:`cut_at_photo_edge`); ``affine`` with ``scale_limit``, ``rotate_limit`` (degrees)
    and ``shift_limit`` (fraction of the side): aligned real faces sit less exactly than drawn ones;
    ``confounders``: a clean photo gets one or two confounders painted
    (:func:`stages.core.mask_finding.confounders.paint_confounders`), its target staying empty."""

    SECTION = "mask_finder.augment"
    hflip: float = Field(0.5, ge=0, le=1)
    affine: float = Field(0.7, ge=0, le=1)
    scale_limit: float = Field(0.15, ge=0, lt=1)
    rotate_limit: float = Field(15, ge=0, le=180)
    shift_limit: float = Field(0.08, ge=0, le=0.5)
    recolour: float = Field(0.35, ge=0, le=1)
    pattern: float = Field(0.35, ge=0, le=1)
    skin_tone: float = Field(0.2, ge=0, le=1)
    lighting: float = Field(0.6, ge=0, le=1)
    camera: float = Field(0.5, ge=0, le=1)
    confounders: float = Field(0.5, ge=0, le=1)
    close_up: float = Field(0.3, ge=0, le=1)

    @model_validator(mode="after")
    def _one_restyle(self):
        if self.recolour + self.pattern + self.skin_tone > 1:
            raise ValueError(f"recolour + pattern + skin_tone must be at most 1 (one restyle per photo), got "
                             f"{self.recolour} + {self.pattern} + {self.skin_tone}")
        return self


class MaskFinderParams(ParamsSection):
    """The ``mask_finder`` section of params.yaml (defaults equal params.yaml).

    ``widths``: channels of the network's levels; ``input_size``: the side the aligned crop is shrunk to (a
    multiple of 2 ** len(widths)); ``clean_fraction``: unmasked photos added to training, per masked photo;
    ``threshold``, ``min_region`` (fraction of the face) and ``dilation`` (crop pixels): how a probability map
    becomes a region, and ``contrast_percentile``: how each input is stretched (training's inputs too); all
    stored with the model (see :mod:`stages.core.mask_finding.finder`);
    ``train_limit`` (0 = all): the first N masked training photos, for smoke runs.
    """

    SECTION = "mask_finder"
    widths: tuple[int, ...] = (16, 32, 48, 64)
    input_size: int = Field(96, ge=32)
    epochs: int = Field(6, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(0.003, gt=0)
    weight_decay: float = Field(0.0001, ge=0)
    clean_fraction: float = Field(1.0, ge=0, le=2)
    threshold: float = Field(0.5, gt=0, lt=1)
    min_region: float = Field(NO_MASK_FRACTION, ge=0, lt=1)
    dilation: int = Field(6, ge=0)
    contrast_percentile: float = Field(1.0, ge=0, lt=50)
    train_limit: int = Field(0, ge=0)
    augment: FinderAugmentParams = FinderAugmentParams()
    threads: int = Field(2, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _divisible(self):
        stride = 2 ** len(self.widths)
        if self.input_size % stride:
            raise ValueError(f"input_size {self.input_size} must be a multiple of {stride} (2 ** len(widths))")
        return self

    def settings(self) -> FinderSettings:
        return FinderSettings(self.input_size, self.threshold, self.min_region, self.dilation,
                              self.contrast_percentile)


# ------------------------------------------------------------------------------------------ restyling the mask

def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour: a third of them near white, black or grey (common masks), the rest anywhere."""
    if rng.random() < 0.33:
        return np.full(3, rng.choice([rng.uniform(200, 250), rng.uniform(15, 60), rng.uniform(90, 170)]), np.float32)
    return rng.uniform(0, 255, 3).astype(np.float32)


def pattern_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size, 3)`` float32 RGB print: stripes, checks, dots, a noise texture or printed shapes."""
    kind = rng.choice(["stripes", "check", "dots", "noise", "shapes"])
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    base, second = _random_colour(rng), _random_colour(rng)
    period = float(rng.uniform(3, 16)) * size / 128
    if kind == "stripes":
        angle = rng.uniform(0, np.pi)
        phase = (xs * np.cos(angle) + ys * np.sin(angle)) / period
        mix = (np.sin(2 * np.pi * phase) > rng.uniform(-0.6, 0.6)).astype(np.float32)
    elif kind == "check":
        mix = ((xs // period + ys // period) % 2).astype(np.float32)
    elif kind == "dots":
        cell = period * 1.6
        dx, dy = (xs % cell) - cell / 2, (ys % cell) - cell / 2
        mix = (dx**2 + dy**2 < (cell * rng.uniform(0.15, 0.4)) ** 2).astype(np.float32)
    elif kind == "noise":
        cells = int(rng.integers(3, 24))
        mix = cv2.resize(rng.random((cells, cells)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        mix = np.clip((mix - mix.min()) / max(float(np.ptp(mix)), 1e-6), 0, 1)
        if rng.random() < 0.5:
            mix = np.clip(mix + rng.normal(0, 0.15, mix.shape).astype(np.float32), 0, 1)  # fabric grain
    else:
        canvas = np.zeros((size, size), np.float32)
        texture = np.broadcast_to(base, (size, size, 3)).copy()
        for _ in range(int(rng.integers(4, 30))):
            colour = _random_colour(rng)
            layer = np.zeros((size, size), np.uint8)
            centre = tuple(int(v) for v in rng.integers(0, size, 2))
            extent = int(rng.integers(2, max(size // 6, 3)))
            if rng.random() < 0.5:
                cv2.circle(layer, centre, extent, 1, -1 if rng.random() < 0.7 else 2)
            else:
                end = tuple(int(v) for v in rng.integers(0, size, 2))
                cv2.line(layer, centre, end, 1, int(rng.integers(1, 4)))
            texture[layer > 0] = colour
            canvas += layer
        return texture
    return base * (1 - mix[..., None]) + second * mix[..., None]


def _hsv_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with its hue turned, saturation and value scaled (float32 RGB out)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(0, 180)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.3, 2.5) + rng.uniform(0, 60), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.4, 1.3), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)


def skin_colour(image: np.ndarray, skin: np.ndarray) -> np.ndarray | None:
    """The median ``(3,)`` float32 RGB of ``image`` (H, W, 3) over ``skin`` (H, W) bool; None under 20 pixels."""
    if int(skin.sum()) < 20:
        return None
    return np.median(image[skin].astype(np.float32), axis=0)


def restyle_region(image: np.ndarray, region: np.ndarray, rng: np.random.Generator, recolour: float,
                   pattern: float, skin_tone: float = 0.0, skin: np.ndarray | None = None) -> np.ndarray:
    """``image`` (S, S, 3) uint8 with the pixels of ``region`` (S, S) bool recoloured (probability ``recolour``),
    printed with :func:`pattern_texture` (probability ``pattern``) or toned like the face's visible skin
    (probability ``skin_tone``; ``skin`` (S, S) bool: the face-skin pixels outside the region, None or too few:
    no restyle); other pixels are unchanged.

    A print or a skin tone keeps the drawn mask's shading: it is multiplied by the region's brightness relative
    to its mean. A skin tone is the skin's median colour, its brightness scaled by 0.8 to 1.2 and each channel by
    0.93 to 1.07, so that the mask is near the skin's colour but not the same.
    """
    draw = rng.random()
    if not region.any() or draw >= recolour + pattern + skin_tone:
        return image
    out = image.astype(np.float32)
    if draw < recolour:
        styled = _hsv_shift(image, rng)
    else:
        if draw < recolour + pattern:
            colours = pattern_texture(rng, image.shape[0])
        else:
            tone = skin_colour(image, skin) if skin is not None else None
            if tone is None:
                return image
            colours = tone * rng.uniform(0.8, 1.2) * rng.uniform(0.93, 1.07, 3)
        luma = out.mean(axis=2)
        shading = np.clip(luma / max(float(luma[region].mean()), 1.0), 0.4, 1.6) ** rng.uniform(0.5, 1.0)
        styled = colours * shading[..., None]
    strength = rng.uniform(0.75, 1.0)
    out[region] += (styled[region] - out[region]) * strength
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def brightness_ramp(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Side light: the photo times a linear ramp from ``1 - d`` to ``1 + d`` across a random direction."""
    size = image.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    angle, depth = rng.uniform(0, 2 * np.pi), rng.uniform(0.15, 0.5)
    ramp = 1 + 2 * depth * (xs * np.cos(angle) + ys * np.sin(angle))
    return np.clip(image.astype(np.float32) * ramp[..., None], 0, 255).astype(np.uint8)


def cut_at_photo_edge(image: np.ndarray, region: np.ndarray, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A close-up: ``image`` (S, S, 3) and ``region`` (S, S) as if the photo ended inside the aligned crop,
    reflected beyond its edges as :func:`stages.core.inference.alignment.warp_into_framing` fills a crop beyond a
    photo (the reflected mask pixels stay mask: they look like it). The photo's bottom edge falls anywhere from
    below the nose tip to the crop's edge, its top from the crop's edge to the brows, its sides anywhere
    outside the jaw's corners of the framing template (eyes at 0.48 of the side, mouth at 0.74, chin at 0.93).

    Written here, not taken from albumentations: its crops and pads do not put the cut back where it was."""
    size = image.shape[0]
    top, bottom = int(rng.uniform(0, 0.35) * size), int(rng.uniform(0.66, 1.0) * size)
    left, right = int(rng.uniform(0, 0.25) * size), int(rng.uniform(0.75, 1.0) * size)
    borders = (top, size - bottom, left, size - right)
    image = cv2.copyMakeBorder(np.ascontiguousarray(image[top:bottom, left:right]), *borders, cv2.BORDER_REFLECT_101)
    region = cv2.copyMakeBorder(np.ascontiguousarray(region[top:bottom, left:right]).astype(np.uint8), *borders,
                                cv2.BORDER_REFLECT_101)
    return image, region.astype(bool)


def build_finder_augmentation(cfg: FinderAugmentParams) -> A.Compose:
    """Geometry (flip, affine; the target follows with nearest-neighbour), light and camera effects."""
    steps: list[A.BasicTransform] = [A.HorizontalFlip(p=cfg.hflip)]
    if cfg.affine:
        s, t, r = cfg.scale_limit, cfg.shift_limit, cfg.rotate_limit
        steps.append(A.Affine(scale=(1 - s, 1 + s), translate_percent=(-t, t), rotate=(-r, r),
                              interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                              border_mode=cv2.BORDER_REFLECT_101, p=cfg.affine))
    if cfg.lighting:
        steps.append(A.OneOf([A.RandomBrightnessContrast(0.3, 0.3), A.RandomGamma((60, 160)),
                              A.RandomShadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 2),
                                             shadow_intensity_range=(0.2, 0.6)),
                              A.HueSaturationValue(10, 25, 20), A.PlanckianJitter()], p=cfg.lighting))
    if cfg.camera:
        steps.append(A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.GaussNoise(std_range=(0.02, 0.08)),
                              A.ImageCompression(quality_range=(30, 90)),
                              A.Downscale(scale_range=(0.35, 0.7))], p=cfg.camera))
    return A.Compose(steps)


# ------------------------------------------------------------------------------------------------ the data

def shrink_region(region: np.ndarray, size: int) -> np.ndarray:
    """``(S, S)`` {0, 1} region -> ``(size, size)`` bool: a pixel is mask when at least half of it was."""
    region = np.asarray(region, np.float32)
    if region.shape[0] == size:
        return region > 0.5
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA) >= 0.5


class FinderSamples(Dataset):
    """Masked photos with their regions, then ``round(clean_fraction x masked)`` clean photos (evenly spaced
    rows of the cache split) with empty targets. Items: ``(3, s, s)`` float image, ``(1, s, s)`` float target.

    ``augment`` (training only) restyles the mask pixels, paints confounders on clean photos (probability
    ``augment.confounders``), then applies :func:`build_finder_augmentation` and maybe
    :func:`cut_at_photo_edge`. Every item's contrast is then stretched as the finder stretches its inputs
    (:func:`stages.core.mask_finding.finder.stretch_contrast` at ``contrast_percentile``).
    Call ``set_epoch`` before each epoch: the restyling of item ``i`` draws from ``(seed, epoch, i)``.
    """

    def __init__(self, masked: MaskedPhotos, clean: CachedSplit, size: int, clean_fraction: float,
                 augment: FinderAugmentParams | None = None, seed: int = 0, limit: int = 0,
                 contrast_percentile: float = 0.0):
        self.masked, self.clean, self.size = masked, clean, size
        self.contrast_percentile = contrast_percentile
        self.masked_count = min(len(masked), limit) if limit else len(masked)
        count = int(round(clean_fraction * self.masked_count))
        self.clean_rows = np.linspace(0, len(clean) - 1, count).round().astype(int) if count and len(clean) else []
        self.augment = augment
        self.transform = build_finder_augmentation(augment) if augment is not None else None
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.transform is not None:
            self.transform.set_random_seed(self.seed + epoch)

    def __len__(self) -> int:
        return self.masked_count + len(self.clean_rows)

    def labels(self, i: int) -> np.ndarray:
        """The ``(s, s)`` label map of item ``i``'s clean photo at the input side (nearest neighbour); for a
        masked item, of the cache photo its mask was drawn on."""
        if i < self.masked_count:
            row = int(self.masked.source_index[i])
        else:
            row = int(self.clean_rows[i - self.masked_count])
        labels = np.asarray(self.clean.labels[row])
        if labels.shape[0] == self.size:
            return labels
        return cv2.resize(labels, (self.size, self.size), interpolation=cv2.INTER_NEAREST)

    def photo(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i`` at the input side, before augmentation: ``(s, s, 3)`` uint8 and ``(s, s)`` bool."""
        if i < self.masked_count:
            image, region = np.asarray(self.masked.masked[i]), np.asarray(self.masked.masks[i])
        else:
            image = np.asarray(self.clean.images[self.clean_rows[i - self.masked_count]])
            region = np.zeros(image.shape[:2], np.uint8)
        return resize_image(image, self.size), shrink_region(region, self.size)

    def __getitem__(self, i: int):
        image, region = self.photo(i)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            skin = (self.labels(i) == FACE) & ~region if self.augment.skin_tone and region.any() else None
            image = restyle_region(image, region, rng, self.augment.recolour, self.augment.pattern,
                                   self.augment.skin_tone, skin)
            if i >= self.masked_count and self.augment.confounders and rng.random() < self.augment.confounders:
                image, _ = paint_confounders(image, self.labels(i), rng)  # the target stays empty
            if rng.random() < self.augment.lighting / 2:
                image = brightness_ramp(image, rng)
            out = self.transform(image=image, mask=region.astype(np.uint8))
            image, region = out["image"], out["mask"] > 0
            if rng.random() < self.augment.close_up:
                image, region = cut_at_photo_edge(image, region, rng)
        image = stretch_contrast(image, self.contrast_percentile)
        return torch.from_numpy(normalise(image)), torch.from_numpy(region.astype(np.float32))[None]


# ------------------------------------------------------------------------------------------------ training

def finder_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus a soft Dice over the whole batch (clean photos have empty targets, so Dice is
    taken over the batch, not per image)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    probs = torch.sigmoid(logits)
    dice = 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)
    return bce + dice


@dataclass
class FinderRun:
    model: MaskFinderNet
    history: list[dict]
    best: dict
    seconds_per_epoch: float


class TorchFinder:
    """A :class:`MaskFinderNet` in memory behind the interface of :class:`MaskFinder` (``settings``,
    ``probabilities``), so training's validation scores exactly what the exported model will."""

    def __init__(self, model: MaskFinderNet, settings: FinderSettings):
        self.model, self.settings = model, settings

    logits = MaskFinder.logits
    probabilities = MaskFinder.probabilities
    session = None


def fit_mask_finder(cfg: MaskFinderParams | dict[str, Any], masks_dir: Path, cache_dir: Path, live=None) -> FinderRun:
    """Train on the train split; keep the weights of the epoch with the best val score (IoU on masked photos
    minus the rate of clean photos where a mask is found; with ``augment.confounders``, minus the mean of that
    rate on the clean photos as they are and with confounders painted, :func:`confounded_photos`). The stage
    knows no framing, so its val found rates count the whole crop as the face; the benchmark counts the
    framing's face; so the stage counts as the face the mean pixels of the face's classes in the val labels
    (:func:`label_face_area`: skin with the neck, so a little more than the framing's hull)."""
    cfg = cfg if isinstance(cfg, MaskFinderParams) else MaskFinderParams.from_params(cfg)
    seed_everything(cfg.seed, cfg.threads)
    train = FinderSamples(MaskedPhotos(masks_dir, "train"), CachedSplit(cache_dir, "train"), cfg.input_size,
                          cfg.clean_fraction, cfg.augment, cfg.seed, cfg.train_limit, cfg.contrast_percentile)
    val_masked, val_clean = MaskedPhotos(masks_dir, "val"), CachedSplit(cache_dir, "val")
    val_confounded = confounded_photos(val_clean, cfg.seed) if cfg.augment.confounders else None
    val_face = label_face_area(val_clean)
    if not len(train.masked):
        raise ValueError(f"{masks_dir}: no masked training photos: the mask finder has nothing to learn from")
    model = MaskFinderNet(cfg.widths)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(math.ceil(len(train) / cfg.batch_size) * cfg.epochs, 1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=steps, pct_start=0.15)
    history, best, best_state, elapsed = [], None, None, 0.0
    for epoch in range(cfg.epochs):
        seed_everything(cfg.seed + epoch)
        train.set_epoch(epoch)
        model.train()
        start, total, n = time.perf_counter(), 0.0, 0
        loader = make_loader(train, cfg.batch_size, shuffle=True, seed=cfg.seed + epoch)
        for images, targets in tqdm(loader, desc=f"mask finder epoch {epoch + 1}/{cfg.epochs}", leave=False):
            optimizer.zero_grad(set_to_none=True)
            loss = finder_loss(model(images), targets)
            loss.backward()
            optimizer.step()
            schedule.step()
            total, n = total + float(loss.detach()) * len(images), n + len(images)
        elapsed += time.perf_counter() - start
        model.eval()
        scores = score_mask_finder(TorchFinder(model, cfg.settings()), val_masked, val_clean, val_face,
                                   confounded=val_confounded)
        row = {"epoch": epoch + 1, "train_loss": total / max(n, 1), "val_iou": scores["iou"],
               "val_found_rate": scores["masked_found_rate"],
               "val_clean_found_rate": scores["clean_found_rate"], "lr": float(schedule.get_last_lr()[0])}
        row["val_score"] = row["val_iou"] - row["val_clean_found_rate"]
        if val_confounded is not None:
            row["val_confounded_found_rate"] = scores["confounded_found_rate"]
            row["val_score"] = row["val_iou"] - (row["val_clean_found_rate"] + row["val_confounded_found_rate"]) / 2
        history.append(row)
        log.info("mask finder epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in row.items()})
        if live is not None:
            for key, value in row.items():
                if key != "epoch":
                    live.log_metric(key, value)
            live.next_step()
        if best is None or row["val_score"] > best["val_score"]:
            best, best_state = row, snapshot(model)
    model.load_state_dict(best_state)
    return FinderRun(model.eval(), history, best, elapsed / cfg.epochs)


def export_finder_onnx(model: MaskFinderNet, path: str | Path, settings: FinderSettings, opset: int = 17) -> None:
    """ONNX with input ``image`` (N, 3, s, s) float32 (normalised) and output ``logits`` (N, 1, s, s); N is
    dynamic, s is ``settings.input_size``; the settings go into the model's metadata."""
    import onnx

    model = model.eval().cpu()
    dummy = torch.zeros(1, 3, settings.input_size, settings.input_size)
    with atomic_path(path) as tmp:
        torch.onnx.export(model, dummy, str(tmp), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                          dynamo=False)
        proto = onnx.load(str(tmp))
        for key, value in settings.metadata().items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp))


def checkpoint_payload(run: FinderRun, cfg: MaskFinderParams) -> dict:
    """What ``models/mask_finder.pt`` holds: weights, widths, settings, config and history (plain data)."""
    return {"state_dict": run.model.state_dict(), "widths": list(cfg.widths), "settings": cfg.settings().__dict__,
            "config": cfg.as_dict(), "history": run.history, "best": run.best}


# ------------------------------------------------------------------------------------------------- scoring

FACE_CLASSES = (LIPS, EYES, NOSE, EYEBROWS, TEETH, FACE, BEARD)


def label_face_area(clean: CachedSplit) -> float | None:
    """Mean pixels per photo of the face's classes (skin, neck included, and the parts on it) in ``clean``'s
    labels: "the face" of ``min_region`` where no framing is known; None (the whole crop) when there are none."""
    if not len(clean):
        return None
    pixels = sum(int(np.isin(np.asarray(clean.labels[start:start + 64]), FACE_CLASSES).sum())
                 for start in range(0, len(clean), 64))
    return pixels / len(clean) or None


def confounded_photos(clean: CachedSplit, seed: int = 0, kinds: tuple[str, ...] | None = None) -> np.ndarray:
    """The clean photos of ``clean`` with confounders painted (row ``r`` draws from ``(seed, r)``; ``kinds``:
    see :func:`paint_confounders`), ``(N, S, S, 3)`` uint8. Faces whose labels place nothing are dropped."""
    painted = []
    for row in range(len(clean)):
        image, done = paint_confounders(np.asarray(clean.images[row]), np.asarray(clean.labels[row]),
                                        np.random.default_rng([seed, row]), kinds)
        if done:
            painted.append(image)
    return np.stack(painted) if painted else np.zeros((0, *clean.images.shape[1:]), np.uint8)


def score_mask_finder(finder, masked: MaskedPhotos, clean: CachedSplit, face_area: float | None = None,
                      batch_size: int = 32, confounded: np.ndarray | None = None) -> dict:
    """How well ``finder`` (a :class:`MaskFinder` or :class:`TorchFinder`) finds the masks stage's regions.

    On the masked photos: ``iou`` (undilated region against the exact region, pixels summed over the split),
    ``mean_iou`` (per photo), ``masked_found_rate`` (photos whose region reaches ``min_region`` of the face),
    ``dilated_recall`` (share of the true mask pixels inside the dilated region: what an inpainter is given)
    and ``dilated_excess`` (pixels of the dilated region outside the true mask, per true mask pixel). On the
    clean photos of the same split (all rows): ``clean_found_rate`` (a mask found where there is none) and
    ``clean_mean_fraction``. ``confounded`` (optional, :func:`confounded_photos`): clean photos with
    confounders, scored as ``confounded_found_rate``. ``face_area``: see :func:`regions_from_probabilities`.
    """
    settings = finder.settings
    inter = union = truth_total = covered = excess = 0
    ious, found = [], []
    for start in range(0, len(masked), batch_size):
        probs = finder.probabilities(np.asarray(masked.masked[start:start + batch_size]))
        truths = np.asarray(masked.masks[start:start + batch_size]).astype(bool)
        for prob, truth, result in zip(probs, truths, regions_from_probabilities(probs, settings, face_area)):
            raw = prob >= settings.threshold
            i, u = int((raw & truth).sum()), int((raw | truth).sum())
            inter, union = inter + i, union + u
            ious.append(i / u if u else 1.0)
            found.append(result.found)
            truth_total += int(truth.sum())
            covered += int((result.region & truth).sum())
            excess += int((result.region & ~truth).sum())
    clean_found, clean_fractions = [], []
    for start in range(0, len(clean), batch_size):
        probs = finder.probabilities(np.asarray(clean.images[start:start + batch_size]))
        for result in regions_from_probabilities(probs, settings, face_area):
            clean_found.append(result.found)
            clean_fractions.append(result.fraction)
    confounded_found = []
    if confounded is not None:
        for start in range(0, len(confounded), batch_size):
            probs = finder.probabilities(np.asarray(confounded[start:start + batch_size]))
            confounded_found += [r.found for r in regions_from_probabilities(probs, settings, face_area)]
    extra = {} if confounded is None else {
        "confounded_photos": len(confounded),
        "confounded_found_rate": float(np.mean(confounded_found)) if confounded_found else 0.0}
    return {
        **extra,
        "masked_photos": len(masked), "clean_photos": len(clean),
        "iou": inter / union if union else 0.0,
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
        "masked_found_rate": float(np.mean(found)) if found else 0.0,
        "dilated_recall": covered / truth_total if truth_total else 0.0,
        "dilated_excess": excess / truth_total if truth_total else 0.0,
        "clean_found_rate": float(np.mean(clean_found)) if clean_found else 0.0,
        "clean_mean_fraction": float(np.mean(clean_fractions)) if clean_fractions else 0.0,
    }


def finder_latency_ms(finder: MaskFinder, crop: np.ndarray, runs: int = 20) -> float:
    """Median milliseconds of :meth:`MaskFinder.probabilities` on one aligned crop (resizing included)."""
    finder.probabilities(crop[None])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        finder.probabilities(crop[None])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def score_finder_export(onnx_path: Path, masks_dir: Path, cache_dir: Path, threads: int,
                        face_area: float | None = None, runs: int = 20) -> dict:
    """The ``metrics/mask_finder.json`` block: :func:`score_mask_finder` of the ONNX export on the test split,
    its settings, the number of weights in the export and its latency."""
    finder = MaskFinder(onnx_path, threads)
    test_masked, test_clean = MaskedPhotos(masks_dir, "test"), CachedSplit(cache_dir, "test")
    metrics = score_mask_finder(finder, test_masked, test_clean, face_area)
    import onnx

    initializers = onnx.load(str(onnx_path)).graph.initializer
    metrics.update({
        **{f"settings_{k}": v for k, v in finder.settings.__dict__.items()},
        "face_area_pixels": face_area,
        "onnx_weights": int(sum(int(np.prod(t.dims)) for t in initializers)),
        "onnx_latency_ms": finder_latency_ms(finder, np.asarray(test_clean.images[0]), runs) if len(test_clean) else None,
        "latency_threads": threads,
    })
    return metrics
