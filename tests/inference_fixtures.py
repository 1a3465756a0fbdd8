"""Shared by the photo-path tests: a tiny untrained parser exported to ONNX, and the tiny models of
``faceparse unmask`` (parser, inpainter, mask finders whose findings are known, framing)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from stages.core.common.classes import NUM_CLASSES
from stages.core.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from stages.core.models.registry import build_parser
from stages.core.parsing.export import export_deployable_onnx

UNMASK_SIZE = 128
MASK_GREEN = (0, 210, 0)  # the colour of the masks drawn for colour_finder_onnx to find


def tiny_onnx_parser(path: Path, size: int) -> Path:
    """Export an untrained tiny smp Unet as the deployable graph (uint8 ``size`` x ``size`` photos in, labels and
    logits out: what ``faceparse`` runs) to ``path``; returns ``path``."""
    torch.manual_seed(0)
    model = build_parser({"arch": "Unet", "encoder": "tu-mobilenetv3_small_050", "encoder_weights": None,
                          "decoder_channels": [16, 16, 8, 8, 8]}, NUM_CLASSES)
    export_deployable_onnx(model, path, size)
    return path


def colour_finder_onnx(path: Path, settings) -> Path:
    """A mask finder that marks the pixels of the drawn masks' green: logit 20 x ((G - R - B) / 255 - 0.4), so
    :data:`MASK_GREEN` is mask (probability 1.0) and skin, grey, white and black are not (under 0.001). One 1x1
    convolution on the normalised input, exported as the real finder is."""
    from stages.core.mask_finding.training import export_finder_onnx

    conv = nn.Conv2d(3, 1, 1)
    signs = np.array([-1.0, 1.0, -1.0])
    with torch.no_grad():  # x = (v - mean) / std, so v = x * std + mean
        conv.weight[:] = torch.tensor(20 * signs * IMAGENET_STD / 255, dtype=torch.float32).view(1, 3, 1, 1)
        conv.bias[:] = float(20 * (signs * IMAGENET_MEAN).sum() / 255 - 8)
    export_finder_onnx(conv, path, settings)
    return path


def tiny_unmask_models(root: Path) -> Path:
    """Into ``root``: ``framing.json`` (from 12 synthetic faces at 128 px), an untrained tiny ``parser.onnx`` and
    ``inpainter.onnx``, and three mask finders whose findings are known: ``finder_all.onnx`` (threshold 0: every
    pixel is mask), ``finder_none.onnx`` (threshold 1.01: none is) and ``finder_green.onnx`` (the pixels of
    :data:`MASK_GREEN`). Returns ``root``."""
    from stages.core.data.synthetic_faces import face_rng, render_face
    from stages.core.inference.alignment import measure_framing
    from stages.core.inpainting.training import export_inpainter_onnx
    from stages.core.mask_finding.finder import FinderSettings
    from stages.core.mask_finding.training import export_finder_onnx
    from stages.core.models.inpainter import ParseGuidedInpainter
    from stages.core.models.mask_finder import MaskFinderNet

    faces = [render_face(face_rng(3, i), UNMASK_SIZE) for i in range(12)]
    measure_framing(np.stack([f.landmarks for f in faces]), UNMASK_SIZE).save(root / "framing.json")
    tiny_onnx_parser(root / "parser.onnx", UNMASK_SIZE)
    torch.manual_seed(0)
    export_inpainter_onnx(ParseGuidedInpainter((8, 8, 16, 16), blocks=1), root / "inpainter.onnx", UNMASK_SIZE)
    for name, threshold in (("finder_all", 0.0), ("finder_none", 1.01)):
        export_finder_onnx(MaskFinderNet((8, 16)), root / f"{name}.onnx", FinderSettings(32, threshold, 0.02, 2))
    colour_finder_onnx(root / "finder_green.onnx", FinderSettings(UNMASK_SIZE, 0.5, 0.02, 2))
    return root
