"""Shared by the photo-path tests: a tiny untrained parser exported to ONNX."""
from __future__ import annotations

from pathlib import Path

import torch

from stages.core.common.classes import NUM_CLASSES
from stages.core.models.registry import build_parser
from stages.core.parsing.export import export_deployable_onnx


def tiny_onnx_parser(path: Path, size: int) -> Path:
    """Export an untrained tiny smp Unet as the deployable graph (uint8 ``size`` x ``size`` photos in, labels and
    logits out: what ``faceparse`` runs) to ``path``; returns ``path``."""
    torch.manual_seed(0)
    model = build_parser({"arch": "Unet", "encoder": "tu-mobilenetv3_small_050", "encoder_weights": None,
                          "decoder_channels": [16, 16, 8, 8, 8]}, NUM_CLASSES)
    export_deployable_onnx(model, path, size)
    return path
