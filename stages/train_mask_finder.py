"""DVC stage `train_mask_finder`: learn where the face mask is on an aligned face; write the finder and its export.

Reads params ``mask_finder``. Reads ``data/masks/`` (masked photos and their exact regions) and ``data/cache/``
(clean photos). Writes ``models/mask_finder.pt``, ``models/mask_finder.onnx`` (with its threshold, minimum
region and dilation as metadata) and the dvclive log ``metrics/train_mask_finder/``. It never reads the parser.
"""
from __future__ import annotations

import logging
from pathlib import Path

from dvclive import Live

from stages.core.common.torch_utils import save_checkpoint
from stages.core.mask_finding.training import MaskFinderParams, checkpoint_payload, export_finder_onnx, fit_mask_finder

MASKS_DIR, CACHE_DIR, MODELS = Path("data/masks"), Path("data/cache"), Path("models")
LIVE_DIR = Path("metrics/train_mask_finder")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = MaskFinderParams.load()
    with Live(dir=str(LIVE_DIR), save_dvc_exp=False, dvcyaml=None) as live:
        run = fit_mask_finder(cfg, MASKS_DIR, CACHE_DIR, live=live)
        live.summary["best_epoch"] = run.best["epoch"]
        live.summary["seconds_per_epoch"] = round(run.seconds_per_epoch, 2)
    save_checkpoint(MODELS / "mask_finder.pt", checkpoint_payload(run, cfg))
    export_finder_onnx(run.model, MODELS / "mask_finder.onnx", cfg.settings())


if __name__ == "__main__":
    main()
