"""Speed of the ``faceparse enhance`` edits on one synthetic face, OpenCV on 2 threads.

The face is drawn by stages/core/data/synthetic_faces.py (a face with an open mouth, so every edited class is there)
and its exact label, one-hot and blurred, stands in for the parser's probabilities. Timed: ``enhance`` at the
params defaults (the argmax of the probabilities included), the same with every edit on, the argmax alone,
and each edit alone given the argmax (at its default strength, or 0.5 where the default is 0). Median and p90
of ``--runs`` after warm-up, in milliseconds.

    HF_HUB_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1 .venv/bin/python benchmarks/bench_enhance.py [--size 512 --runs 50]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from stages.core.common.classes import class_id
from stages.core.data.synthetic_faces import face_rng, render_face
from stages.core.inference.enhance import EDITS, EnhanceParams, apply_edit, class_labels, enhance, soft_probabilities


def timings_ms(fn: Callable[[], object], runs: int, warmup: int = 3) -> tuple[float, float]:
    """Median and p90 wall time of ``fn()`` over ``runs`` calls, in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--face", type=int, default=23, help="index of the synthetic face (seed 0)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)

    face = render_face(face_rng(0, args.face), args.size)
    probs = soft_probabilities(face.label, sigma=1.5)
    labels = class_labels(probs)
    defaults = EnhanceParams()
    all_on = defaults.model_copy(update={name: getattr(defaults, name) or 0.5 for name in EDITS})
    pixels = {name: int((labels == class_id(name)).sum()) for name in ("face", "hair", "eyebrows", "eyes", "lips", "teeth")}

    print(f"face {args.face} at {args.size}x{args.size}, {args.threads} OpenCV threads, {args.runs} runs; "
          f"class pixels {pixels}")
    print(f"{'what':<38}{'median ms':>10}{'p90 ms':>9}")
    rows = [
        ("enhance, defaults (with argmax)", lambda: enhance(face.image, probs, defaults)),
        ("enhance, every edit on", lambda: enhance(face.image, probs, all_on)),
        ("enhance, every edit on, labels given", lambda: enhance(face.image, probs, all_on, labels)),
        ("argmax of probs", lambda: class_labels(probs)),
    ]
    for name in EDITS:
        rows.append((f"  {name} at {getattr(all_on, name):g}",
                     lambda name=name: apply_edit(name, face.image, probs, all_on, labels)))
    for what, fn in rows:
        median, p90 = timings_ms(fn, args.runs)
        print(f"{what:<38}{median:>10.2f}{p90:>9.2f}")


if __name__ == "__main__":
    main()
