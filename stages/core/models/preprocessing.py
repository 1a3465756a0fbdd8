"""Turning uint8 photos into network inputs: the one normalisation every parser uses (train, ONNX, CLI)."""
from __future__ import annotations

import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def normalise(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` or ``(H, W, 3)`` uint8 RGB -> float32 NCHW (or CHW) with ImageNet statistics."""
    x = (np.asarray(images, np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(normalise(images))
