"""Training and running the parse-guided mask inpainter on the masks stage's arrays.

A training sample is a clean cached photo with a mask on it. The masks stage drew one mask per face
(``data/masks/{split}_masked.npy[i]``, its exact region ``{split}_masks.npy[i]``, the clean photo and its 11-class
labels at ``{split}_source_index.npy[i]``); trained on those alone, the generator learns each (face, mask) pair by
heart. So on ``inpainter.fresh_masks`` of the training photos it draws a new mask every epoch with the masks stage's
own code (:func:`stages.core.masks.photo.mask_photo`, on the face's landmarks ``{split}_landmarks.npy[i]``), seeded
by ``(seed, epoch, index)``: a run is repeatable and a resumed run exact. On ``inpainter.free_form`` of them it adds
LaMa-style strokes and boxes over the lower face (:mod:`stages.core.masks.free_form`). Val and test keep the masks
stage's masks, so scores stay comparable between runs.

At inference the generator is guided by the parser's (mirror-averaged) labels on the masked photo. In training it
gets the same guide on ``inpainter.parser_guide`` of the photos, computed on the fly by the frozen
``models/parser.pt`` (:class:`~stages.core.inpainting.parser_critic.FrozenParser`), and the true labels, the parts
under the mask included, on the rest: a generator trained on true labels alone trusts the guide more than the parser
deserves under a mask.

Losses (weights in ``inpainter.loss``): hole-weighted L1, 1 − (MS-)SSIM from pytorch-msssim, a hinge adversarial
loss from a spectral-norm PatchGAN with a lazy R1 penalty on real photos, discriminator feature matching, and two
terms from the frozen parser (no ImageNet network can be downloaded here): the distance between its encoder features
of the restored and the clean photo, and its cross-entropy on the restored photo against the true labels in the hole.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
import torch
from pydantic import Field
from pytorch_msssim import ms_ssim, ssim
from torch.nn import functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from stages.core.common.distributed import (
    DistributedContext,
    average_gradients,
    copy_from_main,
    distributed_loader,
    from_main,
    per_rank_seed,
    single_process,
    sum_over_ranks,
    unwrap,
    wrap_model,
)
from stages.core.common.io import atomic_path
from stages.core.common.params import ParamsSection
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
from stages.core.inpainting.parser_critic import FrozenParser, hole_parse_loss, parser_feature_distance
from stages.core.masks.config import MaskParams
from stages.core.masks.fitting import FitError
from stages.core.masks.free_form import free_form_hole
from stages.core.masks.photo import mask_photo
from stages.core.models.inpainter import ParseGuidedInpainter, PatchDiscriminator
from stages.core.parsing.metrics import masked_psnr

log = logging.getLogger(__name__)


class InpainterLossWeights(ParamsSection):
    """``inpainter.loss``: each term's weight (0 = off). ``hole_weight``: how many times more a pixel inside the mask
    counts in the L1 term. ``ssim_kind``: ms_ssim needs photos of at least 161 pixels; ssim works at any size.
    ``r1_gamma`` / ``r1_every``: the R1 gradient penalty on real photos, applied every N discriminator steps.
    ``parser_perceptual`` / ``parse``: the frozen parser's feature distance between the restored and the clean photo,
    and its cross-entropy on the restored photo in the hole (:mod:`~stages.core.inpainting.parser_critic`)."""

    SECTION = "inpainter.loss"
    l1: float = Field(1.0, ge=0)
    hole_weight: float = Field(6.0, ge=1)
    ssim: float = Field(0.5, ge=0)
    ssim_kind: Literal["ms_ssim", "ssim"] = "ssim"
    adversarial: float = Field(0.02, ge=0)
    feature_matching: float = Field(0.5, ge=0)
    r1_gamma: float = Field(0.001, ge=0)
    r1_every: int = Field(4, ge=1)
    parser_perceptual: float = Field(0.0, ge=0)
    parse: float = Field(0.0, ge=0)

    @property
    def uses_parser(self) -> bool:
        return bool(self.parser_perceptual or self.parse)


class InpainterParams(ParamsSection):
    """The ``inpainter`` section of params.yaml. ``widths``: generator channels at 1/2..1/16 resolution;
    ``blocks``: FFC residual blocks; ``guided``: feed the 11-class label map; ``disc_widths``: PatchGAN channels.
    ``lr_schedule``: cosine takes both learning rates to zero over the ``epochs`` (per batch); constant keeps them.
    ``loader_workers``: DataLoader processes on CUDA, as the parser's (CPU training loads in the main process).
    ``hflip``, ``affine`` and ``photometric``: augmentation probabilities (see :func:`build_pair_augmentation`).
    ``fresh_masks``: the share of training photos that get a new mask each epoch; ``free_form``: the share whose hole
    also gets free-form strokes and boxes (see the module docstring).
    ``parser_guide``: the share of training photos guided by the parser's labels on the masked photo instead of the
    true labels; when above 0, val photos are scored under the parser's labels too."""

    SECTION = "inpainter"
    widths: tuple[int, int, int, int] = (24, 48, 96, 128)
    blocks: int = Field(5, ge=0)
    global_ratio: float = Field(0.75, gt=0, lt=1)
    guided: bool = True
    disc_widths: tuple[int, ...] = (16, 32, 64, 64)
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(8, ge=1)
    devices: int = Field(1, ge=1)
    loader_workers: int = Field(0, ge=0)
    lr: float = Field(0.001, gt=0)
    disc_lr: float = Field(0.0004, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    loss: InpainterLossWeights = InpainterLossWeights()
    hflip: float = Field(0.5, ge=0, le=1)
    affine: float = Field(0.0, ge=0, le=1)
    photometric: float = Field(0.0, ge=0, le=1)
    fresh_masks: float = Field(1.0, ge=0, le=1)
    free_form: float = Field(0.0, ge=0, le=1)
    parser_guide: float = Field(1.0, ge=0, le=1)
    train_limit: int = Field(0, ge=0)
    sample_rows: int = Field(4, ge=1)
    max_minutes: float = Field(0, ge=0)
    resume: str = ""
    threads: int = Field(2, ge=1)
    seed: int = 0


def build_inpainter(cfg: InpainterParams) -> ParseGuidedInpainter:
    return ParseGuidedInpainter(cfg.widths, cfg.blocks, cfg.global_ratio, cfg.guided)


class MaskedSplit(MaskedPhotos):
    """One split of the masks stage (:class:`MaskedPhotos`: ``masked``, ``masks``, ``source_index``, ``landmarks``)
    joined to the cache's clean photos and labels (``clean``, ``labels``; all memory-mapped)."""

    def __init__(self, masks_dir: str | Path, cache_dir: str | Path, split: str):
        super().__init__(masks_dir, split)
        cached = CachedSplit(cache_dir, split)
        self.clean, self.labels = cached.images, cached.labels

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(masked (S, S, 3) uint8, mask (S, S) uint8 {0, 1}, clean (S, S, 3) uint8)."""
        return np.asarray(self.masked[i]), np.asarray(self.masks[i]), np.asarray(self.clean[self.source_index[i]])

    def true_labels(self, i: int) -> np.ndarray:
        """(S, S) uint8 class ids of the clean photo, the parts under the mask included."""
        return np.asarray(self.labels[self.source_index[i]])


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC (or HWC) -> float NCHW (CHW) in [-1, 1]."""
    x = torch.from_numpy(np.array(images, copy=True)).float().div(127.5).sub(1)
    return x.movedim(-1, -3)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> uint8 NHWC."""
    return tensor.movedim(-3, -1).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def build_pair_augmentation(affine: float, photometric: float) -> A.Compose | None:
    """One draw for the masked and the clean photo (``image`` and ``clean``), nearest-neighbour for the region and
    the labels (``masks``); None when both probabilities are 0.

    ``affine``: scale ±10 %, shift ±5 % of the side, rotation ±10°, borders mirrored. ``photometric``: brightness
    and contrast ±20 %, then hue ±4 and saturation ±20. Both are per-pixel maps of the value (not, as
    ColorJitter's contrast is, of the photo's mean), so a pixel the mask did not cover stays equal in both photos.
    """
    steps: list[A.BasicTransform] = []
    if affine:
        steps.append(A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-10, 10),
                              interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                              border_mode=cv2.BORDER_REFLECT_101, p=affine))
    if photometric:
        steps += [A.RandomBrightnessContrast(0.2, 0.2, p=photometric), A.HueSaturationValue(4, 20, 0, p=photometric)]
    return A.Compose(steps, additional_targets={"clean": "image"}) if steps else None


class InpaintingSamples(Dataset):
    """Items ``(masked (3, S, S), mask (1, S, S), labels (S, S) int64, clean (3, S, S), guided ()) bool``, images in
    [-1, 1]; ``labels`` are the true ones, and ``guided`` says that the trainer should put the parser's labels on
    ``masked`` in their place (drawn with probability ``parser_guide``).

    ``fresh_masks``: the probability that item ``i`` gets a new mask drawn on its clean photo by ``mask_params`` (the
    masks stage's params) instead of the stage's; ``free_form``: that its hole gets free-form strokes and boxes too.
    Both draw from ``(seed, epoch, i)``: call :meth:`set_epoch` before each epoch. A draw that fails the masks stage's
    placement check keeps the stage's mask (:attr:`kept_stage_masks` counts them). ``augment`` (from
    :func:`build_pair_augmentation`) moves the photos, region and labels together; after it the region also takes in
    every pixel where the two photos differ, which an interpolated mask edge does.
    """

    def __init__(self, split: MaskedSplit, hflip: float = 0.0, augment: A.Compose | None = None,
                 parser_guide: float = 0.0, fresh_masks: float = 0.0, free_form: float = 0.0,
                 mask_params: MaskParams | None = None, seed: int = 0):
        self.split, self.hflip, self.augment, self.parser_guide = split, hflip, augment, parser_guide
        self.fresh_masks, self.free_form = fresh_masks, free_form
        self.mask_params = mask_params or MaskParams()
        self.seed, self.epoch, self.kept_stage_masks = seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.kept_stage_masks = epoch, 0

    def __len__(self) -> int:
        return len(self.split)

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item ``i`` of this epoch before augmentation: (masked, mask, clean), as :meth:`MaskedSplit.pair`."""
        masked, mask, clean = self.split.pair(i)
        if not (self.fresh_masks or self.free_form):
            return masked, mask, clean
        rng = np.random.default_rng([self.seed, self.epoch, i])
        landmarks = np.asarray(self.split.landmarks[i])
        known = bool(np.isfinite(landmarks).all())  # the masks stage writes finite ones; hand-made folders may not
        if rng.random() < self.fresh_masks:
            try:
                drawn = mask_photo(clean, landmarks, rng, self.mask_params) if known else None
            except FitError:
                drawn = None
            if drawn is None:
                self.kept_stage_masks += 1
            else:
                masked, mask = drawn.masked, drawn.binary
        if known and rng.random() < self.free_form:
            mask = mask | free_form_hole(landmarks, mask.shape, rng)
        return masked, mask, clean

    def __getitem__(self, i: int):
        masked, mask, clean = self.sample(i)
        labels = self.split.true_labels(i)
        guided = bool(self.parser_guide and (self.parser_guide == 1 or torch.rand(()) < self.parser_guide))
        if self.hflip and torch.rand(()) < self.hflip:  # the 11 classes have no left/right, so labels flip as they are
            masked, mask, clean, labels = masked[:, ::-1], mask[:, ::-1], clean[:, ::-1], labels[:, ::-1]
        if self.augment is not None:
            out = self.augment(image=np.ascontiguousarray(masked), clean=np.ascontiguousarray(clean),
                               masks=[np.ascontiguousarray(mask), np.ascontiguousarray(labels)])
            masked, clean, (mask, labels) = out["image"], out["clean"], out["masks"]
            mask = np.maximum(mask, (masked != clean).any(-1))
        return (to_unit_range(masked), torch.from_numpy(np.array(mask, dtype=np.float32))[None],
                torch.from_numpy(np.array(labels, dtype=np.int64)), to_unit_range(clean), torch.tensor(guided))


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole_weight: float) -> torch.Tensor:
    """``mean(|pred - target| * (1 + (hole_weight - 1) * mask))``: the hole counts ``hole_weight`` times more."""
    return ((pred - target).abs() * (1 + (hole_weight - 1) * mask)).mean()


