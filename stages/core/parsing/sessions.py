"""ONNX Runtime sessions for the parser graphs, without torch (the CLI's ONNX path never imports it).

The deployable graph (exported by :mod:`stages.core.parsing.export`) takes ``image`` ``(N, S, S, 3)`` uint8 RGB and
returns ``labels`` ``(N, S, S)`` uint8 and ``logits`` ``(N, 11, S, S)`` float32. Older exports take ``image``
``(N, 3, S, S)`` normalised float32 and return ``logits`` only; :func:`is_deployable` tells them apart.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

INPUT_NAME, LABELS_OUTPUT, LOGITS_OUTPUT = "image", "labels", "logits"


def ort_session(path: str | Path, threads: int, optimized_path: str | Path | None = None, spinning: bool = True):
    """An ONNX Runtime CPU session: ``threads`` intra-op threads, one inter-op thread, ``ORT_ENABLE_ALL``.

    ``optimized_path``: also save the optimised graph there (ORT's ``optimized_model_filepath``); a later
    session can load it and skip the optimisation passes. ``spinning``: whether idle intra-op threads spin
    (ORT's default) or sleep.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def is_deployable(session) -> bool:
    """True for the uint8-photo graph of :mod:`stages.core.parsing.export`, False for a float NCHW logits graph."""
    return session.get_inputs()[0].type == "tensor(uint8)"


def input_size(session) -> int | None:
    """The square side the session's graph takes, or None when it is dynamic."""
    shape = session.get_inputs()[0].shape
    side = shape[1] if is_deployable(session) else shape[2]
    return int(side) if isinstance(side, int) else None


def predict_labels_onnx(session, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """``(N, S, S, 3)`` uint8 -> ``(N, S, S)`` uint8 labels from a deployable session."""
    out = np.empty(images.shape[:3], np.uint8)
    for start in range(0, len(images), batch_size):
        batch = np.ascontiguousarray(images[start:start + batch_size], dtype=np.uint8)
        out[start:start + len(batch)] = session.run([LABELS_OUTPUT], {INPUT_NAME: batch})[0]
    return out
