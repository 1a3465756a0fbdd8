"""Benchmarking the trained parser on the test split: accuracy, ONNX Runtime latency and size.

The inpainter's scores live with it, in :func:`stages.core.inpainting.benchmark_inpainter`.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from stages.core.cache_arrays import CachedSplit
from stages.core.classes import NUM_CLASSES, overlay
from stages.core.metrics import confusion_matrix, segmentation_report
from stages.core.models.preprocessing import normalise
from stages.core.models.registry import build_parser, inference_parameter_count
from stages.core.params import ParamsSection
from stages.core.parser_scoring import predict_labels, split_confusion
from stages.core.torch_utils import load_checkpoint, require_keys


class BenchmarkParams(ParamsSection):
    """The ``benchmark`` section: ONNX Runtime intra-op ``threads`` and timed ``latency_runs`` after warm-up."""

    SECTION = "benchmark"
    threads: int = Field(2, ge=1)
    latency_runs: int = Field(30, ge=1)


def load_parser(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The parser saved by the ``train_parser`` stage in eval mode, and its checkpoint (``weights_only=True``)."""
    payload = load_checkpoint(path)
    require_keys(payload, ("state_dict", "config"), path)
    model = build_parser(payload["config"], NUM_CLASSES)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload


def onnx_session(path: str | Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_latency_ms(session, image: np.ndarray, runs: int, warmup: int = 3) -> dict[str, float]:
    """Median (and p90) wall time of one batch-1 inference of ``image`` (S, S, 3) uint8, in milliseconds."""
    feed = {session.get_inputs()[0].name: normalise(image[None])}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90))}


def majority_baseline(train_labels: np.ndarray, test: CachedSplit) -> dict:
    """Scores of predicting the most frequent training class everywhere: the floor a parser must beat."""
    counts = np.zeros(NUM_CLASSES, np.int64)
    for lbl in train_labels:
        counts += np.bincount(np.asarray(lbl).ravel(), minlength=NUM_CLASSES)
    majority = int(counts.argmax())
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for lbl in test.labels:
        cm += confusion_matrix(lbl, np.full_like(lbl, majority))
    report = segmentation_report(cm)
    return {"class": majority, "mean_f1_fg": report["mean_f1_fg"] or 0.0, "pixel_accuracy": report["pixel_accuracy"]}


def benchmark_parser(checkpoint: Path, onnx_path: Path, cache_dir: Path, threads: int, runs: int,
                     sample_count: int = 6):
    """Returns (metrics dict, confusion matrix (11, 11), sample rows for a PNG sheet)."""
    torch.set_num_threads(threads)
    model, payload = load_parser(checkpoint)
    test = CachedSplit(cache_dir, "test")
    cm, preds = split_confusion(model, test, keep=sample_count)
    report = segmentation_report(cm)
    session = onnx_session(onnx_path, threads)
    probe = np.asarray(test.images[: min(4, len(test))])
    onnx_pred = session.run(None, {"image": normalise(probe)})[0].argmax(1)
    agreement = float((onnx_pred == predict_labels(model, probe)).mean())
    metrics = {
        **report,
        "test_images": len(test),
        "majority_baseline": majority_baseline(CachedSplit(cache_dir, "train").labels, test),
        "params": inference_parameter_count(model),
        "onnx_size_mb": round(onnx_path.stat().st_size / 2**20, 3),
        "onnx_latency_ms": onnx_latency_ms(session, np.asarray(test.images[0]), runs),
        "onnx_torch_pixel_agreement": agreement,
        "latency_threads": threads,
        "input_size": int(test.images.shape[1]),
        "arch": payload["config"].get("arch"),
        "encoder": payload["config"].get("encoder"),
        "loss": payload.get("loss"),
    }
    rows = [[np.asarray(test.images[i]), overlay(test.images[i], test.labels[i]), overlay(test.images[i], preds[i])]
            for i in range(len(preds))]
    return metrics, cm, rows
