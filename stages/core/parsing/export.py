"""The deployable parser: one ONNX graph from uint8 photo to uint8 labels, its int8 copy, and tuned sessions.

The exported graph (``models/parser.onnx``, ``models/student.onnx``) takes ``image`` ``(N, S, S, 3)`` uint8 RGB,
casts and normalises it inside the graph with the ImageNet statistics training used
(:mod:`stages.core.models.preprocessing`), and returns two outputs: ``labels`` ``(N, S, S)`` uint8 (the argmax,
what most callers need: 11x less to copy than the logits) and ``logits`` ``(N, 11, S, S)`` float32 (for
``faceparse enhance``, which edits through soft probabilities). ONNX Runtime runs every node whichever outputs
are asked for, and ``logits`` is an intermediate of ``labels`` anyway, so the second output costs only its copy
when it is requested.

Its int8 copy is made by :func:`stages.core.parsing.quantization.quantize_int8` (the deploy stage alone imports it, so a
change there re-trains nothing). :func:`stages.core.parsing.sessions.ort_session` opens either.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from stages.core.common.io import atomic_path
from stages.core.common.params import ParamsSection
from stages.core.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from stages.core.parsing.losses import split_outputs
from stages.core.parsing.sessions import INPUT_NAME, LABELS_OUTPUT, LOGITS_OUTPUT

log = logging.getLogger(__name__)


class DeployableParser(nn.Module):
    """``(N, S, S, 3)`` uint8 RGB -> ``((N, S, S) uint8 labels, (N, C, S, S) float32 logits)``."""

    def __init__(self, parser: nn.Module):
        super().__init__()
        self.parser = parser
        # (x - mean) / std as one multiply-add
        self.register_buffer("scale", torch.from_numpy(1.0 / IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", torch.from_numpy(-IMAGENET_MEAN / IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image.permute(0, 3, 1, 2).float() * self.scale + self.shift
        logits = split_outputs(self.parser(x))[0]
        return logits.argmax(1).to(torch.uint8), logits


def export_deployable_onnx(model: nn.Module, path: str | Path, size: int, opset: int = 17) -> None:
    """Export ``model`` (a parser taking normalised NCHW floats) wrapped in :class:`DeployableParser`.

    Input ``image`` (N, S, S, 3) uint8; outputs ``labels`` (N, S, S) uint8 and ``logits`` (N, 11, S, S); N dynamic.
    """
    wrapped = DeployableParser(model.eval().cpu()).eval()
    dummy = torch.zeros(1, size, size, 3, dtype=torch.uint8)
    names = {"input_names": [INPUT_NAME], "output_names": [LABELS_OUTPUT, LOGITS_OUTPUT]}
    with atomic_path(path) as tmp, torch.no_grad():
        try:
            torch.onnx.export(wrapped, dummy, str(tmp), opset_version=opset, dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, LABELS_OUTPUT: {0: "batch"},
                                            LOGITS_OUTPUT: {0: "batch"}}, **names)
        except torch.onnx.errors.SymbolicValueError as err:
            log.warning("TorchScript ONNX export failed (%s); using the dynamo exporter", str(err).splitlines()[0])
            program = torch.onnx.export(wrapped, (dummy,), None, opset_version=max(opset, 18), dynamo=True, **names)
            program.save(str(tmp))


class DeployParams(ParamsSection):
    """The ``deploy`` section: int8 calibration and which exported model ``faceparse`` runs by default.

    ``calibration_images``: the first N cached training photos calibrate the int8 copies. ``candidates``: the
    exported variants in order of preference (fastest first, as measured by benchmarks/bench_parsers.py);
    the default is the first whose val foreground-mean F1 is within ``max_f1_drop`` of the best candidate's,
    and an int8 variant only qualifies when it loses at most ``int8_max_f1_drop`` against its own fp32 graph.
    """

    SECTION = "deploy"
    calibration_images: int = Field(16, ge=1)
    candidates: list[Literal["student", "student_int8", "parser", "parser_int8"]] = [
        "student", "student_int8", "parser_int8", "parser"]
    max_f1_drop: float = Field(0.01, ge=0)
    int8_max_f1_drop: float = Field(0.005, ge=0)
    threads: int = Field(2, ge=1)


_EPS = 1e-9  # 0.81 - 0.80 is 0.010000000000000009 in floats: a drop of exactly the budget qualifies


def choose_default(val_f1: dict[str, float], candidates: list[str], max_f1_drop: float,
                   int8_max_f1_drop: float) -> tuple[str, dict[str, str]]:
    """The first of ``candidates`` that qualifies (see :class:`DeployParams`), and why each was kept or not.

    ``val_f1``: variant name (``student``, ``student_int8``, ...) -> val foreground-mean F1.
    """
    best = max(val_f1[c] for c in candidates)
    reasons, chosen = {}, None
    for name in candidates:
        f1 = val_f1[name]
        fp32 = name.removesuffix("_int8")
        if name != fp32 and val_f1[fp32] - f1 > int8_max_f1_drop + _EPS:
            reasons[name] = f"int8 loses {val_f1[fp32] - f1:.4f} F1 against fp32 (> {int8_max_f1_drop})"
        elif best - f1 > max_f1_drop + _EPS:
            reasons[name] = f"{best - f1:.4f} F1 below the best candidate (> {max_f1_drop})"
        elif chosen is None:
            chosen, reasons[name] = name, "chosen: the first qualifying candidate"
        else:
            reasons[name] = "qualifies, but a preferred candidate came first"
    if chosen is None:  # only possible when every candidate is an int8 copy that loses too much
        chosen = max(candidates, key=lambda c: val_f1[c])
        reasons[chosen] = "chosen: no candidate qualified; the most accurate"
    return chosen, reasons
