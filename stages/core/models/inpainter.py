"""A small convolutional encoder-decoder that removes a face mask.

Input ``(B, 4, H, W)``: the masked photo scaled to [-1, 1] with the hole set to 0, and the binary hole
mask. Output ``(B, 3, H, W)`` in [-1, 1]. H and W must be divisible by ``2 ** len(widths)``.
The network works at half resolution from its first layer (on two CPU cores a full-resolution
encoder-decoder trains five times slower) and a last full-resolution layer sharpens the upsampled
prediction with the masked photo. Skip connections carry the unmasked surroundings; the hole is
filled from the bottleneck's wide receptive field (dilated convolutions).
"""
from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


class MaskInpainter(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (32, 64, 96, 128)):
        super().__init__()
        self.stem = _block(4, widths[0], stride=2)
        self.down = nn.ModuleList(_block(a, b, stride=2) for a, b in zip(widths[:-1], widths[1:]))
        w = widths[-1]
        self.middle = nn.Sequential(_block(w, w, dilation=2), _block(w, w, dilation=4), _block(w, w, dilation=8))
        self.up = nn.ModuleList(
            _block(b + a, a) for a, b in zip(reversed(widths[:-1]), reversed(widths[1:]))
        )
        self.head = nn.Conv2d(widths[0], 3, 3, padding=1)
        self.refine = nn.Sequential(nn.Conv2d(3 + 4, 16, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                                    nn.Conv2d(16, 3, 3, padding=1))

    def forward(self, masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``masked`` (B, 3, H, W) in [-1, 1], ``mask`` (B, 1, H, W) in {0, 1} -> (B, 3, H, W) in [-1, 1].

        Pixels outside the mask are copied from the input; only the hole is predicted.
        """
        inputs = torch.cat([masked * (1 - mask), mask], dim=1)
        x = self.stem(inputs)
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
        coarse = nn.functional.interpolate(self.head(x), size=masked.shape[-2:], mode="bilinear", align_corners=False)
        pred = torch.tanh(coarse + self.refine(torch.cat([coarse, inputs], dim=1)))
        return masked * (1 - mask) + pred * mask
