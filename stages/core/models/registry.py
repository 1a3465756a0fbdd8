"""One registry maps architecture names to builders.

Every parser takes ``(B, 3, H, W)`` float images normalised with ImageNet statistics and returns
``(B, num_classes, H, W)`` logits, for any H, W divisible by 32.
"""
from __future__ import annotations

from typing import Any, Callable

import segmentation_models_pytorch as smp
from torch import nn

PARSER_BUILDERS: dict[str, Callable[[dict[str, Any], int], nn.Module]] = {}


def register(name: str):
    def wrap(builder):
        PARSER_BUILDERS[name.lower()] = builder
        return builder

    return wrap


def _smp_builder(arch_name: str):
    def build(cfg: dict[str, Any], num_classes: int) -> nn.Module:
        kwargs: dict[str, Any] = {
            "encoder_name": cfg.get("encoder", "resnet18"),
            "encoder_weights": cfg.get("encoder_weights"),
            "classes": num_classes,
        }
        if cfg.get("decoder_channels") and arch_name in ("Unet", "UnetPlusPlus"):
            kwargs["decoder_channels"] = tuple(cfg["decoder_channels"])
        return smp.create_model(arch_name, **kwargs)

    return build


for _arch in ("Unet", "UnetPlusPlus", "DeepLabV3Plus", "FPN", "Linknet", "PAN", "PSPNet", "MAnet", "DeepLabV3"):
    register(_arch)(_smp_builder(_arch))


def build_parser(cfg: dict[str, Any], num_classes: int) -> nn.Module:
    """Build the parser named by ``cfg["arch"]`` (case-insensitive) from the ``parser`` params section."""
    name = str(cfg["arch"]).lower()
    if name not in PARSER_BUILDERS:
        raise KeyError(f"unknown parser architecture {cfg['arch']!r}; known: {', '.join(sorted(PARSER_BUILDERS))}")
    return PARSER_BUILDERS[name](cfg, num_classes)
