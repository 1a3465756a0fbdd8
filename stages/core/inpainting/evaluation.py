"""Benchmarking mask removal on the masks stage's test split: the inpainter beside OpenCV's Telea and Navier–Stokes.

For each method, on the same masked test photos:
- PSNR, SSIM and L1 inside the mask, and PSNR and SSIM over the whole image (the published convention);
- parse consistency: the parser's foreground-mean F1 inside the mask on the restored photo against the true labels
  (pooled over the split), beside the same on the clean photo (the ceiling) and on the masked photo (the floor);
- identity: the distance between dlib's 128-D descriptors of the restored and the clean photo, placed by the masks
  stage's landmarks of the face, and the inpainter's mean difference from Telea's and from the masked photo's own
  over the same faces, each with a 95 % bootstrap interval (the target asks for a distance clearly below Telea's:
  the interval's top below zero);
- a face-aware perceptual score: the frozen parser's feature distance between the restored and the clean photo
  (:func:`~stages.core.inpainting.parser_critic.parser_feature_distance`; lower is closer).

The inpainter is guided by the parser's labels on the masked photo, as ``faceparse unmask`` is: the argmax of the
probabilities averaged over the photo and its mirror image (``guide`` in the parse scores; on the real test split
this read 0.615 F1 inside the mask against 0.544 from the photo alone). It is also scored with the true labels
(``inpainter_true_labels``), the upper bound a perfect parser would give.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.stats
import torch
from tqdm import tqdm

from stages.core.common.classes import NUM_CLASSES
from stages.core.common.threads import thread_budget
from stages.core.inference.parsing import ParserModel, onnx_session
from stages.core.inpainting.identity import descriptor_distance, face_descriptor
from stages.core.inpainting.parser_critic import FrozenParser, photo_feature_distances
from stages.core.inpainting.training import MaskedSplit, classical_inpaint, inpaint, load_inpainter
from stages.core.parsing.evaluation import latency_ms
from stages.core.parsing.metrics import confusion_matrix, masked_l1, masked_psnr, masked_ssim, segmentation_report
from stages.core.parsing.scoring import predict_labels

log = logging.getLogger(__name__)

CLASSICAL = ("telea", "navier_stokes")


def inpainter_latency_ms(onnx_path: Path, size: int, threads: int, runs: int, warmup: int = 3) -> dict[str, float]:
    """Median and p90 milliseconds of one batch-1 ONNX Runtime run of the inpainter at ``size``²."""
    session = onnx_session(onnx_path, threads)
    rng = np.random.default_rng(0)
    mask = np.zeros((1, 1, size, size), np.float32)
    mask[..., size // 2:, size // 4: 3 * size // 4] = 1
    feed = {"masked": rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32), "mask": mask,
            "labels": rng.integers(0, NUM_CLASSES, (1, size, size)).astype(np.int64)}
    return latency_ms(lambda: session.run(None, feed), runs, warmup)


def image_scores(pred: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM and L1 of one ``(S, S, 3)`` uint8 restoration inside ``mask`` (S, S) bool, PSNR and SSIM whole."""
    whole = np.ones(mask.shape, bool)
    return {"psnr": masked_psnr(pred, clean, mask), "ssim": masked_ssim(pred, clean, mask),
            "l1": masked_l1(pred, clean, mask), "psnr_whole": masked_psnr(pred, clean, whole),
            "ssim_whole": masked_ssim(pred, clean, whole)}


def identity_distances(methods: dict[str, np.ndarray], clean: np.ndarray, landmarks: np.ndarray) -> dict[str, list[float]]:
    """For each method's ``(N, S, S, 3)`` uint8 photos, the descriptor distance of each face from its ``clean`` one,
    both placed by ``landmarks`` (N, 68, 2); faces without finite landmarks are left out of every list alike."""
    distances: dict[str, list[float]] = {name: [] for name in methods}
    for i in tqdm(range(len(clean)), desc="identity", leave=False):
        points = landmarks[i]
        if not np.isfinite(points).all():  # the masks stage writes none such; a hand-made folder may
            continue
        reference = face_descriptor(clean[i], points)
        for name, photos in methods.items():
            distances[name].append(descriptor_distance(face_descriptor(photos[i], points), reference))
    return distances


