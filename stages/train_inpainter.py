"""DVC stage `train_inpainter`: learn to remove the masks stage's masks; write ``models/inpainter.pt`` and ``.onnx``.

Reads params ``inpainter``. Reads ``data/masks/`` and ``data/cache/`` (photos and true labels; never the parser).
Logs to ``metrics/train_inpainter/`` (curves, and a grid of val samples per epoch under ``plots/images``).
"""
from __future__ import annotations

import logging
from pathlib import Path

from dvclive import Live

from stages.core.inpainting import InpainterParams, export_inpainter_onnx, fit_inpainter
from stages.core.plots import save_learning_curves
from stages.core.torch_utils import save_checkpoint

MASKS_DIR, CACHE_DIR, MODELS = Path("data/masks"), Path("data/cache"), Path("models")
LIVE_DIR = Path("metrics/train_inpainter")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = InpainterParams.load()
    with Live(dir=str(LIVE_DIR), save_dvc_exp=False, dvcyaml=None) as live:
        run = fit_inpainter(cfg, MASKS_DIR, CACHE_DIR, live=live, checkpoint_path=MODELS / "inpainter_last.pt")
        live.summary["seconds_per_epoch"] = round(run.seconds_per_epoch, 2)
    save_checkpoint(MODELS / "inpainter.pt", {"state_dict": run.model.state_dict(), "config": cfg.as_dict(),
                                              "history": run.history, "input_size": run.input_size})
    export_inpainter_onnx(run.model, MODELS / "inpainter.onnx", run.input_size)
    save_learning_curves(run.history, Path("metrics/plots/inpainter_training.png"), "inpainter")


if __name__ == "__main__":
    main()
