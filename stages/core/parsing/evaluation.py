"""Benchmarking the trained parser on the test split: accuracy, ONNX Runtime latency and size, and the same
accuracy on the reframed test set (:mod:`stages.core.data.reframing`), as a whole photo and through ``faceparse``'s path.

The inpainter's scores live in :func:`stages.core.inpainting.evaluation.benchmark_inpainter`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from stages.core.common.classes import NUM_CLASSES, overlay
from stages.core.common.params import ParamsSection
from stages.core.common.threads import thread_budget
from stages.core.data.cache_arrays import CachedSplit
from stages.core.data.masked_arrays import MaskedPhotos
from stages.core.data.reframing import ReframedParams, ReframedSet, reframed_set
from stages.core.inference.alignment import Framing
from stages.core.inference.parsing import ParserModel, onnx_session, parse_photo
from stages.core.mask_finding.finder import face_pixels
from stages.core.mask_finding.training import score_finder_export
from stages.core.models.preprocessing import normalise
from stages.core.models.registry import inference_parameter_count, load_parser
from stages.core.parsing.metrics import confusion_matrix, segmentation_report
from stages.core.parsing.scoring import masked_region_scores, predict_labels, split_confusion
from stages.core.parsing.sessions import INPUT_NAME, LABELS_OUTPUT, is_deployable

log = logging.getLogger(__name__)


class BenchmarkParams(ParamsSection):
    """The ``benchmark`` section: ONNX Runtime intra-op ``threads``, timed ``latency_runs`` after warm-up, the
    thread counts of the latency table (``table_threads``, see :mod:`stages.core.parsing.latency`), and the reframed
    test set (``reframed``, see :class:`stages.core.data.reframing.ReframedParams`)."""

    SECTION = "benchmark"
    threads: int = Field(2, ge=1)
    latency_runs: int = Field(20, ge=1)
    table_threads: list[int] = [1, 2]
    reframed: ReframedParams = ReframedParams()


def _onnx_feed(session, images: np.ndarray) -> tuple[list[str], dict[str, np.ndarray]]:
    """The outputs to ask for and the feed: uint8 photos for the deployable graph, normalised floats otherwise."""
    if is_deployable(session):
        return [LABELS_OUTPUT], {INPUT_NAME: np.ascontiguousarray(images, np.uint8)}
    return None, {session.get_inputs()[0].name: normalise(images)}


def latency_ms(run: Callable[[], object], runs: int, warmup: int = 3) -> dict[str, float]:
    """Median and p90 milliseconds of ``runs`` calls of ``run()`` (one batch-1 inference) after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90))}


def onnx_latency_ms(session, image: np.ndarray, runs: int, warmup: int = 3) -> dict[str, float]:
    """Median (and p90) wall time of one batch-1 inference of ``image`` (S, S, 3) uint8, in milliseconds."""
    outputs, feed = _onnx_feed(session, image[None])
    return latency_ms(lambda: session.run(outputs, feed), runs, warmup)


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
    """Returns (metrics dict, confusion matrix (11, 11), sample rows for a PNG sheet). ``threads`` goes through
    the thread budget (``FACEPARSE_THREADS``), and ``latency_threads`` records the count the latency ran with."""
    threads = thread_budget(threads)
    torch.set_num_threads(threads)
    model, payload = load_parser(checkpoint)
    test = CachedSplit(cache_dir, "test")
    cm, preds = split_confusion(model, test, keep=sample_count)
    report = segmentation_report(cm)
    session = onnx_session(onnx_path, threads)
    probe = np.asarray(test.images[: min(4, len(test))])
    outputs, feed = _onnx_feed(session, probe)
    onnx_out = session.run(outputs, feed)[0]
    onnx_pred = onnx_out if outputs else onnx_out.argmax(1)
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


def score_reframed(reframed: ReframedSet, parser: ParserModel, framing: Framing, settings: ReframedParams,
                   predict: Callable[[np.ndarray], np.ndarray] | None = None, keep: int = 0,
                   batch_size: int = 16) -> tuple[dict, list[list[np.ndarray]]]:
    """Score the parser on a reframed set two ways, each a full ``segmentation_report`` over the pixels that show
    the photo itself (``reframed.footprints``; the mirrored padding is left out, see :mod:`stages.core.data.reframing`).

    ``whole_photo``: ``predict`` ((N, S, S, 3) uint8 -> (N, S, S) class ids; by default ``parser`` itself) on
    each reframed photo as it stands. ``parse_path``: :func:`parse_photo` (dlib detection with ``settings``'
    detector, alignment to ``framing``, ``parser``, paste-back) on each photo; a photo where no face is found
    is predicted background everywhere, which is what a user would get. Also counts the faces found and the
    photos with at least one, and under ``padding_included`` the share of foreground label pixels that lie in
    the padding and both mean F1 (fg) over every pixel. Returns the scores and, for the first ``keep`` photos,
    sample rows ``[photo, truth overlay (padding dimmed), whole-photo overlay, parse-path overlay]`` (each
    (S, S, 3) uint8).
    """
    if predict is None:
        def predict(images: np.ndarray) -> np.ndarray:
            return parser.labels(images)
    shown = {name: np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64) for name in ("whole_photo", "parse_path")}
    every = {name: np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64) for name in ("whole_photo", "parse_path")}
    faces_found = photos_with_face = 0
    rows: list[list[np.ndarray]] = []
    for start in range(0, len(reframed), batch_size):
        images = reframed.images[start:start + batch_size]
        labels = reframed.labels[start:start + batch_size]
        footprints = reframed.footprints[start:start + batch_size]
        whole = predict(images)
        for image, label, inside, whole_labels in zip(images, labels, footprints, whole):
            parsed = parse_photo(image, parser, framing, settings.min_face_size, settings.detector, settings.upsample)
            for name, pred in (("whole_photo", whole_labels), ("parse_path", parsed.labels)):
                shown[name] += confusion_matrix(label[inside], pred[inside])
                every[name] += confusion_matrix(label, pred)
            faces_found += len(parsed.faces)
            photos_with_face += bool(parsed.faces)
            if len(rows) < keep:
                truth = overlay(image, label)
                truth[~inside] //= 2
                rows.append([image, truth, overlay(image, whole_labels), overlay(image, parsed.labels)])
    foreground = every["parse_path"][1:].sum()
    padding_foreground = foreground - shown["parse_path"][1:].sum()
    scores = {"images": len(reframed), "faces_found": faces_found, "photos_with_face": photos_with_face,
              **{name: segmentation_report(cm) for name, cm in shown.items()},
              "padding_included": {
                  "foreground_share_in_padding": float(padding_foreground / foreground) if foreground else 0.0,
                  **{f"{name}_f1_fg": segmentation_report(cm)["mean_f1_fg"] for name, cm in every.items()}}}
    return scores, rows


def benchmark_reframed(onnx_path: Path, framing_path: Path, cache_dir: Path, settings: ReframedParams, threads: int,
                       aligned_f1_fg: float | None = None):
    """The reframed test set drawn from the cache's test split and scored by :func:`score_reframed` with the ONNX
    export, the model ``faceparse`` runs, for both scores. (The aligned split is scored with the torch checkpoint;
    ``onnx_torch_pixel_agreement`` in the metrics says how closely the two agree. ONNX Runtime runs the whole
    photos about five times faster than torch on a CPU, which keeps this within the benchmark's time budget.)

    Returns (metrics dict, sample rows for a PNG sheet); with ``aligned_f1_fg`` (the aligned test split's mean
    F1 over the foreground classes) the metrics also hold how far each reframed score falls below it.
    """
    start = time.perf_counter()
    test = CachedSplit(cache_dir, "test")
    reframed = reframed_set(test.images, test.labels, settings)
    scores, rows = score_reframed(reframed, ParserModel(onnx_path, threads), Framing.load(framing_path), settings,
                                  keep=settings.sample_rows)
    if aligned_f1_fg is not None:
        for name in ("whole_photo", "parse_path"):
            reframed_f1 = scores[name]["mean_f1_fg"]
            scores[f"aligned_minus_{name}_f1_fg"] = None if reframed_f1 is None else aligned_f1_fg - reframed_f1
    log.info("reframed set: %d photos, faces found in %d, scored in %.1f s", len(reframed),
             scores["photos_with_face"], time.perf_counter() - start)
    return scores, rows


def benchmark_masked_parser(checkpoint: Path, masks_dir: Path, cache_dir: Path, threads: int) -> dict:
    """The parser under the mask on the masks stage's test photos (:func:`masked_region_scores`), with the
    torch checkpoint the aligned scores use: the ``masked`` block of ``metrics/parser.json``."""
    torch.set_num_threads(threads)
    model, _ = load_parser(checkpoint)
    return masked_region_scores(lambda images: predict_labels(model, images), MaskedPhotos(masks_dir, "test"),
                                CachedSplit(cache_dir, "test"))


def benchmark_mask_finder(onnx_path: Path, framing_path: Path, masks_dir: Path, cache_dir: Path, threads: int) -> dict:
    """``metrics/mask_finder.json``: the finder's export scored on the masks stage's test split (IoU, found
    rates, dilated recall; :func:`stages.core.mask_finding.training.score_mask_finder`), where "the face" is the
    framing's template hull (:func:`stages.core.mask_finding.finder.face_pixels`), as ``faceparse`` counts it."""
    framing = Framing.load(framing_path)
    size = int(CachedSplit(cache_dir, "test").images.shape[1])
    return score_finder_export(onnx_path, masks_dir, cache_dir, threads, face_pixels(framing.template, framing.size, size))