def structural_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """1 − SSIM (or MS-SSIM) of images in [-1, 1], computed on [0, 1]."""
    a, b = (pred + 1) / 2, (target + 1) / 2
    if kind == "ms_ssim":
        if min(pred.shape[-2:]) <= 160:
            raise ValueError(f"inpainter.loss.ssim_kind=ms_ssim needs photos above 160 px, got {tuple(pred.shape[-2:])}; "
                             "use ssim_kind: ssim")
        return 1 - ms_ssim(a, b, data_range=1.0)
    return 1 - ssim(a, b, data_range=1.0)


def feature_matching(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between the discriminator's intermediate features of the restored and the clean photo."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake[:-1], real[:-1])) / max(len(fake) - 1, 1)


def r1_penalty(discriminator: PatchDiscriminator, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the squared gradient norm of D's logits at real photos, mean over the batch."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real, mask)[-1]
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def discriminator_loss(discriminator: PatchDiscriminator, clean: torch.Tensor, fake: torch.Tensor,
                       mask: torch.Tensor, weights: InpainterLossWeights, step: int) -> torch.Tensor:
    """Hinge loss on ``(B, 3, H, W)`` clean and restored photos, plus the lazy R1 term on every ``r1_every``-th step.

    The R1 term is on the summed patch logits, as in LaMa, whose weight for it is 0.001. With spectral norm on every
    layer, a weight of 1 holds the discriminator at zero logits (hinge loss 2): it then teaches the generator nothing.
    """
    loss = F.relu(1 - discriminator(clean, mask)[-1]).mean() + F.relu(1 + discriminator(fake, mask)[-1]).mean()
    if weights.r1_gamma and step % weights.r1_every == 0:
        loss = loss + weights.r1_gamma / 2 * weights.r1_every * r1_penalty(discriminator, clean, mask)
    return loss


@dataclass
class InpainterRun:
    model: ParseGuidedInpainter
    history: list[dict]
    seconds_per_epoch: float
    sample_grids: list[np.ndarray]
    input_size: int


@torch.no_grad()
def inpaint(model: ParseGuidedInpainter, masked: np.ndarray, masks: np.ndarray, labels: np.ndarray,
            batch_size: int = 16) -> np.ndarray:
    """``masked`` (N, S, S, 3) uint8, ``masks`` (N, S, S) {0, 1}, ``labels`` (N, S, S) class ids
    -> restored (N, S, S, 3) uint8, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    out = np.empty_like(np.asarray(masked))
    for s in range(0, len(masked), batch_size):
        m = torch.from_numpy(np.array(masks[s:s + batch_size], dtype=np.float32))[:, None]
        lab = torch.from_numpy(np.array(labels[s:s + batch_size], dtype=np.int64))
        restored = model(to_unit_range(masked[s:s + batch_size]).to(device), m.to(device), lab.to(device))
        out[s:s + batch_size] = to_uint8(restored.cpu())
    return out


def classical_inpaint(masked: np.ndarray, mask: np.ndarray, method: str = "telea", radius: int = 5) -> np.ndarray:
    """OpenCV's Telea or Navier–Stokes inpainting of one ``(S, S, 3)`` uint8 photo over ``mask`` (S, S)."""
    flags = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS}
    return cv2.inpaint(np.ascontiguousarray(masked), (np.asarray(mask) > 0).astype(np.uint8), radius, flags[method])


def telea_baseline(masked: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    return classical_inpaint(masked, mask, "telea", radius)


# Keys of the inpainter section that may differ between a run and the one it resumes.
RESUME_MAY_CHANGE = ("resume", "threads", "max_minutes")
# Keys added to the section after its first release, with what the code did before each existed: a checkpoint
# written then lacks them and resumes only where these equal the current params.
INPAINTER_VALUE_BEFORE_KEY_EXISTED = {"devices": 1, "loader_workers": 0, "lr_schedule": "constant", "affine": 0.0,
                                      "photometric": 0.0, "parser_guide": 0.0, "fresh_masks": 0.0, "free_form": 0.0}
LOSS_VALUE_BEFORE_KEY_EXISTED = {"parser_perceptual": 0.0, "parse": 0.0}


def _check_resumable(state: dict, cfg: InpainterParams, path: str | Path) -> None:
    saved = dict(state["config"])
    saved["loss"] = {**LOSS_VALUE_BEFORE_KEY_EXISTED, **dict(saved.get("loss", {}))}
    differ = resume_differences(saved, cfg.as_dict(), "inpainter", RESUME_MAY_CHANGE,
                                INPAINTER_VALUE_BEFORE_KEY_EXISTED)
    if differ:
        raise ValueError(f"{path}: cannot resume: the checkpoint was written with other params ({'; '.join(differ)})")


def _val_sample_grid(model: ParseGuidedInpainter, val: MaskedSplit, labels: np.ndarray, rows: int) -> np.ndarray:
    """Rows of (masked, restored, clean) val photos side by side, as one (rows*S, 3*S, 3) uint8 image."""
    idx = np.linspace(0, len(val) - 1, min(rows, len(val))).astype(int)
    restored = inpaint(model, val.masked[idx], val.masks[idx], labels[idx])
    lines = [np.concatenate([val.pair(i)[0], restored[k], val.pair(i)[2]], axis=1) for k, i in enumerate(idx)]
    return np.concatenate(lines, axis=0)


def split_guides(parser: FrozenParser, masked: np.ndarray, device: torch.device, batch: int = 16) -> np.ndarray:
    """``(N, S, S)`` uint8: the frozen parser's mirror-averaged labels on ``masked`` ``(N, S, S, 3)`` uint8."""
    out = np.zeros(masked.shape[:3], np.uint8)
    for start in range(0, len(masked), batch):
        images = to_unit_range(np.asarray(masked[start:start + batch])).to(device)
        out[start:start + batch] = parser.mirror_averaged_labels(images).cpu().numpy()
    return out


@dataclass
class ScoredPhotos:
    """Fixed photos scored after every epoch: ``masked``, ``masks``, ``clean`` and the guiding ``labels``."""

    masked: np.ndarray
    masks: np.ndarray
    clean: np.ndarray
    labels: np.ndarray

    @classmethod
    def of(cls, split: MaskedSplit, rows: np.ndarray, parser: FrozenParser | None, device) -> ScoredPhotos:
        """Rows ``rows`` of ``split`` with the masks stage's masks, guided as the run is (``parser``: its labels)."""
        masked, masks = np.asarray(split.masked[rows]), np.asarray(split.masks[rows])
        labels = split_guides(parser, masked, device) if parser is not None else \
            np.asarray(split.labels)[split.source_index[rows]]
        return cls(masked, masks, np.asarray(split.clean)[split.source_index[rows]], labels)

    def hole_scores(self, model: ParseGuidedInpainter) -> tuple[float, float]:
        """(mean L1 inside the holes on a 0..1 scale, mean per-photo PSNR inside the hole in dB)."""
        restored = inpaint(model, self.masked, self.masks, self.labels)
        holes = self.masks.astype(bool)
        l1 = float(np.abs(restored[holes].astype(np.float32) - self.clean[holes].astype(np.float32)).mean() / 255.0)
        psnr = [masked_psnr(restored[i], self.clean[i], holes[i]) for i in range(len(holes)) if holes[i].any()]
        return l1, float(np.mean(psnr)) if psnr else float("nan")


def fit_inpainter(cfg: InpainterParams | dict[str, Any], masks_dir: Path, cache_dir: Path, live=None,
                  checkpoint_path: str | Path | None = None, ctx: DistributedContext | None = None,
                  parser: FrozenParser | None = None, mask_params: MaskParams | None = None,
                  warm_start: dict | None = None) -> InpainterRun:
    """Train generator and discriminator on the train split; keep the generator of the best val hole L1.

    ``parser``: the frozen ``models/parser.pt``; needed when ``parser_guide`` > 0 (its labels guide the training
    photos, and the val photos that pick the best epoch) or when a parser loss term is on. ``mask_params``: the masks
    stage's params, for the masks drawn each epoch (``fresh_masks``).
    Every epoch logs the hole L1 and PSNR on the val split and the same on as many training photos with the masks
    stage's masks: their gap shows how much of the training set the generator has learnt by heart.
    ``warm_start``: ``{"generator": state_dict, "discriminator": state_dict}`` to start from instead of fresh
    weights (the optimizers and schedules still start fresh: a fine-tune, unlike ``resume``).

    ``checkpoint_path``: where to write the full training state after every epoch (``inpainter.resume`` reads it).
    Every epoch reseeds from ``seed + epoch``, so a resumed run ends with the same weights as an uninterrupted one.
    ``ctx``: this process's place among torchrun's (default: one process; see :mod:`stages.core.common.distributed`).
    The generator trains under DDP; the discriminator's gradients are averaged by hand (its R1 penalty is a double
    backward). Rank 0 alone validates, logs and writes checkpoints; only its returned generator is the best one.
    """
    cfg = cfg if isinstance(cfg, InpainterParams) else InpainterParams.from_params(cfg)
    ctx = ctx or single_process()
    live = live if ctx.is_main else None
    rank_seed = per_rank_seed(cfg.seed, ctx.rank)
    weights = cfg.loss
    seed_everything(rank_seed, cfg.threads)
    train = MaskedSplit(masks_dir, cache_dir, "train")
    val = MaskedSplit(masks_dir, cache_dir, "val")
    if (cfg.parser_guide or weights.uses_parser) and parser is None:
        raise ValueError(f"inpainter.parser_guide is {cfg.parser_guide}, parser_perceptual "
                         f"{weights.parser_perceptual} and parse {weights.parse}: these need the trained parser, and "
                         "none was given (the train_inpainter stage loads models/parser.pt)")
    parser = parser.to(ctx.device) if parser is not None and (cfg.parser_guide or weights.uses_parser) else None
    guide_parser = parser if cfg.parser_guide else None
    scored_val = ScoredPhotos.of(val, np.arange(len(val)), guide_parser, ctx.device)
    trained = min(cfg.train_limit, len(train)) if cfg.train_limit else len(train)  # score faces it trains on
    train_rows = np.linspace(0, trained - 1, min(len(val), trained)).round().astype(int)
    scored_train = ScoredPhotos.of(train, train_rows, guide_parser, ctx.device)
    generator_net = wrap_model(build_inpainter(cfg).to(ctx.device), ctx)
    generator, discriminator = unwrap(generator_net), PatchDiscriminator(cfg.disc_widths).to(ctx.device)
    if warm_start is not None:
        require_keys(warm_start, ("generator", "discriminator"), "warm_start")
        generator.load_state_dict(warm_start["generator"])
        discriminator.load_state_dict(warm_start["discriminator"])
    copy_from_main(discriminator, ctx)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
    augment = build_pair_augmentation(cfg.affine, cfg.photometric)
    samples = InpaintingSamples(train, cfg.hflip, augment, cfg.parser_guide, cfg.fresh_masks, cfg.free_form,
                                mask_params, rank_seed)
    dataset = samples
    if cfg.train_limit:
        dataset = torch.utils.data.Subset(dataset, range(min(cfg.train_limit, len(dataset))))
    loader = distributed_loader(dataset, cfg.batch_size, cfg.seed, ctx, workers=cfg.loader_workers)
    schedules = _lr_schedules((opt_g, opt_d), cfg, len(loader))
    history, grids, best, best_state, start_epoch, d_steps = [], [], None, None, 0, 0
    if cfg.resume:
        state = load_checkpoint(cfg.resume, map_location=ctx.device)
        require_keys(state, ("generator", "discriminator", "opt_g", "opt_d", "schedules", "epoch", "history", "best",
                             "best_state", "config", "d_steps"), cfg.resume)
        _check_resumable(state, cfg, cfg.resume)
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        for schedule, saved in zip(schedules, state["schedules"], strict=True):
            schedule.load_state_dict(saved)
        history, best, best_state = state["history"], state["best"], state["best_state"]
        start_epoch, d_steps = state["epoch"], state["d_steps"]
        for row in history:
            _log_row(live, row)
        log.info("inpainter resumed from %s after epoch %d", cfg.resume, start_epoch)
    elapsed = []
    for epoch in range(start_epoch, cfg.epochs):
        seed_everything(rank_seed + epoch)
        if augment is not None:
            augment.set_random_seed(rank_seed + epoch)
        loader.sampler.set_epoch(epoch)
        samples.set_epoch(epoch)
        generator_net.train()
        discriminator.train()
        start, sums, n = time.perf_counter(), {}, 0
        for batch in tqdm(loader, desc=f"inpainter epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not ctx.is_main):
            masked, mask, true_labels, clean, guided = (t.to(ctx.device, non_blocking=True) for t in batch)
            labels = true_labels
            if guide_parser is not None and guided.any():
                labels = torch.where(guided[:, None, None], guide_parser.mirror_averaged_labels(masked), true_labels)
            fake = generator_net(masked, mask, labels)
            adversarial = weights.adversarial > 0 or weights.feature_matching > 0
            terms = {}
            if adversarial:
                d_loss = discriminator_loss(discriminator, clean, fake.detach(), mask, weights, d_steps)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                average_gradients(discriminator, ctx)
                opt_d.step()
                d_steps += 1
                terms["disc"] = d_loss.detach()
            terms["l1"] = weighted_l1(fake, clean, mask, weights.hole_weight)
            g_loss = weights.l1 * terms["l1"]
            if weights.ssim:
                terms["ssim"] = structural_loss(fake, clean, weights.ssim_kind)
                g_loss = g_loss + weights.ssim * terms["ssim"]
            if adversarial:
                fake_features = discriminator(fake, mask)
                terms["adversarial"] = -fake_features[-1].mean()
                with torch.no_grad():
                    real_features = discriminator(clean, mask)
                terms["feature_matching"] = feature_matching(fake_features, real_features)
                g_loss = (g_loss + weights.adversarial * terms["adversarial"]
                          + weights.feature_matching * terms["feature_matching"])
            if weights.uses_parser:
                fake_levels, fake_logits = parser(fake)
                if weights.parser_perceptual:
                    with torch.no_grad():
                        clean_levels = parser(clean)[0]
                    terms["parser_perceptual"] = parser_feature_distance(fake_levels, clean_levels).mean()
                    g_loss = g_loss + weights.parser_perceptual * terms["parser_perceptual"]
                if weights.parse:
                    terms["parse"] = hole_parse_loss(fake_logits, true_labels, mask)
                    g_loss = g_loss + weights.parse * terms["parse"]
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            schedules[0].step()
            if adversarial:
                schedules[1].step()
            terms["train_loss"] = g_loss.detach()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value.item() * len(masked)
            n += len(masked)
        elapsed.append(time.perf_counter() - start)
        keys = list(sums)
        *totals, n = sum_over_ranks([sums[k] for k in keys] + [n], ctx)
        # rank 0's clock decides, so that every rank stops after the same epoch
        out_of_time = from_main(bool(cfg.max_minutes and sum(elapsed) >= cfg.max_minutes * 60), ctx)
        if not ctx.is_main:
            if out_of_time:
                break
            continue
        val_l1, val_psnr = scored_val.hole_scores(generator)
        train_psnr = scored_train.hole_scores(generator)[1]
        row = {"epoch": epoch + 1, **{k: v / max(n, 1) for k, v in zip(keys, totals, strict=True)},
               "val_hole_l1": val_l1, "val_hole_psnr": val_psnr, "train_hole_psnr": train_psnr,
               "train_minus_val_psnr": train_psnr - val_psnr, "lr": float(schedules[0].get_last_lr()[0])}
        if cfg.fresh_masks and ctx.device.type == "cpu":
            log.info("inpainter epoch %d: %d of %d drawn masks failed the placement check; the masks stage's kept",
                     epoch + 1, samples.kept_stage_masks, len(dataset))
        history.append(row)
        log.info("inpainter epoch %d: %s", epoch + 1, row)
        grids.append(_val_sample_grid(generator, val, scored_val.labels, cfg.sample_rows))
        _log_row(live, row, grids[-1])
        if best is None or row["val_hole_l1"] < best["val_hole_l1"]:
            best, best_state = row, snapshot(generator)
        if checkpoint_path:
            save_checkpoint(checkpoint_path, {"generator": snapshot(generator), "discriminator": snapshot(discriminator),
                                              "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                                              "schedules": [schedule.state_dict() for schedule in schedules],
                                              "epoch": epoch + 1, "history": history, "best": best,
                                              "best_state": best_state, "config": cfg.as_dict(), "d_steps": d_steps})
        if out_of_time:
            log.info("inpainter: stopping after epoch %d (max_minutes)", epoch + 1)
            break
    if ctx.is_main:
        generator.load_state_dict(best_state)
    generator = generator.cpu()
    return InpainterRun(generator.eval(), history, float(np.mean(elapsed or [0.0])), grids, int(train.masked.shape[1]))


def _lr_schedules(optimizers, cfg: InpainterParams, steps_per_epoch: int) -> list:
    """One per-batch schedule per optimizer: cosine annealing to zero over the run's ``epochs``, or constant."""
    total = max(steps_per_epoch * cfg.epochs, 1)
    if cfg.lr_schedule == "cosine":
        return [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total) for opt in optimizers]
    return [torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0) for opt in optimizers]


def _log_row(live, row: dict, grid: np.ndarray | None = None) -> None:
    if live is None:
        return
    for key, value in row.items():
        if key != "epoch":
            live.log_metric(key, value)
    if grid is not None:
        live.log_image(f"val_samples/epoch_{row['epoch']:03d}.png", grid)
    live.next_step()


def export_inpainter_onnx(model: ParseGuidedInpainter, path: str | Path, size: int) -> None:
    """ONNX with inputs ``masked`` (1, 3, S, S) float32 in [-1, 1], ``mask`` (1, 1, S, S) float32, ``labels``
    (1, S, S) int64 and output ``restored`` (1, 3, S, S). The dynamo exporter: the TorchScript one has no FFT."""
    model = model.eval().cpu()
    dummy = (torch.zeros(1, 3, size, size), torch.zeros(1, 1, size, size), torch.zeros(1, size, size, dtype=torch.int64))
    program = torch.onnx.export(model, dummy, None, dynamo=True, opset_version=18, verbose=False,
                                input_names=["masked", "mask", "labels"], output_names=["restored"])
    import onnx

    proto = program.model_proto
    # The dynamo exporter annotates every node with its Python stack trace, absolute file paths included, so
    # the same weights would give different bytes in every clone; the annotations are debugging aids only.
    for node in proto.graph.node:
        del node.metadata_props[:]
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


def load_inpainter(path: str | Path) -> ParseGuidedInpainter:
    """The inpainter saved by the ``train_inpainter`` stage, in eval mode (loaded with ``weights_only=True``)."""
    payload = load_checkpoint(path)
    require_keys(payload, ("state_dict", "config"), path)
    model = build_inpainter(InpainterParams.from_params(payload["config"], path))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
