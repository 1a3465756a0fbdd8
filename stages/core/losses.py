"""Segmentation losses, chosen by the top-level ``loss`` param (e.g. ``ce``, ``focal``, ``ce+dice``).

Every loss maps ``logits`` (B, C, H, W) and integer ``target`` (B, H, W) to a scalar.
"""
from __future__ import annotations

from typing import Any, Callable

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(weights: torch.Tensor | None, options: dict[str, Any]) -> LossFn:
    """``-sum_i w_{y_i} log softmax(z_i)_{y_i} / sum_i w_{y_i}`` (plain mean when no weights)."""
    def loss(logits, target):
        return F.cross_entropy(logits, target, weight=weights)

    return loss


def focal(weights: torch.Tensor | None, options: dict[str, Any]) -> LossFn:
    """Multi-class focal loss (Lin et al. 2017): ``mean_i -a (1 - p_{y_i})^g log p_{y_i}``."""
    return smp.losses.FocalLoss("multiclass", alpha=options.get("focal_alpha"), gamma=options.get("focal_gamma", 2.0))


LOSSES: dict[str, Callable[[torch.Tensor | None, dict[str, Any]], LossFn]] = {"ce": cross_entropy, "focal": focal}


def build_loss(spec: str, weights: torch.Tensor | None = None, options: dict[str, Any] | None = None) -> LossFn:
    """``spec`` is one loss name or a sum such as ``ce+dice``; ``options`` holds their hyper-parameters."""
    options = options or {}
    names = [n.strip().lower() for n in str(spec).split("+")]
    unknown = [n for n in names if n not in LOSSES]
    if unknown:
        raise KeyError(f"unknown loss {unknown[0]!r}; known: {', '.join(sorted(LOSSES))} (sums like 'ce+dice' work)")
    parts = [LOSSES[n](weights, options) for n in names]

    def total(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(part(logits, target) for part in parts)

    return total
