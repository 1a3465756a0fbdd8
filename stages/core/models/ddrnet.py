"""DDRNet-23-slim (Hong et al. 2021, "Deep Dual-resolution Networks for Real-time and Accurate Semantic
Segmentation of Road Scenes", arXiv 2101.06085).

Written here because neither smp nor timm ships it. Two branches run side by side after a shared
ResNet-style trunk: a high-resolution branch kept at 1/8 and a low-resolution branch going down to 1/64.
They exchange information twice ("bilateral fusion": the low branch is compressed and upsampled into the high
one, the high branch is strided down into the low one). A Deep Aggregation Pyramid Pooling Module (DAPPM)
ends the low branch; the head works on the sum of both branches at 1/8 and is upsampled to the input size.
The 23-slim variant: BasicBlock layers (2, 2, 2, 2), 32 base planes, 128 DAPPM planes, 64 head planes
(about 5.7 M parameters at inference).

The paper's auxiliary head (deep supervision) reads the high-resolution branch after the first bilateral fusion and
is trained with weight 0.4 (``arch_options.aux_weight``; 0 removes the head). It only exists in training.

Shapes: ``(B, 3, H, W)`` -> ``(B, num_classes, H, W)`` logits in eval mode; in train mode with the auxiliary
head, ``(logits, aux_logits)``, both ``(B, num_classes, H, W)``. H and W divisible by 64.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _bn_relu_conv(in_ch: int, out_ch: int, kernel: int = 1) -> nn.Sequential:
    """Pre-activation conv used by DAPPM and the head: BN -> ReLU -> conv."""
    return nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True),
                         nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False))


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """ResNet basic block; ``final_relu=False`` on the last block of a layer, as in the paper's code."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1, final_relu: bool = True):
        super().__init__()
        self.conv1 = nn.Sequential(_conv_bn(in_ch, planes, 3, stride), nn.ReLU(inplace=True))
        self.conv2 = _conv_bn(planes, planes, 3)
        self.shortcut = (_conv_bn(in_ch, planes, 1, stride) if stride != 1 or in_ch != planes else nn.Identity())
        self.final_relu = final_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x)) + self.shortcut(x)
        return F.relu(out) if self.final_relu else out


class Bottleneck(nn.Module):
    """Bottleneck with expansion 2 (layer5 of both branches)."""

    expansion = 2

    def __init__(self, in_ch: int, planes: int, stride: int = 1, final_relu: bool = True):
        super().__init__()
        out_ch = planes * self.expansion
        self.body = nn.Sequential(_conv_bn(in_ch, planes, 1), nn.ReLU(inplace=True),
                                  _conv_bn(planes, planes, 3, stride), nn.ReLU(inplace=True),
                                  _conv_bn(planes, out_ch, 1))
        self.shortcut = _conv_bn(in_ch, out_ch, 1, stride) if stride != 1 or in_ch != out_ch else nn.Identity()
        self.final_relu = final_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x) + self.shortcut(x)
        return F.relu(out) if self.final_relu else out


