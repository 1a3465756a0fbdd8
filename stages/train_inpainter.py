"""DVC stage `train_inpainter`: learn to remove masks; write ``models/inpainter.pt`` and ``.onnx``.

Reads params ``inpainter``, and ``masks`` for the masks it draws on the training photos each epoch
(``inpainter.fresh_masks``, with the masks stage's code). Reads ``data/masks/`` (the val masks, the train masks and
each face's landmarks) and ``data/cache/`` (photos and true labels), and ``models/parser.pt``, frozen, when
``inpainter.parser_guide`` > 0 (its mirror-averaged labels on each masked photo are the guide that inference gives the
generator) or a parser loss term is on.
Logs to ``metrics/train_inpainter/`` (curves, and a grid of val samples per epoch under ``plots/images``).
``inpainter.devices`` > 1 trains in that many DDP processes under torchrun, as ``train_parser`` does; rank 0 writes.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

from dvclive import Live

from stages.core.common.distributed import training_processes
from stages.core.common.params import section
from stages.core.common.torch_utils import save_checkpoint
from stages.core.inpainting.parser_critic import FrozenParser
from stages.core.inpainting.training import InpainterParams, export_inpainter_onnx, fit_inpainter
from stages.core.masks.config import MaskParams
from stages.core.plots import save_learning_curves

MASKS_DIR, CACHE_DIR, MODELS = Path("data/masks"), Path("data/cache"), Path("models")
LIVE_DIR = Path("metrics/train_inpainter")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = InpainterParams.load()
    mask_params = MaskParams.from_dict(section("masks"))
    with training_processes(cfg.devices, "stages.train_inpainter", "inpainter") as ctx:
        if ctx is None:
            return  # torchrun's workers did the training
        parser = FrozenParser.load(MODELS / "parser.pt") if cfg.parser_guide or cfg.loss.uses_parser else None
        with Live(dir=str(LIVE_DIR), save_dvc_exp=False, dvcyaml=None) if ctx.is_main else nullcontext() as live:
            run = fit_inpainter(cfg, MASKS_DIR, CACHE_DIR, live=live, checkpoint_path=MODELS / "inpainter_last.pt",
                                ctx=ctx, parser=parser, mask_params=mask_params)
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
