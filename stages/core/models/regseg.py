"""RegSeg (Gao 2021, "Rethinking Dilated Convolution for Real-time Semantic Segmentation", arXiv 2111.09957).

Written here because neither smp nor timm ships it. This is the paper's RegSeg-exp48-decoder26
(about 3.3 M parameters at 19 classes): a stem, a body of "D blocks" (ResNeXt-style bottlenecks whose
grouped 3x3 convolution is split into branches with different dilation rates, plus squeeze-excitation),
kept at 1/16 resolution with growing dilations (up to 14) for a large field of view, and a light decoder
that fuses the 1/4, 1/8 and 1/16 features. ``regseg_slim`` is the same network at half the widths with 9 of the
13 dilated blocks, the fast student that ``distill`` trains.

Shapes: ``(B, 3, H, W)`` -> ``(B, num_classes, H, W)`` logits; H and W divisible by 16 (32 to be safe).
Train and eval modes differ only through BatchNorm.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

GROUP_WIDTH = 16
# exp48: dilation rates of the 1/16 stage, block by block (the paper's Table 1, "RegSeg" row).
EXP48_DILATIONS: list[list[int]] = [[1], [1, 2]] + 4 * [[1, 4]] + 7 * [[1, 14]]
EXP48_WIDTHS = (32, 48, 128, 256, 320)
DECODER26_WIDTHS = (128, 64, 8)
# regseg_slim: chosen by latency (benchmarks/bench_parsers.py); depth cost less than width on 2 threads
SLIM_DILATIONS: list[list[int]] = [[1], [1, 2]] + 3 * [[1, 4]] + [[1, 8]] + 3 * [[1, 14]]
SLIM_WIDTHS = (16, 32, 64, 128, 160)
SLIM_DECODER_WIDTHS = (64, 32, 8)
ARCH_OPTIONS = ("dilations", "widths", "decoder_widths")


def conv_bn_act(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out_ch)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gate ``x * sigmoid(W2 relu(W1 avgpool(x)))``; (B, C, H, W) -> same shape."""

    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeezed, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(squeezed, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class SplitDilatedConv(nn.Module):
    """Grouped 3x3 conv whose channels are split evenly into one branch per dilation rate."""

    def __init__(self, channels: int, dilations: Sequence[int], stride: int):
        super().__init__()
        self.branch_width = channels // len(dilations)
        groups = self.branch_width // GROUP_WIDTH
        self.branches = nn.ModuleList(
            nn.Conv2d(self.branch_width, self.branch_width, 3, stride, padding=d, dilation=d, groups=groups, bias=False)
            for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.branch_width, dim=1)
        return torch.cat([conv(part) for conv, part in zip(self.branches, parts)], dim=1)


class DBlock(nn.Module):
    """The paper's D block: 1x1 -> split dilated grouped 3x3 (stride) -> SE -> 1x1, plus a shortcut.

    The strided shortcut is 2x2 average pooling then 1x1 conv (the paper's "Y block" style downsampling).
    """

    def __init__(self, in_ch: int, out_ch: int, dilations: Sequence[int], stride: int):
        super().__init__()
        self.expand = conv_bn_act(in_ch, out_ch, 1)
        self.spatial = nn.Sequential(SplitDilatedConv(out_ch, dilations, stride), nn.BatchNorm2d(out_ch),
                                     nn.ReLU(inplace=True))
        self.se = SqueezeExcitation(out_ch, in_ch // 4)
        self.project = conv_bn_act(out_ch, out_ch, 1, act=False)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            pool = [nn.AvgPool2d(2, 2, ceil_mode=True)] if stride != 1 else []
            self.shortcut = nn.Sequential(*pool, nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.spatial(self.expand(x))))
        return F.relu(out + self.shortcut(x))


class RegSegBody(nn.Module):
    """Stages at 1/4, 1/8 and 1/16 of the input, from the 1/2 stem output.

    ``widths`` = (stem, 1/4, 1/8, 1/16, last 1/16 block): the paper's (32, 48, 128, 256, 320). The 1/16 stage has
    one strided block and then one block per entry of ``dilations``.
    """

    def __init__(self, dilations: Sequence[Sequence[int]] = EXP48_DILATIONS, widths: Sequence[int] = EXP48_WIDTHS):
        super().__init__()
        stem, w4, w8, w16, w16_last = widths
        self.stage4 = DBlock(stem, w4, [1], 2)
        self.stage8 = nn.Sequential(DBlock(w4, w8, [1], 2), DBlock(w8, w8, [1], 1), DBlock(w8, w8, [1], 1))
        self.stage16 = nn.Sequential(DBlock(w8, w16, [1], 2),
                                     *[DBlock(w16, w16, d, 1) for d in dilations[:-1]],
                                     DBlock(w16, w16_last, dilations[-1], 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x4 = self.stage4(x)
        x8 = self.stage8(x4)
        return x4, x8, self.stage16(x8)


class Decoder26(nn.Module):
    """The paper's decoder26: 1/16 + 1/8 summed at 128 ch, upsampled and concatenated with 8 ch of 1/4.

    ``widths`` = (1/16 + 1/8 sum, fused 3x3 convs, 1/4 skip): the paper's (128, 64, 8).
    """

    def __init__(self, num_classes: int, body_widths: Sequence[int] = EXP48_WIDTHS,
                 widths: Sequence[int] = DECODER26_WIDTHS):
        super().__init__()
        _, w4, w8, _, w16_last = body_widths
        summed, fused, skip4 = widths
        self.head16, self.head8, self.head4 = conv_bn_act(w16_last, summed), conv_bn_act(w8, summed), conv_bn_act(w4, skip4)
        self.conv8 = conv_bn_act(summed, fused, 3)
        self.conv4 = conv_bn_act(fused + skip4, fused, 3)
        self.classifier = nn.Conv2d(fused, num_classes, 1)

    def forward(self, x4: torch.Tensor, x8: torch.Tensor, x16: torch.Tensor) -> torch.Tensor:
        x8 = self.head8(x8)
        x8 = self.conv8(x8 + F.interpolate(self.head16(x16), size=x8.shape[-2:], mode="bilinear", align_corners=False))
        x4 = self.head4(x4)
        x4 = torch.cat([F.interpolate(x8, size=x4.shape[-2:], mode="bilinear", align_corners=False), x4], dim=1)
        return self.classifier(self.conv4(x4))


class RegSeg(nn.Module):
    """RegSeg, exp48-decoder26 unless the widths and dilations say otherwise: ``(B, 3, H, W)`` ->
    ``(B, num_classes, H, W)`` logits."""

    # the encoder's levels (1/2; then 1/4, 1/8 and 1/16 from the body's tuple), for feature losses
    feature_modules = ("stem", "body")

    def __init__(self, num_classes: int, dilations: Sequence[Sequence[int]] = EXP48_DILATIONS,
                 widths: Sequence[int] = EXP48_WIDTHS, decoder_widths: Sequence[int] = DECODER26_WIDTHS):
        super().__init__()
        check_widths(dilations, widths, decoder_widths)
        self.stem = conv_bn_act(3, widths[0], 3, 2)
        self.body = RegSegBody(dilations, widths)
        self.decoder = Decoder26(num_classes, widths, decoder_widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(*self.body(self.stem(x)))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def check_widths(dilations: Sequence[Sequence[int]], widths: Sequence[int], decoder_widths: Sequence[int]) -> None:
    """Raise ValueError unless every split dilated conv gets whole groups of GROUP_WIDTH channels per branch."""
    if len(widths) != 5 or len(decoder_widths) != 3 or not dilations:
        raise ValueError(f"RegSeg: widths needs 5 numbers (stem, 1/4, 1/8, 1/16, last 1/16), decoder_widths 3 "
                         f"(summed, fused, 1/4 skip) and dilations at least one block; got {list(widths)}, "
                         f"{list(decoder_widths)}, {len(dilations)} blocks")
    if min(*widths, *decoder_widths) < 1 or widths[0] < 4:
        raise ValueError(f"RegSeg: widths must be positive and the stem at least 4; got {list(widths)}, "
                         f"{list(decoder_widths)}")
    # every block's grouped conv: (out channels, branches)
    blocks = [(widths[1], 1), (widths[2], 1), (widths[3], 1)] + [(widths[3], len(d)) for d in dilations[:-1]]
    blocks.append((widths[4], len(dilations[-1])))
    for channels, branches in blocks:
        if channels % (branches * GROUP_WIDTH):
            raise ValueError(f"RegSeg: a block of {channels} channels in {branches} dilation branch(es) needs a "
                             f"multiple of {branches * GROUP_WIDTH} ({GROUP_WIDTH} per group); got widths "
                             f"{list(widths)}")


def build_regseg(cfg: dict[str, Any], num_classes: int) -> nn.Module:
    """RegSeg; ``cfg['arch_options']`` may set ``dilations`` (the 1/16 stage's blocks, exp48 by default),
    ``widths`` (stem, 1/4, 1/8, 1/16, last 1/16 block; (32, 48, 128, 256, 320)) and ``decoder_widths`` (summed,
    fused, 1/4 skip; (128, 64, 8)). Other keys are refused."""
    return regseg_from_options(cfg, num_classes, EXP48_DILATIONS, EXP48_WIDTHS, DECODER26_WIDTHS)


def build_regseg_slim(cfg: dict[str, Any], num_classes: int) -> nn.Module:
    """RegSeg at half the widths with 9 of the 13 dilated blocks: 0.75 M parameters, about 0.55x DeepLabV3+-mnv2's
    latency on 2 threads (``benchmarks/bench_parsers.py``) against RegSeg's 1.2-1.3x. ``arch_options`` as RegSeg's."""
    return regseg_from_options(cfg, num_classes, SLIM_DILATIONS, SLIM_WIDTHS, SLIM_DECODER_WIDTHS)


def regseg_from_options(cfg: dict[str, Any], num_classes: int, dilations: Sequence[Sequence[int]],
                        widths: Sequence[int], decoder_widths: Sequence[int]) -> RegSeg:
    options = dict(cfg.get("arch_options") or {})
    unknown = sorted(set(options) - set(ARCH_OPTIONS))
    if unknown:
        raise ValueError(f"RegSeg: unknown arch_options {unknown}; known: {list(ARCH_OPTIONS)}")
    return RegSeg(num_classes, options.get("dilations", dilations),
                  tuple(int(w) for w in options.get("widths", widths)),
                  tuple(int(w) for w in options.get("decoder_widths", decoder_widths)))
