"""The mask finder's network: a small encoder-decoder that marks the pixels of a face mask on an aligned face.

Input ``(B, 3, H, W)`` float, normalised with :func:`stages.core.models.preprocessing.normalise`; output
``(B, 1, H, W)`` logits (mask vs not). H and W must be divisible by ``2 ** len(widths)``.
A mask is a large, smooth region, so the network works at half resolution from its first layer and sees the
whole face through dilated convolutions at the bottom; the logits are upsampled bilinearly. On two CPU cores it
trains about three times faster than an smp U-Net with a MobileNetV3-small encoder at the same input size.
"""
from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MaskFinderNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (16, 32, 48, 64)):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2:
            raise ValueError(f"the mask finder needs at least two widths, got {widths}")
        self.widths = widths
        self.stem = nn.Sequential(_block(3, widths[0], stride=2), _block(widths[0], widths[0]))
        self.down = nn.ModuleList(_block(a, b, stride=2) for a, b in zip(widths[:-1], widths[1:]))
        w = widths[-1]
        self.middle = nn.Sequential(_block(w, w, dilation=2), _block(w, w, dilation=4), _block(w, w, dilation=2))
        self.up = nn.ModuleList(_block(b + a, a) for a, b in zip(reversed(widths[:-1]), reversed(widths[1:])))
        self.head = nn.Conv2d(widths[0], 1, 3, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` normalised images -> ``(B, 1, H, W)`` logits."""
        x = self.stem(images)
        skips = [x]
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.middle(x)
        skips.pop()
        for layer in self.up:
            skip = skips.pop()
            x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = layer(torch.cat([x, skip], dim=1))
        return nn.functional.interpolate(self.head(x), size=images.shape[-2:], mode="bilinear", align_corners=False)