def paired_mean_difference(a: list[float], b: list[float], seed: int = 0, resamples: int = 2000) -> dict | None:
    """The mean of ``a - b`` over the same faces, with the 95 % percentile-bootstrap interval of that mean (scipy,
    seeded: the same figures every run); ``clearly_below`` when the whole interval lies under zero. None for
    fewer than two faces."""
    difference = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if len(difference) < 2:
        return None
    interval = scipy.stats.bootstrap((difference,), np.mean, n_resamples=resamples, confidence_level=0.95,
                                     method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return {"mean_difference": float(difference.mean()), "ci95_low": float(interval.low),
            "ci95_high": float(interval.high), "clearly_below": bool(interval.high < 0), "faces": len(difference)}


def benchmark_inpainter(checkpoint: Path, onnx_path: Path, parser_checkpoint: Path, masks_dir: Path, cache_dir: Path,
                        threads: int, latency_runs: int, sample_count: int = 6):
    """Returns (metrics dict, sample rows of (masked, inpainter, Telea, Navier–Stokes, clean) for a PNG sheet)."""
    torch.set_num_threads(thread_budget(threads))
    model = load_inpainter(checkpoint)
    guide_parser = ParserModel(parser_checkpoint, threads)
    parser = guide_parser.model
    test = MaskedSplit(masks_dir, cache_dir, "test")
    masked, masks = np.asarray(test.masked), np.asarray(test.masks)
    clean = np.asarray(test.clean)[test.source_index]
    truth = np.asarray(test.labels)[test.source_index]
    landmarks = np.asarray(test.landmarks)
    parsed_masked, guide = guide_parser.labels_and_mirror_averaged(masked, progress="parser labels (test)")
    restored = {"inpainter": inpaint(model, masked, masks, guide),
                "inpainter_true_labels": inpaint(model, masked, masks, truth)}
    for method in CLASSICAL:
        restored[method] = np.stack([classical_inpaint(masked[i], masks[i], method) for i in range(len(test))])
    methods = {"masked": masked, **restored}
    scores = {name: {k: [] for k in ("psnr", "ssim", "l1", "psnr_whole", "ssim_whole")} for name in restored}
    parse_cm = {name: np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64) for name in ("clean", "guide", *methods)}
    parsed = {"clean": predict_labels(parser, clean), "masked": parsed_masked, "guide": guide}
    for name, photos in restored.items():
        parsed[name] = predict_labels(parser, photos)
    for i in tqdm(range(len(test)), desc="inpainter benchmark", leave=False):
        hole = masks[i].astype(bool)
        for name, photos in restored.items():
            for key, value in image_scores(photos[i], clean[i], hole).items():
                scores[name][key].append(value)
        for name, labels in parsed.items():
            parse_cm[name] += confusion_matrix(truth[i][hole], labels[i][hole])
    distances = identity_distances(methods, clean, landmarks)
    metrics: dict = {name: {k: float(np.mean(v)) for k, v in s.items()} for name, s in scores.items()}
    parse_f1 = {name: segmentation_report(cm)["mean_f1_fg"] for name, cm in parse_cm.items()}
    metrics["parse_consistency"] = {
        "f1_fg_in_mask": parse_f1,
        "inpainter_vs_clean": (parse_f1["inpainter"] or 0) / max(parse_f1["clean"] or 0, 1e-9),
    }
    metrics["identity_distance"] = {name: float(np.mean(d)) if d else None for name, d in distances.items()}
    metrics["identity_faces"] = len(distances["inpainter"])
    metrics["identity_inpainter_minus_telea"] = paired_mean_difference(distances["inpainter"], distances["telea"])
    metrics["identity_inpainter_minus_masked"] = paired_mean_difference(distances["inpainter"], distances["masked"])
    critic = FrozenParser(parser)
    feature_distances = photo_feature_distances(critic, methods, clean)
    metrics["parser_feature_distance"] = {name: float(d.mean()) for name, d in feature_distances.items()}
    metrics["parser_feature_inpainter_minus_telea"] = paired_mean_difference(feature_distances["inpainter"],
                                                                             feature_distances["telea"])
    metrics["test_images"] = len(test)
    metrics["mean_mask_coverage"] = float(masks.mean())
    metrics["params"] = int(sum(p.numel() for p in model.parameters()))
    metrics["onnx_latency_ms"] = inpainter_latency_ms(onnx_path, masked.shape[1], threads, latency_runs)
    metrics["latency_threads"] = threads
    metrics["psnr_gain_over_telea"] = metrics["inpainter"]["psnr"] - metrics["telea"]["psnr"]
    rows = [[masked[i], restored["inpainter"][i], restored["telea"][i], restored["navier_stokes"][i], clean[i]]
            for i in range(min(sample_count, len(test)))]
    return metrics, rows

