"""DVC stage ``masks``: synthetic medical masks on the cached faces (``python -m stages.masks``).

Reads params ``masks`` and ``data/cache/{split}_{images,landmarks}.npy`` + ``{split}_ids.csv``;
writes ``data/masks/`` (see :mod:`stages.core.masks.cache_masking`).
"""
from __future__ import annotations

import logging
from pathlib import Path

from stages.core.common.params import section
from stages.core.masks.cache_masking import run_masks
from stages.core.masks.config import MaskParams

CACHE_DIR = Path("data/cache")
OUT_DIR = Path("data/masks")

log = logging.getLogger("stages.masks")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = MaskParams.from_dict(section("masks"))
    manifest, failures = run_masks(CACHE_DIR, OUT_DIR, params)
    total = len(manifest) + len(failures)
    log.info("masked %d of %d images (%d failures listed in %s)", len(manifest), total, len(failures), OUT_DIR / "report.csv")
    if len(manifest):
        log.info("coverage percentiles 5/50/95: %s", manifest["coverage"].quantile([0.05, 0.5, 0.95]).round(3).tolist())


if __name__ == "__main__":
    main()
