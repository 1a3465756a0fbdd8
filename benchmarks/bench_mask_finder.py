"""The mask finder's threshold and minimum region, swept on val; and what it finds on real photos (reported only).

``val`` (the default): for a trained finder (``--finder``, ``.pt`` or ``.onnx``), on the val split of the masks
stage (``--masks``) and the cache (``--cache``), the probabilities are computed once and each pair of
``--thresholds`` x ``--min-regions`` is scored:

* masked val faces: ``found`` (share with a region of at least ``min_region`` of the face), ``p5`` (the 5th
  percentile of the region's share of the face: the margin above ``min_region``) and ``IoU`` (pixels summed over
  the split, the region at the threshold against the exact one);
* clean val faces: ``false`` (share with a region found where there is no mask);
* ``close-up`` masked and clean val faces: the same faces as if the photo ended inside the crop, reflected
  beyond its edges as ``faceparse`` fills a crop beyond a photo
  (:func:`stages.core.mask_finding.training.cut_at_photo_edge`, drawn from ``(--seed, row)``): found and false;
* the same clean faces with one confounder painted (:mod:`stages.core.mask_finding.confounders`; red lips, a
  beard, dark skin below the nose, a scarf leaving the mouth free; each face once per kind, drawn from
  ``(--seed, kind, row)``, unlike training's draws): the false-find rate per kind and over all.

"The face" is the framing's template hull (``--framing``, scaled to the cache's side), as ``faceparse`` counts
it. Choose the settings here, not on the real photos.

``photos``: the share of ``--photos`` (``with_mask/`` and ``without_mask/``, default
``../shared/data/masked-faces``) where ``faceparse unmask``'s path (CenterFace, the alignment by the upper face,
the inpainter's crop side ``--crop-size``) finds a mask, at the finder's stored settings or at each
``--thresholds`` x ``--min-regions`` given. Report these; do not tune on them.

    .venv/bin/python benchmarks/bench_mask_finder.py val [--finder models/mask_finder.pt] [--masks data/masks]
    .venv/bin/python benchmarks/bench_mask_finder.py photos [--finder models/mask_finder.onnx]
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np

from stages.core.data.cache_arrays import CachedSplit
from stages.core.data.masked_arrays import MaskedPhotos
from stages.core.mask_finding.confounders import KINDS, paint_confounders
from stages.core.mask_finding.finder import MaskFinder, face_pixels
from stages.core.mask_finding.training import cut_at_photo_edge

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def fractions(probs: np.ndarray, threshold: float, face_area: float) -> np.ndarray:
    """``(N,)`` share of the face each map's region at ``threshold`` covers."""
    return (probs >= threshold).reshape(len(probs), -1).sum(axis=1) / face_area


def painted_val(clean: CachedSplit, kind: str, seed: int) -> np.ndarray:
    """The clean val faces with ``kind`` painted on each one its labels place it on."""
    out = []
    for row in range(len(clean)):
        image, done = paint_confounders(np.asarray(clean.images[row]), np.asarray(clean.labels[row]),
                                        np.random.default_rng([seed, KINDS.index(kind), row]), (kind,))
        if done:
            out.append(image)
    return np.stack(out)


def close_ups(images: np.ndarray, seed: int) -> np.ndarray:
    """``images`` (N, S, S, 3), each cut at the photo's edge as a close-up (row ``r`` draws from ``(seed, r)``)."""
    blank = np.zeros(images.shape[1:3], bool)
    return np.stack([cut_at_photo_edge(image, blank, np.random.default_rng([seed, row]))[0]
                     for row, image in enumerate(images)])