def make_layer(block, in_ch: int, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """``blocks`` blocks; as in the paper's code the last one skips its ReLU when there are two or more."""
    layers = [block(in_ch, planes, stride, final_relu=True)]
    for i in range(1, blocks):
        layers.append(block(planes * block.expansion, planes, 1, final_relu=i < blocks - 1))
    return nn.Sequential(*layers)


class DAPPM(nn.Module):
    """Deep Aggregation Pyramid Pooling: pooled context at kernels 5/9/17 and global, fused hierarchically.

    ``y_0 = conv(x)``, ``y_k = conv3x3(up(conv(pool_k(x))) + y_{k-1})``; out = ``conv(cat(y)) + conv(x)``.
    """

    def __init__(self, in_ch: int, branch_ch: int, out_ch: int):
        super().__init__()
        pools = [nn.AvgPool2d(5, 2, 2), nn.AvgPool2d(9, 4, 4), nn.AvgPool2d(17, 8, 8), nn.AdaptiveAvgPool2d(1)]
        self.scale0 = _bn_relu_conv(in_ch, branch_ch)
        self.scales = nn.ModuleList(nn.Sequential(pool, _bn_relu_conv(in_ch, branch_ch)) for pool in pools)
        self.process = nn.ModuleList(_bn_relu_conv(branch_ch, branch_ch, 3) for _ in pools)
        self.compression = _bn_relu_conv(branch_ch * 5, out_ch)
        self.shortcut = _bn_relu_conv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outs = [self.scale0(x)]
        for scale, process in zip(self.scales, self.process):
            pooled = F.interpolate(scale(x), size=size, mode="bilinear", align_corners=False)
            outs.append(process(pooled + outs[-1]))
        return self.compression(torch.cat(outs, dim=1)) + self.shortcut(x)


class SegmentHead(nn.Module):
    """BN -> ReLU -> 3x3 conv -> BN -> ReLU -> 1x1 conv to class logits."""

    def __init__(self, in_ch: int, mid_ch: int, num_classes: int):
        super().__init__()
        self.body = _bn_relu_conv(in_ch, mid_ch, 3)
        self.classifier = nn.Sequential(nn.BatchNorm2d(mid_ch), nn.ReLU(inplace=True),
                                        nn.Conv2d(mid_ch, num_classes, 1, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


class DualResNet(nn.Module):
    """DDRNet: ``(B, 3, H, W)`` -> ``(B, num_classes, H, W)`` logits."""

    feature_modules = ("stem", "layer1", "layer2", "layer3")  # 1/4, 1/4, 1/8, 1/16: the levels feature losses read

    def __init__(self, num_classes: int, layers=(2, 2, 2, 2), planes: int = 32, spp_planes: int = 128,
                 head_planes: int = 64, aux_weight: float = 0.4):
        super().__init__()
        high = planes * 2
        self.stem = nn.Sequential(_conv_bn(3, planes, 3, 2), nn.ReLU(inplace=True),
                                  _conv_bn(planes, planes, 3, 2), nn.ReLU(inplace=True))
        self.layer1 = make_layer(BasicBlock, planes, planes, layers[0])
        self.layer2 = make_layer(BasicBlock, planes, planes * 2, layers[1], stride=2)
        self.layer3 = make_layer(BasicBlock, planes * 2, planes * 4, layers[2], stride=2)
        self.layer4 = make_layer(BasicBlock, planes * 4, planes * 8, layers[3], stride=2)
        self.layer5 = make_layer(Bottleneck, planes * 8, planes * 8, 1, stride=2)
        self.layer3_high = make_layer(BasicBlock, planes * 2, high, 2)
        self.layer4_high = make_layer(BasicBlock, high, high, 2)
        self.layer5_high = make_layer(Bottleneck, high, high, 1)
        self.compression3 = _conv_bn(planes * 4, high, 1)
        self.compression4 = _conv_bn(planes * 8, high, 1)
        self.down3 = _conv_bn(high, planes * 4, 3, 2)
        self.down4 = nn.Sequential(_conv_bn(high, planes * 4, 3, 2), nn.ReLU(inplace=True),
                                   _conv_bn(planes * 4, planes * 8, 3, 2))
        self.spp = DAPPM(planes * 16, spp_planes, planes * 4)
        self.head = SegmentHead(planes * 4, head_planes, num_classes)
        self.aux_head = SegmentHead(high, head_planes, num_classes) if aux_weight > 0 else None
        self.aux_weights = (float(aux_weight),) if aux_weight > 0 else ()

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        size = x.shape[-2:]
        x2 = self.layer1(self.stem(x))                   # 1/4
        x3 = self.layer2(F.relu(x2))                     # 1/8, shared input of both branches
        low = self.layer3(F.relu(x3))                    # 1/16
        high = self.layer3_high(F.relu(x3))              # 1/8
        high_size = high.shape[-2:]
        low_fused = low + self.down3(F.relu(high))
        high = high + F.interpolate(self.compression3(F.relu(low)), size=high_size, mode="bilinear",
                                    align_corners=False)
        after_first_fusion = high
        low = self.layer4(F.relu(low_fused))             # 1/32
        high = self.layer4_high(F.relu(high))
        low_fused = low + self.down4(F.relu(high))
        high = high + F.interpolate(self.compression4(F.relu(low)), size=high_size, mode="bilinear",
                                    align_corners=False)
        high = self.layer5_high(F.relu(high))
        context = self.spp(self.layer5(F.relu(low_fused)))  # 1/64
        context = F.interpolate(context, size=high_size, mode="bilinear", align_corners=False)
        logits = F.interpolate(self.head(context + high), size=size, mode="bilinear", align_corners=False)
        if self.training and self.aux_head is not None:
            aux = F.interpolate(self.aux_head(after_first_fusion), size=size, mode="bilinear", align_corners=False)
            return logits, aux
        return logits


def build_ddrnet23_slim(cfg: dict[str, Any], num_classes: int) -> nn.Module:
    """DDRNet-23-slim; ``cfg['arch_options']`` may override ``planes``, ``spp_planes``, ``head_planes`` and
    ``aux_weight`` (0.4; 0 trains without the auxiliary head)."""
    options = cfg.get("arch_options") or {}
    return DualResNet(num_classes, planes=int(options.get("planes", 32)),
                      spp_planes=int(options.get("spp_planes", 128)), head_planes=int(options.get("head_planes", 64)),
                      aux_weight=float(options.get("aux_weight", 0.4)))
