"""Benchmarking trained models on the test split: accuracy, ONNX Runtime latency, size and restoration quality."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from stages.core.cache_arrays import CachedSplit
from stages.core.classes import NUM_CLASSES, overlay
from stages.core.inpainting import MaskedSplit, inpaint, load_inpainter, telea_baseline
from stages.core.metrics import confusion_matrix, masked_l1, masked_psnr, masked_ssim, segmentation_report
from stages.core.models.preprocessing import normalise
from stages.core.models.registry import build_parser, inference_parameter_count
from stages.core.training import predict_labels


def load_parser(path: str | Path) -> tuple[torch.nn.Module, dict]:
    payload = torch.load(path, map_location="cpu", weights_only=False)
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
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    preds = []
    for start in range(0, len(test), 16):
        pred = predict_labels(model, test.images[start:start + 16])
        cm += confusion_matrix(test.labels[start:start + 16], pred)
        if len(preds) < sample_count:
            preds.extend(pred[: sample_count - len(preds)])
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


def benchmark_inpainter(checkpoint: Path, masks_dir: Path, cache_dir: Path, threads: int, sample_count: int = 6):
    """PSNR, SSIM and L1 inside the mask for the inpainter and OpenCV Telea on the same test images."""
    torch.set_num_threads(threads)
    model = load_inpainter(checkpoint)
    test = MaskedSplit(masks_dir, cache_dir, "test")
    restored = inpaint(model, test.masked, test.masks)
    scores = {"inpainter": {"psnr": [], "ssim": [], "l1": []}, "telea": {"psnr": [], "ssim": [], "l1": []}}
    rows = []
    for i in range(len(test)):
        masked, mask, clean = test.pair(i)
        telea = telea_baseline(masked, mask)
        for name, pred in (("inpainter", restored[i]), ("telea", telea)):
            scores[name]["psnr"].append(masked_psnr(pred, clean, mask))
            scores[name]["ssim"].append(masked_ssim(pred, clean, mask))
            scores[name]["l1"].append(masked_l1(pred, clean, mask))
        if len(rows) < sample_count:
            rows.append([masked, restored[i], telea, clean])
    metrics = {name: {k: float(np.mean(v)) for k, v in s.items()} for name, s in scores.items()}
    metrics["test_images"] = len(test)
    metrics["mean_mask_coverage"] = float(np.asarray(test.masks).mean())
    metrics["params"] = int(sum(p.numel() for p in model.parameters()))
    return metrics, rows
