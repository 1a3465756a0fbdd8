"""DVC stage `train_inpainter`: learn to remove the masks stage's masks; write ``models/inpainter.pt`` and ``.onnx``.

Reads params ``inpainter``. Reads ``data/masks/`` and ``data/cache/`` (photos and true labels), and with
``inpainter.parser_guide`` > 0 ``models/parser.pt``: its mirror-averaged labels on the masked train and val photos
are the guide that inference gives the generator (each torchrun process computes them for itself).
Logs to ``metrics/train_inpainter/`` (curves, and a grid of val samples per epoch under ``plots/images``).
``inpainter.devices`` > 1 trains in that many DDP processes under torchrun, as ``train_parser`` does; rank 0 writes.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from dvclive import Live

from stages.core.common.distributed import training_processes
from stages.core.common.torch_utils import save_checkpoint
from stages.core.inference.parsing import ParserModel
from stages.core.inpainting.training import InpainterParams, export_inpainter_onnx, fit_inpainter
from stages.core.plots import save_learning_curves

MASKS_DIR, CACHE_DIR, MODELS = Path("data/masks"), Path("data/cache"), Path("models")
LIVE_DIR = Path("metrics/train_inpainter")


def parser_guides(parser_path: Path, threads: int, masks_dir: Path = MASKS_DIR,
                  splits: tuple[str, ...] = ("train", "val")) -> dict[str, np.ndarray]:
    """``{split: (N, S, S) uint8}``: the parser's mirror-averaged labels on each split's masked photos, as
    ``faceparse unmask`` and the benchmark guide the generator."""
    parser = ParserModel(parser_path, threads)
    return {split: parser.mirror_averaged_labels(np.load(masks_dir / f"{split}_masked.npy", mmap_mode="r"),
                                                 progress=f"parser labels ({split})")
            for split in splits}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = InpainterParams.load()
    with training_processes(cfg.devices, "stages.train_inpainter", "inpainter") as ctx:
        if ctx is None:
            return  # torchrun's workers did the training
        guides = parser_guides(MODELS / "parser.pt", cfg.threads) if cfg.parser_guide else None
        with Live(dir=str(LIVE_DIR), save_dvc_exp=False, dvcyaml=None) if ctx.is_main else nullcontext() as live:
            run = fit_inpainter(cfg, MASKS_DIR, CACHE_DIR, live=live, checkpoint_path=MODELS / "inpainter_last.pt",
                                ctx=ctx, guides=guides)
            if live is not None:
                live.summary["seconds_per_epoch"] = round(run.seconds_per_epoch, 2)
    if not ctx.is_main:
        return
    save_checkpoint(MODELS / "inpainter.pt", {"state_dict": run.model.state_dict(), "config": cfg.as_dict(),
                                              "history": run.history, "input_size": run.input_size})
    export_inpainter_onnx(run.model, MODELS / "inpainter.onnx", run.input_size)
    save_learning_curves(run.history, Path("metrics/plots/inpainter_training.png"), "inpainter")


if __name__ == "__main__":
    main()
