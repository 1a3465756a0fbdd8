"""The trained face parser, frozen, as the inpainter's face-aware critic: no ImageNet network is reachable here, but
``models/parser.pt`` has learnt what lips, noses and chins look like.

- :func:`parser_feature_distance`: the L1 distance between the parser's encoder features of two photos, each level's
  features first scaled to unit length over the channels at every position (as LPIPS does, without its learnt
  weights), then averaged over the levels. It is the training loss ``inpainter.loss.parser_perceptual`` and the
  benchmark's face-aware perceptual score.
- :func:`hole_parse_loss`: the parser's cross-entropy on the restored photo against the true labels, inside the hole.
- :meth:`FrozenParser.mirror_averaged_labels`: the guide ``faceparse unmask`` gives the generator, computed on the
  fly for masks drawn during training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from stages.core.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from stages.core.models.registry import feature_module_names, load_parser


class FrozenParser(nn.Module):
    """A parser in eval mode whose weights take no gradient. ``forward(images)``: ``(B, 3, H, W)`` in [-1, 1] ->
    (encoder levels, a list of ``(B, C_l, H_l, W_l)`` below full resolution; logits ``(B, 11, H, W)``). Gradients
    flow to ``images``."""

    def __init__(self, parser: nn.Module):
        super().__init__()
        self.parser = parser.eval().requires_grad_(False)
        self.register_buffer("mean", torch.from_numpy(IMAGENET_MEAN / 127.5 - 1).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.from_numpy(IMAGENET_STD / 127.5).view(1, 3, 1, 1), persistent=False)
        self._captured: list | None = None  # a list only while forward runs: other callers of the parser keep nothing
        for name in feature_module_names(parser):
            parser.get_submodule(name).register_forward_hook(self._capture)

    def _capture(self, _module, _inputs, output) -> None:
        if self._captured is not None:
            self._captured.append(output)

    @classmethod
    def load(cls, path: str | Path) -> FrozenParser:
        return cls(load_parser(path)[0])

    def train(self, mode: bool = True) -> FrozenParser:
        return self  # batch statistics stay the parser's own, whatever mode the trainer sets

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        self._captured = []
        try:
            logits = self.parser((images - self.mean) / self.std)
            captured = self._captured
        finally:
            self._captured = None
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        levels = [t for out in captured for t in (out if isinstance(out, (tuple, list)) else (out,))
                  if isinstance(t, torch.Tensor) and t.shape[-1] < images.shape[-1]]
        return levels, logits

    @torch.no_grad()
    def mirror_averaged_labels(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] -> ``(B, H, W)`` int64: the argmax of the photo's and its mirror image's mean
        probabilities, as ``ParserModel.mirror_averaged_labels`` gives ``faceparse unmask``."""
        probabilities = self(images)[1].softmax(1) + self(images.flip(-1))[1].softmax(1).flip(-1)
        return probabilities.argmax(1)


def _unit(features: torch.Tensor) -> torch.Tensor:
    return features / (features.pow(2).sum(1, keepdim=True).sqrt() + 1e-6)


def parser_feature_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """``(B,)``: per photo, the mean over levels of the mean absolute difference of unit-scaled features."""
    if not a or len(a) != len(b):
        raise ValueError(f"expected the same non-zero number of feature levels, got {len(a)} and {len(b)}")
    return torch.stack([(_unit(x) - _unit(y)).abs().mean(dim=(1, 2, 3)) for x, y in zip(a, b)]).mean(0)


@torch.no_grad()
def photo_feature_distances(parser: FrozenParser, photos: dict[str, np.ndarray], references: np.ndarray,
                            batch: int = 16) -> dict[str, np.ndarray]:
    """``{name: (N,)}``: :func:`parser_feature_distance` between each of ``photos`` and ``references``, all
    ``(N, S, S, 3)`` uint8; the references' features are computed once per batch."""
    device = parser.mean.device
    out: dict[str, list[np.ndarray]] = {name: [] for name in photos}

    def features(images: np.ndarray) -> list[torch.Tensor]:
        x = torch.from_numpy(np.array(images, np.float32)).movedim(-1, 1).div(127.5).sub(1)
        return parser(x.to(device))[0]

    for start in range(0, len(references), batch):
        reference = features(references[start:start + batch])
        for name, images in photos.items():
            out[name].append(parser_feature_distance(features(images[start:start + batch]), reference).cpu().numpy())
    return {name: np.concatenate(parts) if parts else np.zeros(0, np.float32) for name, parts in out.items()}


def hole_parse_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` ``(B, 11, H, W)`` against ``labels`` ``(B, H, W)``, averaged over the pixels of
    ``mask`` ``(B, 1, H, W)`` (0 when the batch has no hole)."""
    per_pixel = F.cross_entropy(logits, labels, reduction="none")
    weight = mask[:, 0]
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)
