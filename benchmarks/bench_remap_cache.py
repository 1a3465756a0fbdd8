"""Remap + cache throughput on the real CelebAMask-HQ subset (3,000 pairs), and where the time goes.

Usage: ``.venv/bin/python benchmarks/bench_remap_cache.py [--repeats 3] [--limit N] [--size 256] [--workers 2]``

Prints, per repeat and as medians: remap s, cache s, and end-to-end images/s (items / (remap + cache)).
Then a single-process phase breakdown (median ms per item) over a sample, to say what bounds it:
decode of the JPEG photo, label read + mapping, label PNG write, cache decode + resize.
Everything is written under a temporary folder that is deleted afterwards.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.core.common.io import read_image, read_label, write_png
from stages.core.common.splits import SPLITS
from stages.core.data.cache_arrays import pack_split, square_resize
from stages.core.data.datasets import build_adapter
from stages.core.data.unify import UnifySettings, unify_source

REAL = ROOT.parent / "shared" / "data" / "celebamask-hq-subset"


def run_once(limit: int | None, size: int, workers: int, work: Path) -> tuple[int, float, float]:
    """One remap + cache pass. Returns (items, remap seconds, cache seconds)."""
    settings = UnifySettings(workers=workers)
    unified = work / "unified"
    t0 = time.perf_counter()
    if limit:
        from stages.core.data import unify

        original = unify.build_adapter

        def limited(source, root, options):
            adapter = original(source, root, options)
            items = adapter.items()[:limit]
            adapter.items = lambda: items
            return adapter

        unify.build_adapter = limited
        try:
            manifest, _, landmarks = unify_source("celebamask_hq", REAL, {}, unified, settings)
        finally:
            unify.build_adapter = original
    else:
        manifest, _, landmarks = unify_source("celebamask_hq", REAL, {}, unified, settings)
    t1 = time.perf_counter()
    cache = work / "cache"
    for split in SPLITS:
        pack_split(manifest, landmarks, split, size, cache, workers)
    t2 = time.perf_counter()
    return len(manifest), t1 - t0, t2 - t1


def phase_breakdown(sample: int, size: int, work: Path) -> dict[str, float]:
    """Median ms per item of each phase, single process, over the first ``sample`` items."""
    cv2.setNumThreads(1)
    adapter = build_adapter("celebamask_hq", REAL, {})
    phases: dict[str, list[float]] = {k: [] for k in (
        "remap: decode photo (JPEG 512²)", "remap: read + map label (PNG)", "remap: write label PNG",
        "cache: decode photo again", "cache: read unified label", "cache: pad + resize both")}
    names = list(phases)
    for item in adapter.items()[:sample]:
        t = [time.perf_counter()]
        image = adapter.read_image(item)
        t.append(time.perf_counter())
        label = adapter.read_label(item)
        t.append(time.perf_counter())
        out = work / "phase" / f"{item.item_id}.png"
        write_png(out, label)
        t.append(time.perf_counter())
        image = read_image(item.image_path)
        t.append(time.perf_counter())
        label = read_label(out).astype(np.uint8)
        t.append(time.perf_counter())
        square_resize(image, label, None, size)
        t.append(time.perf_counter())
        for name, a, b in zip(names, t, t[1:]):
            phases[name].append((b - a) * 1000)
    return {name: statistics.median(values) for name, values in phases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pairs")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=200, help="items in the phase breakdown")
    args = parser.parse_args()
    if not (REAL / "pairs.csv").exists():
        raise SystemExit(f"real data not found at {REAL}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_remap_cache_") as tmp:
        for repeat in range(args.repeats):
            work = Path(tmp) / f"run{repeat}"
            n, remap_s, cache_s = run_once(args.limit, args.size, args.workers, work)
            rows.append({"items": n, "remap_s": remap_s, "cache_s": cache_s,
                         "remap_img_s": n / remap_s, "cache_img_s": n / cache_s, "total_img_s": n / (remap_s + cache_s)})
            print(f"repeat {repeat}: {rows[-1]}", flush=True)
        table = pd.DataFrame(rows)
        print(f"\nmedians over {args.repeats} repeats, {args.workers} workers, cache size {args.size}:")
        print(table.median().round(2).to_string())
        print(f"\nsingle-process phase breakdown, median ms per item over {args.sample} items:")
        phases = phase_breakdown(args.sample, args.size, Path(tmp))
        total = sum(phases.values())
        for name, ms in phases.items():
            print(f"  {name:36s} {ms:6.2f} ms  ({ms / total:5.1%})")
        print(f"  {'sum':36s} {total:6.2f} ms  -> {1000 / total:.0f} images/s on one core")


if __name__ == "__main__":
    main()
