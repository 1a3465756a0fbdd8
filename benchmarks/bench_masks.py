"""Masks on real faces: fitted %, placement pass %, coverage percentiles and faces per second.

Reads the CelebAMask-HQ subset JPEGs (``../shared/data/celebamask-hq-subset``), resizes each to
``--size``² with cv2.INTER_AREA in memory, then times landmarking (dlib) + fitting + placement check.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_masks.py --limit 300
"""
from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from stages.core.masks.config import MaskParams
from stages.core.masks.fitting import FitError
from stages.core.masks.photo import mask_photo

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "celebamask-hq-subset"


def load_faces(root: Path, limit: int, size: int) -> list[tuple[str, np.ndarray]]:
    """``(name, (size, size, 3) uint8 RGB)`` for the first ``limit`` images, sorted by name."""
    paths = sorted((root / "images").glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)[:limit]
    if not paths:
        raise SystemExit(f"{root / 'images'}: no JPEGs found (the real data lives in ../shared/data)")
    faces = []
    for path in tqdm(paths, desc="reading", unit="img", mininterval=2):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"{path}: unreadable image")
        faces.append((path.name, cv2.resize(bgr[..., ::-1], (size, size), interpolation=cv2.INTER_AREA)))
    return faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failures", type=Path, default=None, help="write failures (name, reason) to this CSV")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    params = MaskParams(seed=args.seed)
    faces = load_faces(args.root.resolve(), args.limit, args.size)
    coverages, seconds, first_try, reasons, types = [], [], 0, [], collections.Counter()
    failures = []
    for index, (name, image) in enumerate(tqdm(faces, desc="masking", unit="face", mininterval=2)):
        rng = np.random.default_rng([args.seed, index])
        start = time.perf_counter()
        try:
            photo = mask_photo(image, None, rng, params)
        except FitError as exc:
            seconds.append(time.perf_counter() - start)
            reason = str(exc)
            reasons.append(reason.split(":")[0] if not reason.startswith("placement") else "placement")
            failures.append((name, reason))
            continue
        seconds.append(time.perf_counter() - start)
        coverages.append(photo.coverage)
        types[photo.mask_type] += 1
        first_try += photo.first_attempt
    total, fitted = len(faces), len(coverages)
    placement_fail = sum(r == "placement" for r in reasons)
    print(f"faces: {total}  fitted: {fitted} ({100 * fitted / total:.1f}%)")
    print(f"placement check passed on the first fit: {first_try} of {fitted + placement_fail} fits "
          f"({100 * first_try / max(fitted + placement_fail, 1):.1f}%); after up to {params.fit_attempts} jitter draws: "
          f"{fitted} ({100 * fitted / max(fitted + placement_fail, 1):.1f}%)")
    print("failures by reason:", dict(collections.Counter(reasons)))
    print("mask types:", dict(types))
    if coverages:
        pct = np.percentile(coverages, [0, 5, 25, 50, 75, 95, 100])
        print("coverage percentiles 0/5/25/50/75/95/100 %:", " ".join(f"{100 * v:.1f}" for v in pct))
    per_face = np.asarray(seconds)
    print(f"time per face (landmarks + fit + check, {args.size}²): median {1000 * np.median(per_face):.1f} ms, "
          f"mean {1000 * per_face.mean():.1f} ms -> {1 / np.median(per_face):.1f} faces/s (median), "
          f"{len(per_face) / per_face.sum():.1f} faces/s (overall), 1 process")
    if args.failures:
        args.failures.parent.mkdir(parents=True, exist_ok=True)
        args.failures.write_text("name,reason\n" + "".join(f'{n},"{r}"\n' for n, r in failures))


if __name__ == "__main__":
    main()
