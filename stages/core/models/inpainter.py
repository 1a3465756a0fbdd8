"""The parse-guided mask inpainter and its PatchGAN discriminator.

Generator input: the masked photo ``(B, 3, H, W)`` in [-1, 1], the hole ``(B, 1, H, W)`` in {0, 1} and the face's
11-class label map ``(B, H, W)`` int64, including the parts hidden under the mask (true labels in training, the
parser's prediction on the masked photo at inference). Output ``(B, 3, H, W)`` in [-1, 1], equal to the input
outside the hole. H and W must be divisible by 8.

The encoder reaches 1/8 resolution in three strided convolutions; there, residual fast Fourier convolution blocks
(LaMa, Suvorov et al. 2022) give every position a receptive field over the whole face in one layer, which is what
a hole a third of the face wide needs. A U-Net decoder brings the surroundings back through skips and a last
full-resolution layer sharpens the upsampled prediction against the masked photo. No library ships FFC blocks
(LaMa's are in a research repository, not a package), so they are written here; ``torch.fft`` exports to ONNX
through the dynamo exporter and ONNX Runtime runs it (``tests/test_inpainting.py`` checks both).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from stages.core.common.classes import NUM_CLASSES


def conv_block(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class FourierUnit(nn.Module):
    """A 1×1 convolution on the real and imaginary parts of the 2-D FFT: a global mix of ``(B, C, H, W)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.mix = conv_block(2 * channels, 2 * channels, kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        spectrum = torch.fft.rfft2(x, norm="ortho")
        mixed = self.mix(torch.cat([spectrum.real, spectrum.imag], dim=1))
        real, imag = mixed.chunk(2, dim=1)
        return torch.fft.irfft2(torch.complex(real, imag), s=(height, width), norm="ortho")


class SpectralTransform(nn.Module):
    """LaMa's global branch: 1×1 down, Fourier unit with a residual, 1×1 up. ``(B, C, H, W) -> (B, C_out, H, W)``."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        hidden = max(out_channels // 2, 1)
        self.reduce = conv_block(channels, hidden, kernel=1)
        self.fourier = FourierUnit(hidden)
        self.expand = nn.Conv2d(hidden, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.expand(x + self.fourier(x))


class FFC(nn.Module):
    """A fast Fourier convolution on a (local, global) channel split; ``global_ratio`` of the channels are global.

    ``(B, C, H, W) -> (B, C, H, W)``: local = conv(local) + conv(global); global = conv(local) + spectral(global).
    """

    def __init__(self, channels: int, global_ratio: float):
        super().__init__()
        self.global_channels = int(round(channels * global_ratio))
        self.local_channels = channels - self.global_channels
        cl, cg = self.local_channels, self.global_channels
        self.local_to_local = nn.Conv2d(cl, cl, 3, padding=1, bias=False)
        self.global_to_local = nn.Conv2d(cg, cl, 3, padding=1, bias=False)
        self.local_to_global = nn.Conv2d(cl, cg, 3, padding=1, bias=False)
        self.global_to_global = SpectralTransform(cg, cg)
        self.norm_local, self.norm_global = nn.BatchNorm2d(cl), nn.BatchNorm2d(cg)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local, global_ = x[:, :self.local_channels], x[:, self.local_channels:]
        out_local = self.local_to_local(local) + self.global_to_local(global_)
        out_global = self.local_to_global(local) + self.global_to_global(global_)
        return torch.cat([self.act(self.norm_local(out_local)), self.act(self.norm_global(out_global))], dim=1)


class FFCResidualBlock(nn.Module):
    def __init__(self, channels: int, global_ratio: float):
        super().__init__()
        self.body = nn.Sequential(FFC(channels, global_ratio), FFC(channels, global_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def one_hot_labels(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """``(B, H, W)`` int64 class ids -> ``(B, num_classes, H, W)`` float one-hot (comparison form, exports to ONNX)."""
    classes = torch.arange(num_classes, device=labels.device).view(1, num_classes, 1, 1)
    return (labels.unsqueeze(1) == classes).float()


def separable_block(channels: int) -> nn.Sequential:
    """A depthwise 3×3 then pointwise convolution: a decoder layer at high resolution for a ninth of the cost."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                         nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class UpStep(nn.Module):
    """Project ``(B, C_in, h, w)`` to ``C_out`` channels, upsample 2×, add the encoder's skip, then one 3×3 layer."""

    def __init__(self, cin: int, cout: int, separable: bool):
        super().__init__()
        self.project = nn.Conv2d(cin, cout, 1, bias=False)
        self.body = separable_block(cout) if separable else conv_block(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.body(nn.functional.interpolate(self.project(x), scale_factor=2.0, mode="bilinear") + skip)


class ParseGuidedInpainter(nn.Module):
    """See the module docstring. ``widths``: channels at 1/2, 1/4, 1/8 and 1/16 resolution; ``blocks``: FFC residual
    blocks at 1/16; ``guided``: False drops the label map (an ablation: the same network without parse guidance).
    H and W must be divisible by 16."""

    def __init__(self, widths: tuple[int, int, int, int] = (24, 48, 96, 128), blocks: int = 5,
                 global_ratio: float = 0.75, guided: bool = True):
        super().__init__()
        self.guided = guided
        inputs = 4 + (NUM_CLASSES if guided else 0)
        w1, w2, w3, w4 = widths
        self.down = nn.ModuleList([conv_block(inputs, w1, stride=2), conv_block(w1, w2, stride=2),
                                   conv_block(w2, w3, stride=2), conv_block(w3, w4, stride=2)])
        self.middle = nn.Sequential(*(FFCResidualBlock(w4, global_ratio) for _ in range(blocks)))
        self.up = nn.ModuleList([UpStep(w4, w3, separable=False), UpStep(w3, w2, separable=True),
                                 UpStep(w2, w1, separable=True)])
        self.head = nn.Conv2d(w1, 3, 1)
        self.refine = nn.Sequential(nn.Conv2d(3 + 4, 16, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(16, 3, 3, padding=1))

    def forward(self, masked: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``masked`` (B, 3, H, W) in [-1, 1], ``mask`` (B, 1, H, W) in {0, 1}, ``labels`` (B, H, W) int64
        -> (B, 3, H, W) in [-1, 1]; pixels outside the mask are copied from ``masked``."""
        visible = torch.cat([masked * (1 - mask), mask], dim=1)
        x = torch.cat([visible, one_hot_labels(labels)], dim=1) if self.guided else visible
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.middle(skips.pop())
        for layer in self.up:
            x = layer(x, skips.pop())
        coarse = nn.functional.interpolate(self.head(x), scale_factor=2.0, mode="bilinear")
        pred = torch.tanh(coarse + self.refine(torch.cat([coarse, visible], dim=1)))
        return masked * (1 - mask) + pred * mask


class PatchDiscriminator(nn.Module):
    """A PatchGAN with spectral norm on every convolution. ``(B, 3, H, W)`` photo and ``(B, 1, H, W)`` hole ->
    a list of feature maps, the last ``(B, 1, H/8, W/8)`` real/fake logits (one per overlapping patch)."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 128)):
        super().__init__()
        layers, cin = [], 4
        for i, width in enumerate(widths):
            conv = nn.Conv2d(cin, width, 4, 2, padding=1) if i < len(widths) - 1 else nn.Conv2d(cin, width, 3, padding=1)
            layers.append(nn.Sequential(spectral_norm(conv), nn.LeakyReLU(0.2, inplace=True)))
            cin = width
        self.features = nn.ModuleList(layers)
        self.logits = spectral_norm(nn.Conv2d(cin, 1, 3, padding=1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        x, outputs = torch.cat([image, mask], dim=1), []
        for layer in self.features:
            x = layer(x)
            outputs.append(x)
        outputs.append(self.logits(x))
        return outputs