def sweep_val(args) -> None:
    finder = MaskFinder(args.finder, args.threads)
    masked, clean = MaskedPhotos(args.masks, "val"), CachedSplit(args.cache, "val")
    side = int(clean.images.shape[1])
    from stages.core.inference.alignment import Framing

    framing = Framing.load(args.framing)
    face_area = face_pixels(framing.template, framing.size, side)
    masked_probs = finder.probabilities(np.asarray(masked.masked))
    truths = np.asarray(masked.masks).astype(bool)
    clean_probs = finder.probabilities(np.asarray(clean.images))
    close_masked_probs = finder.probabilities(close_ups(np.asarray(masked.masked), args.seed))
    close_clean_probs = finder.probabilities(close_ups(np.asarray(clean.images), args.seed))
    painted = {kind: finder.probabilities(painted_val(clean, kind, args.seed)) for kind in KINDS}
    print(f"{args.finder} on {args.masks} / {args.cache} val: {len(masked)} masked, {len(clean)} clean faces, "
          + ", ".join(f"{len(p)} {k}" for k, p in painted.items())
          + f"; face = framing hull ({face_area:.0f} of {side}² px); stored settings {finder.settings}")
    print("| threshold | min_region | masked found | masked p5 | IoU | clean false | close-up found | "
          "close-up false | confounded false | " + " | ".join(KINDS) + " |")
    print("|" + "---|" * (9 + len(KINDS)))
    for threshold in args.thresholds:
        raw = masked_probs >= threshold
        iou = float((raw & truths).sum() / max((raw | truths).sum(), 1))
        masked_fr = fractions(masked_probs, threshold, face_area)
        clean_fr = fractions(clean_probs, threshold, face_area)
        close_masked_fr = fractions(close_masked_probs, threshold, face_area)
        close_clean_fr = fractions(close_clean_probs, threshold, face_area)
        kind_fr = {k: fractions(p, threshold, face_area) for k, p in painted.items()}
        for min_region in args.min_regions:
            per_kind = {k: int((f >= min_region).sum()) for k, f in kind_fr.items()}
            total = sum(len(f) for f in kind_fr.values())
            print(f"| {threshold:.2f} | {min_region:.3f} | {int((masked_fr >= min_region).sum())}/{len(masked)} | "
                  f"{np.percentile(masked_fr, 5):.2f} | {iou:.3f} | {int((clean_fr >= min_region).sum())}/{len(clean)} | "
                  f"{int((close_masked_fr >= min_region).sum())}/{len(masked)} | "
                  f"{int((close_clean_fr >= min_region).sum())}/{len(clean)} | "
                  f"{sum(per_kind.values())}/{total} | "
                  + " | ".join(f"{per_kind[k]}/{len(kind_fr[k])}" for k in KINDS) + " |")


def photos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def count_photos(args) -> None:
    from stages.core.common.io import read_image
    from stages.core.inference.alignment import UPPER_FACE, Framing
    from stages.core.inference.photo_masks import find_photo_masks
    from stages.core.mask_finding.finder import regions_from_probabilities

    finder, framing = MaskFinder(args.finder, args.threads), Framing.load(args.framing)
    stored = finder.settings
    grid = [(t, m) for t in (args.thresholds or [stored.threshold]) for m in (args.min_regions or [stored.min_region])]
    scaled = framing if framing.size == args.crop_size else framing.scaled_to(args.crop_size)
    face_area = face_pixels(scaled.template, scaled.size, args.crop_size)
    counts = {kind: {setting: 0 for setting in grid} for kind in ("with_mask", "without_mask")}
    totals = {}
    for kind in counts:
        paths = photos_in(args.photos / kind)
        totals[kind] = len(paths)
        for path in paths:
            found = find_photo_masks(read_image(path), finder, framing, args.crop_size, args.min_face_size,
                                     "centerface", 1, UPPER_FACE)
            if not found.faces:
                continue
            probs = finder.probabilities(np.stack([face.crop for face in found.faces]))
            for threshold, min_region in grid:
                settings = replace(stored, threshold=threshold, min_region=min_region)
                if any(r.found for r in regions_from_probabilities(probs, settings, face_area)):
                    counts[kind][(threshold, min_region)] += 1
    print(f"{args.finder} on {args.photos} (faceparse unmask's path: CenterFace, upper-face alignment, "
          f"{args.crop_size} px crops); photos with a mask found")
    print("| threshold | min_region | masked photos | unmasked photos (false) |\n|---|---|---|---|")
    for threshold, min_region in grid:
        print(f"| {threshold:.2f} | {min_region:.3f} | {counts['with_mask'][(threshold, min_region)]} of "
              f"{totals['with_mask']} | {counts['without_mask'][(threshold, min_region)]} of {totals['without_mask']} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=("val", "photos"), default="val")
    parser.add_argument("--finder", type=Path, default=ROOT / "models" / "mask_finder.pt", help="[%(default)s]")
    parser.add_argument("--framing", type=Path, default=ROOT / "models" / "framing.json", help="[%(default)s]")
    parser.add_argument("--masks", type=Path, default=ROOT / "data" / "masks", help="[%(default)s]")
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "cache", help="[%(default)s]")
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "masked-faces",
                        help="photos mode: a folder with with_mask/ and without_mask/ [%(default)s]")
    parser.add_argument("--thresholds", type=float, nargs="*", help="[val: 0.3 0.4 0.5 0.6 0.7; photos: stored]")
    parser.add_argument("--min-regions", type=float, nargs="*",
                        help="fractions of the face [val: 0.02 0.05 0.1 0.15 0.2 0.25; photos: stored]")
    parser.add_argument("--crop-size", type=int, default=128, help="photos: the inpainter's side [%(default)s]")
    parser.add_argument("--min-face-size", type=int, default=40, help="[%(default)s]")
    parser.add_argument("--seed", type=int, default=1, help="val: the confounders' draws [%(default)s]")
    parser.add_argument("--threads", type=int, default=1, help="[%(default)s]")
    args = parser.parse_args(argv)
    if args.mode == "val":
        args.thresholds = args.thresholds or [0.3, 0.4, 0.5, 0.6, 0.7]
        args.min_regions = args.min_regions or [0.02, 0.05, 0.1, 0.15, 0.2, 0.25]
        sweep_val(args)
    else:
        count_photos(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
