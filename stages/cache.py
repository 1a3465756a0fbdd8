"""DVC stage `cache`: unified photos and labels -> packed, memory-mappable arrays at ``cache.size``.

Reads params ``cache``. Reads ``data/unified/`` (and the photos it points to). Writes ``data/cache/``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from stages.core.common.classes import CLASS_NAMES
from stages.core.common.io import write_json_atomic
from stages.core.common.splits import SPLITS
from stages.core.common.staging import staged_dir
from stages.core.data.cache_arrays import CacheParams, pack_split

UNIFIED_DIR = Path("data/unified")
OUT_DIR = Path("data/cache")


def main() -> None:
    params = CacheParams.load()
    size, workers = params.size, params.workers
    manifest = pd.read_csv(UNIFIED_DIR / "manifest.csv", dtype={"item_id": str})
    landmarks = json.loads((UNIFIED_DIR / "landmarks.json").read_text())
    frequencies = {}
    with staged_dir(OUT_DIR) as out:
        for split in SPLITS:
            counts = pack_split(manifest, landmarks, split, size, out, workers)
            total = max(int(counts.sum()), 1)
            frequencies[split] = {
                "images": int((manifest["split"] == split).sum()),
                "pixel_frequency": {name: round(int(c) / total, 6) for name, c in zip(CLASS_NAMES, counts)},
            }
        write_json_atomic(out / "class_frequencies.json", {"size": size, "splits": frequencies})


if __name__ == "__main__":
    main()
