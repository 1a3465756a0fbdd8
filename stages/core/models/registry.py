"""One registry maps architecture names to builders.

The import graph is one-way: model modules (regseg.py, ddrnet.py) define builders and know nothing of the
registry; this module imports them and every smp architecture.

Every parser takes ``(B, 3, H, W)`` float images normalised with ImageNet statistics and returns
``(B, num_classes, H, W)`` logits, for any H, W divisible by 64 (32 is enough for the smp archs and RegSeg).

Params read from the ``parser`` section (``cfg``):
- ``arch``: a registered name, case-insensitive (every smp architecture, ``regseg``, ``regseg_slim``, ``ddrnet23_slim``).
- ``encoder``: any smp encoder name or timm encoder as ``tu-<timm name>`` (smp archs only).
- ``encoder_weights``: ``null`` (from scratch) or ``imagenet`` (needs the network).
- ``decoder_channels``: list of widths, used by the U-Net family (Unet, UnetPlusPlus, MAnet).
- ``decoder_width``: one int, used by the archs whose decoder has a single width (DeepLabV3(+), FPN, PAN,
  PSPNet, UPerNet, Segformer, DPT).
- ``arch_options``: dict passed unchanged to the builder (e.g. ``decoder_attention_type: scse``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import segmentation_models_pytorch as smp
from torch import nn

from stages.core.common.classes import NUM_CLASSES
from stages.core.common.torch_utils import load_checkpoint, require_keys
from stages.core.models.ddrnet import build_ddrnet23_slim
from stages.core.models.regseg import build_regseg, build_regseg_slim

log = logging.getLogger(__name__)

PARSER_BUILDERS: dict[str, Callable[[dict[str, Any], int], nn.Module]] = {}

# smp arch (lower-case) -> the keyword that receives ``decoder_width``.
SMP_WIDTH_KEYWORD = {
    "fpn": "decoder_segmentation_channels",
    "pspnet": "psp_out_channels",
    "deeplabv3": "decoder_channels",
    "deeplabv3plus": "decoder_channels",
    "pan": "decoder_channels",
    "upernet": "decoder_channels",
    "segformer": "decoder_segmentation_channels",
    "dpt": "decoder_fusion_channels",
}
SMP_LIST_DECODERS = {"unet", "unetplusplus", "manet"}
TRAINING_ONLY_PREFIX = "aux_head."


def register(name: str):
    """Decorator: ``@register("regseg")`` makes ``build_parser({"arch": "regseg"}, C)`` call the builder."""
    def wrap(builder):
        PARSER_BUILDERS[name.lower()] = builder
        return builder

    return wrap


def smp_kwargs(arch: str, cfg: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """Keyword arguments for ``smp.create_model(arch, ...)`` from the ``parser`` params section."""
    kwargs: dict[str, Any] = {
        "encoder_name": cfg.get("encoder") or "resnet18",
        "encoder_weights": cfg.get("encoder_weights"),
        "classes": num_classes,
    }
    channels, width = cfg.get("decoder_channels"), cfg.get("decoder_width")
    if channels and arch in SMP_LIST_DECODERS:
        kwargs["decoder_channels"] = tuple(int(c) for c in channels)
    if width and arch in SMP_WIDTH_KEYWORD:
        kwargs[SMP_WIDTH_KEYWORD[arch]] = int(width)
    if arch == "fpn" and width:
        kwargs["decoder_pyramid_channels"] = int(width)
    kwargs.update(cfg.get("arch_options") or {})
    return kwargs


def _smp_builder(arch: str):
    def build(cfg: dict[str, Any], num_classes: int) -> nn.Module:
        return smp.create_model(arch, **smp_kwargs(arch, cfg, num_classes))

    build.__doc__ = f"segmentation-models-pytorch {arch} with the encoder named by ``cfg['encoder']``."
    return build


for _arch in smp.MODEL_ARCHITECTURES_MAPPING:
    register(_arch)(_smp_builder(_arch))
register("regseg")(build_regseg)
register("regseg_slim")(build_regseg_slim)
register("ddrnet23_slim")(build_ddrnet23_slim)


def build_parser(cfg: dict[str, Any], num_classes: int) -> nn.Module:
    """Build the parser named by ``cfg["arch"]`` (case-insensitive) from the ``parser`` params section."""
    name = str(cfg["arch"]).lower()
    if name not in PARSER_BUILDERS:
        raise KeyError(f"unknown parser architecture {cfg['arch']!r}; known: {', '.join(sorted(PARSER_BUILDERS))}")
    return PARSER_BUILDERS[name](cfg, num_classes)


def inference_parameter_count(model: nn.Module) -> int:
    """Parameters used at inference; training-only heads (modules named ``aux_head``) are left out."""
    return int(sum(p.numel() for name, p in model.named_parameters() if not name.startswith(TRAINING_ONLY_PREFIX)))


def registered_names() -> list[str]:
    """Every registered architecture name, the project's own models included."""
    return sorted(PARSER_BUILDERS)


def feature_module_names(model: nn.Module) -> tuple[str, ...]:
    """Names of the submodules whose outputs are the parser's encoder levels: the project's models list theirs in
    ``feature_modules``; an smp model's ``encoder`` returns every level (the input itself first)."""
    names = getattr(model, "feature_modules", None)
    if names:
        return tuple(names)
    if isinstance(getattr(model, "encoder", None), nn.Module):
        return ("encoder",)
    raise ValueError(f"{type(model).__name__}: no encoder levels known for feature losses")


def load_parser(path, num_classes: int = NUM_CLASSES) -> tuple[nn.Module, dict]:
    """The parser saved by the ``train_parser`` stage in eval mode, and its checkpoint (``weights_only=True``)."""
    payload = load_checkpoint(path)
    require_keys(payload, ("state_dict", "config"), path)
    model = build_parser(payload["config"], num_classes)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload
