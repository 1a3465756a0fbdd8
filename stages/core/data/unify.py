"""Turning every configured source into unified 11-class labels, a manifest and a skip report.

For each item an adapter lists, the photo and its label are read and checked. A problem either stops
the run with an error naming the file (``on_error: raise``) or becomes a counted skip listed in
``report.csv`` (``on_error: skip``). A label is never written wrong: sizes that disagree are resized
only by a whole factor (or the source's ``label_scale``), with nearest-neighbour so no new class
values appear.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pandas as pd
from pydantic import Field
from tqdm import tqdm

from stages.core.common.classes import CLASS_NAMES, NUM_CLASSES
from stages.core.common.io import BadInputError, atomic_path, write_png
from stages.core.common.params import ParamsSection
from stages.core.data.datasets import DatasetAdapter, Item, build_adapter, hash_split

log = logging.getLogger(__name__)

PIXEL_COLUMNS = [f"px_{name}" for name in CLASS_NAMES]
MANIFEST_COLUMNS = ["id", "source", "item_id", "split", "image", "label", "width", "height", *PIXEL_COLUMNS]
REPORT_COLUMNS = ["source", "item_id", "file", "problem"]
ASPECT_TOLERANCE = 0.01
MIN_IMAGE_SIDE = 16


class UnifySettings(ParamsSection):
    """The ``remap`` section: split fractions (ids are hashed with ``split_salt``), what to do with a bad item
    (``skip``: count and list it in report.csv; ``raise``: stop), the unusable fraction of a source that stops the
    run anyway, and worker processes."""

    SECTION = "remap"
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.15, ge=0, lt=1)
    split_salt: str = ""
    on_error: Literal["skip", "raise"] = "skip"
    max_skip_fraction: float = Field(0.05, ge=0, le=1)
    workers: int = Field(2, ge=1)


def match_label_size(label: np.ndarray, image_shape: tuple[int, int], label_path: str | Path,
                     label_scale: float | None = None) -> np.ndarray:
    """Return ``label`` ``(h, w)`` at ``image_shape`` (H, W), resized with nearest-neighbour when allowed.

    Allowed: the same size; a whole factor, the same on both axes, in either direction (CelebAMask-HQ's
    512² labels beside its 1024² photos); or ``label_scale`` (image size / label size, the source's
    ``label_scale`` option). Anything else raises :class:`BadInputError` naming the file and both sizes.
    """
    if label.shape == image_shape:
        return label
    (lh, lw), (ih, iw) = label.shape, image_shape
    whole_up = ih % lh == 0 and iw % lw == 0 and ih // lh == iw // lw
    whole_down = lh % ih == 0 and lw % iw == 0 and lh // ih == lw // iw
    named = label_scale is not None and abs(lh * label_scale - ih) <= 0.5 and abs(lw * label_scale - iw) <= 0.5
    if not (whole_up or whole_down or named):
        if abs(lw / lh - iw / ih) > ASPECT_TOLERANCE * (iw / ih):
            reason = "aspect ratios differ"
        else:
            reason = (f"the image is {iw / lw:.4g} times the label, not a whole factor"
                      + (f" nor label_scale {label_scale:g}" if label_scale is not None else "")
                      + "; set the source's label_scale if the dataset's labels use that fixed scale")
        raise BadInputError(label_path, f"label is {lw}x{lh} but the image is {iw}x{ih}: {reason}")
    return cv2.resize(label, (iw, ih), interpolation=cv2.INTER_NEAREST)


def _label_scale(source: str, options: dict[str, Any]) -> float | None:
    """``data.<source>.label_scale`` (image size / label size) as a positive number, or ``None`` when unset."""
    value = options.get("label_scale")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"data.{source}.label_scale must be a positive number (image size / label size), "
                         f"not {value!r}")
    return float(value)


@dataclass(frozen=True)
class _Job:
    source: str
    adapter: DatasetAdapter
    out_dir: Path
    settings: UnifySettings
    label_scale: float | None = None


def _unify_item(job: _Job, item: Item) -> dict[str, Any]:
    """Read, check and write one item. Returns a manifest row, or a report row under key ``problem``."""
    try:
        image = job.adapter.read_image(item)
        if min(image.shape[:2]) < MIN_IMAGE_SIDE:
            raise BadInputError(item.image_path, f"image is {image.shape[1]}x{image.shape[0]}: too small to parse "
                                                 f"a face (minimum {MIN_IMAGE_SIDE} px a side)")
        label = job.adapter.read_label(item)
        if label.ndim != 2 or label.dtype != np.uint8 or (label.size and label.max() >= NUM_CLASSES):
            raise BadInputError(item.label_path or item.image_path, "adapter returned an invalid unified label")
        label = match_label_size(label, image.shape[:2], item.label_path or item.image_path, job.label_scale)
        landmarks = job.adapter.read_landmarks(item)
    except BadInputError as exc:
        if job.settings.on_error == "raise":
            raise
        return {"source": job.source, "item_id": item.item_id, "file": exc.path, "problem": exc.problem}
    label_path = job.out_dir / job.source / "labels" / f"{item.item_id}.png"
    write_png(label_path, label)
    split = item.split or hash_split(f"{job.source}/{item.item_id}", job.settings.val_fraction,
                                     job.settings.test_fraction, job.settings.split_salt)
    counts = np.bincount(label.ravel(), minlength=NUM_CLASSES)
    row = {
        "id": f"{job.source}/{item.item_id}", "source": job.source, "item_id": item.item_id, "split": split,
        "image": str(item.image_path), "label": str(label_path), "width": image.shape[1], "height": image.shape[0],
        **{col: int(n) for col, n in zip(PIXEL_COLUMNS, counts)},
    }
    if landmarks is not None:
        row["landmarks"] = np.asarray(landmarks, np.float32).round(3).tolist()
    return row


_WORKER_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job
    cv2.setNumThreads(1)


def _worker(item: Item) -> dict[str, Any]:
    assert _WORKER_JOB is not None
    return _unify_item(_WORKER_JOB, item)


def unify_source(source: str, root: Path, options: dict[str, Any], out_dir: Path,
                 settings: UnifySettings) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list]]:
    """Unify one source. Returns (manifest, report, landmarks by id)."""
    adapter = build_adapter(source, root, options)
    items = adapter.items()
    if not items:
        raise RuntimeError(f"source {source!r} at {root}: the dataset is empty (no photos found)")
    job = _Job(source, adapter, out_dir, settings, _label_scale(source, options))
    desc = f"remap {source}"
    if settings.workers > 1 and len(items) > 32:
        ctx = mp.get_context("forkserver")  # plain fork can deadlock once OpenCV or torch run threads
        with ctx.Pool(settings.workers, initializer=_init_worker, initargs=(job,)) as pool:
            results = list(tqdm(pool.imap(_worker, items, chunksize=16), total=len(items), desc=desc))
    else:
        results = [_unify_item(job, item) for item in tqdm(items, desc=desc)]
    rows = [r for r in results if "problem" not in r]
    problems = [r for r in results if "problem" in r]
    landmarks = {r["id"]: r.pop("landmarks") for r in rows if "landmarks" in r}
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    report = pd.DataFrame(problems, columns=REPORT_COLUMNS)
    for problem in problems:
        log.warning("skipped %s/%s: %s: %s", source, problem["item_id"], problem["file"], problem["problem"])
    if len(problems) > settings.max_skip_fraction * len(items):
        raise RuntimeError(
            f"source {source!r}: {len(problems)} of {len(items)} items were unusable, more than "
            f"remap.max_skip_fraction={settings.max_skip_fraction}; see the first: {problems[0]['file']}: "
            f"{problems[0]['problem']}")
    if manifest.empty:
        raise RuntimeError(f"source {source!r} at {root}: no usable items")
    return manifest, report, landmarks


def write_landmarks(path: Path, landmarks: dict[str, list]) -> None:
    """``{id: [[x, y] * 68]}`` in original image pixels, for the items whose source has landmarks."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(landmarks, sort_keys=True))
