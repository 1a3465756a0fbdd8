"""Static int8 copies of the deployable graphs (:mod:`stages.core.parsing.export`), with ONNX Runtime's quantization tools.

Only the deploy stage and the benchmarks import this module: the training stages export the graphs but never
quantise them, so a change here re-runs ``deploy`` and what reads its outputs, not the training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.core.common.io import atomic_path
from stages.core.parsing.sessions import INPUT_NAME


class CalibrationImages:
    """``onnxruntime.quantization.CalibrationDataReader`` over ``(N, S, S, 3)`` uint8 photos, one at a time."""

    def __init__(self, images: np.ndarray):
        self.images, self.index = images, 0

    def get_next(self):
        if self.index >= len(self.images):
            return None
        self.index += 1
        return {INPUT_NAME: np.ascontiguousarray(self.images[self.index - 1:self.index], dtype=np.uint8)}

    def rewind(self):
        self.index = 0


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, calibration: np.ndarray) -> None:
    """Static int8 quantisation of a deployable graph: QDQ format, per-channel int8 weights, uint8 activations
    calibrated (min-max) on ``calibration`` ``(N, S, S, 3)`` uint8 photos. The uint8 input, its normalisation,
    the argmax and the ``logits`` output stay as they are.

    The weights use 7 of the 8 bits (``reduce_range``). On x86 CPUs without VNNI (AVX2 only, as on many laptops
    and cloud AMD EPYCs) ONNX Runtime multiplies uint8 by int8 with VPMADDUBSW, whose 16-bit sums of two products
    saturate with full-range weights; the copy is made once and runs on whatever CPU the user has. Measured on
    an AVX2-only EPYC, the synthetic default's parser: val F1 0.687 with 8-bit weights, 0.842 with 7-bit, 0.842
    in fp32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise ValueError(f"{fp32_path}: int8 calibration needs at least one photo")
    with atomic_path(int8_path) as tmp:
        prepared = Path(str(tmp) + ".prep.onnx")
        try:
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(tmp), CalibrationImages(calibration), quant_format=QuantFormat.QDQ,
                            per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=QUANTIZED_OPS)
        finally:
            prepared.unlink(missing_ok=True)


# Convolutions, matrix products and the cheap ops between them; resizes, softmax and argmax stay in float.
QUANTIZED_OPS = ["Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "Mul", "Relu", "Clip", "MaxPool",
                  "AveragePool", "GlobalAveragePool", "Concat", "HardSigmoid", "Sigmoid"]
