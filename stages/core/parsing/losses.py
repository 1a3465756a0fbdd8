"""Segmentation losses, chosen by the top-level ``loss`` param (``ce``, ``focal``, ``ce+dice``...).

Every loss maps ``logits`` z (B, C, H, W) and integer ``target`` y (B, H, W) to a scalar. Notation below:
``p = softmax(z)`` over classes, ``i`` runs over the N = B*H*W pixels, ``w_c`` are the class weights
(all 1 when ``weights`` is None), ``t_ic = [y_i == c]`` is the one-hot target.

Hyper-parameters come from ``options`` (the ``parser.loss_options`` params dict):
``focal_gamma`` (2.0), ``focal_alpha`` (1.0), ``tversky_alpha`` (0.3), ``tversky_beta`` (0.7),
``bias_alpha`` (0.3), ``bias_beta`` (0.3). A sum like ``ce+dice`` adds its terms with weight 1 each.

Class weights apply to every loss but lovasz (a region loss where each class already counts once).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossBuilder = Callable[[torch.Tensor | None, dict[str, Any]], LossFn]


def _class_weights_like(weights: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    if weights is None:
        return torch.ones(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return weights.to(device=logits.device, dtype=logits.dtype)


def _as_list(weights: torch.Tensor | None) -> list[float] | None:
    return None if weights is None else [float(w) for w in weights]


def cross_entropy(weights: torch.Tensor | None, options: dict[str, Any]) -> LossFn:
    """``L = sum_i w_{y_i} (-log p_{i,y_i}) / sum_i w_{y_i}`` (the plain mean when no weights)."""
    def loss(logits, target):
        w = None if weights is None else _class_weights_like(weights, logits)
        return F.cross_entropy(logits, target, weight=w)

    return loss


def weighted_bce(weights: torch.Tensor | None, options: dict[str, Any]) -> LossFn:
    """One sigmoid per class, as in the seed: ``L = 1/(N C) sum_i sum_c w_c BCE(sigmoid(z_ic), t_ic)``

    with ``BCE(q, t) = -t log q - (1 - t) log(1 - q)``.
    """
    def loss(logits, target):
        onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
        w = _class_weights_like(weights, logits).view(1, -1, 1, 1)
        return F.binary_cross_entropy_with_logits(logits, onehot, weight=w.expand_as(logits))

    return loss


def focal(weights: torch.Tensor | None, options: dict[str, Any]) -> LossFn:
    """Softmax focal loss (Lin et al. 2017): ``L = 1/N sum_i a w_{y_i} (1 - p_{i,y_i})^g (-log p_{i,y_i})``.

    ``g`` = ``focal_gamma``, ``a`` = ``focal_alpha``. Written here rather than taken from smp because
    smp's multiclass FocalLoss is a sum of one-vs-rest sigmoid focal losses, not this softmax form.
    """
    gamma, alpha = float(options.get("focal_gamma", 2.0)), float(options.get("focal_alpha") or 1.0)

    def loss(logits, target):
        log_p = F.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
        w = _class_weights_like(weights, logits)[target]
        return (alpha * w * (1 - log_p.exp()) ** gamma * -log_p).mean()

    return loss


def dice(weights: torch.Tensor | None, options: dict[str, Any]) -> LossFn:
    """Soft Dice over the batch (smp ``DiceLoss``, multiclass, smooth 0):

    ``D_c = 2 sum_i p_ic t_ic / max(sum_i p_ic + sum_i t_ic, 1e-7)``,
    ``L = sum_c w_c m_c (1 - D_c) / sum_c w_c`` with ``m_c = [class c present in y]``: absent classes add 0
    but still count in the denominator (smp's convention).
    """
    return smp.losses.DiceLoss("multiclass", from_logits=True, class_weights=_as_list(weights))


def tversky(weights: torch.Tensor | None, options: dict[str, Any]) -> LossFn:
    """Tversky loss (Salehi et al. 2017; smp ``TverskyLoss``, multiclass, smooth 0, gamma 1):

    ``T_c = TP_c / max(TP_c + a FP_c + b FN_c, 1e-7)`` with ``TP_c = sum_i p_ic t_ic``,
    ``FP_c = sum_i p_ic (1 - t_ic)``, ``FN_c = sum_i (1 - p_ic) t_ic``; ``a`` = ``tversky_alpha``,
    ``b`` = ``tversky_beta`` (b > a favours recall); ``L = sum_c w_c m_c (1 - T_c) / sum_c w_c`` as for dice.
    """
    return smp.losses.TverskyLoss("multiclass", from_logits=True, alpha=float(options.get("tversky_alpha", 0.3)),
                                  beta=float(options.get("tversky_beta", 0.7)), class_weights=_as_list(weights))


def bias(weights: torch.Tensor | None, options: dict[str, Any]) -> LossFn:
    """Bias loss (Abrahamyan et al. 2021, arXiv 2107.11170), adapted to pixels. Written here: no library has it.

    ``L = 1/N sum_i z(v_i) w_{y_i} (-log p_{i,y_i})`` with ``z(v) = exp(a v) - b``, where ``v_i`` is the
    variance over classes of pixel i's logits (the output of the last conv layer), min-max scaled to [0, 1]
    over the batch and detached (0 everywhere when all variances are equal). Pixels with low-variance,
    uninformative features get a lower weight. ``a`` = ``bias_alpha``, ``b`` = ``bias_beta``.
    """
    alpha, beta = float(options.get("bias_alpha", 0.3)), float(options.get("bias_beta", 0.3))

    def loss(logits, target):
        with torch.no_grad():
            variance = logits.float().var(dim=1, unbiased=False)
            spread = variance.max() - variance.min()
            scaled = (variance - variance.min()) / spread if spread > 0 else torch.zeros_like(variance)
            scale = (torch.exp(alpha * scaled) - beta).to(logits.dtype)
        w = None if weights is None else _class_weights_like(weights, logits)
        per_pixel = F.cross_entropy(logits, target, weight=w, reduction="none")
        return (scale * per_pixel).mean()

    return loss


def lovasz(weights: torch.Tensor | None, options: dict[str, Any]) -> LossFn:
    """Lovasz-softmax (Berman et al. 2018; smp ``LovaszLoss``, multiclass, per_image False).

    Per class c present in y: errors ``e_i = |t_ic - p_ic|`` sorted in decreasing order, ``M_k`` the k pixels
    with the largest errors taken as mispredicted, ``G_c`` the pixels of class c and
    ``J_c(k) = 1 - |G_c minus M_k| / |G_c ∪ M_k|`` (J_c(0) = 0); ``L_c = sum_k e_(k) (J_c(k) - J_c(k-1))``;
    ``L = mean over present classes of L_c``.
    """
    return smp.losses.LovaszLoss("multiclass", per_image=False, from_logits=True)


LOSSES: dict[str, LossBuilder] = {
    "ce": cross_entropy,
    "weighted_bce": weighted_bce,
    "focal": focal,
    "dice": dice,
    "tversky": tversky,
    "bias": bias,
    "lovasz": lovasz,
}


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


def split_outputs(outputs: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """``(logits, aux_logits)`` from a parser's forward output.

    Every parser returns ``(B, C, H, W)`` logits in eval mode. A model with deep supervision (DDRNet's auxiliary
    head) returns ``(logits, aux_1, ...)`` in train mode, each ``(B, C, H, W)``, and weights them with its
    ``aux_weights`` attribute (see ``supervised_loss``).
    """
    if isinstance(outputs, (tuple, list)):
        return outputs[0], tuple(outputs[1:])
    return outputs, ()


def supervised_loss(model: torch.nn.Module, outputs, target: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
    """``loss_fn(logits, target)`` plus ``w * loss_fn(aux, target)`` for each auxiliary output and its weight in
    ``model.aux_weights``; ``outputs`` is the model's raw forward output."""
    logits, aux_logits = split_outputs(outputs)
    loss = loss_fn(logits, target)
    for weight, aux in zip(getattr(model, "aux_weights", ()), aux_logits, strict=True):
        loss = loss + weight * loss_fn(aux, target)
    return loss
