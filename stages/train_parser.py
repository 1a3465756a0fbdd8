"""DVC stage `train_parser`: train the face parser on the cache; write a checkpoint and an ONNX export.

Reads params ``parser`` and the top-level ``loss``. Reads ``data/cache/``, ``data/masks/`` (masked photos for
``parser.augment.masked_photo``) and ``data/unified/class_weights.json``.
Writes ``models/parser.pt``, ``models/parser.onnx`` (the deployable graph of :mod:`stages.core.parsing.export`: uint8
photo in, labels and logits out), the dvclive log ``metrics/train_parser/`` and
``metrics/plots/parser_training.png``.

``parser.devices`` > 1 runs it as that many DDP processes under torchrun (see :mod:`stages.core.common.distributed`);
``torchrun --nproc_per_node N -m stages.train_parser`` does the same by hand. Rank 0 writes every output.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

from dvclive import Live

from stages.core.common.distributed import training_processes
from stages.core.common.params import section
from stages.core.common.torch_utils import save_checkpoint
from stages.core.data.cache_arrays import CachedSplit
from stages.core.parsing.export import export_deployable_onnx
from stages.core.parsing.training import (
    ParserParams,
    check_loss_spec,
    fit_parser,
    load_class_weights,
    without_timings,
)
from stages.core.plots import save_learning_curves

CACHE_DIR, MASKS_DIR = Path("data/cache"), Path("data/masks")
WEIGHTS_FILE = Path("data/unified/class_weights.json")
MODEL_DIR = Path("models")
LIVE_DIR = Path("metrics/train_parser")
CURVES_PNG = Path("metrics/plots/parser_training.png")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg, loss_spec = ParserParams.load(), check_loss_spec(section("loss"))
    weights = load_class_weights(WEIGHTS_FILE, cfg.class_weights)
    with training_processes(cfg.devices, "stages.train_parser", "parser") as ctx:
        if ctx is None:
            return  # torchrun's workers did the training
        with Live(dir=str(LIVE_DIR), save_dvc_exp=False, dvcyaml=None) if ctx.is_main else nullcontext() as live:
            run = fit_parser(cfg, loss_spec, CACHE_DIR, weights, live=live, seed=cfg.seed,
                             checkpoint_path=MODEL_DIR / "parser_last.pt", masks_dir=MASKS_DIR, ctx=ctx)
            if live is not None:
                live.summary["best_epoch"] = run.best["epoch"]
                live.summary["seconds_per_epoch"] = round(run.seconds_per_epoch, 2)
    if not ctx.is_main:
        return
    size = CachedSplit(CACHE_DIR, "train").images.shape[1]
    save_checkpoint(MODEL_DIR / "parser.pt", {"state_dict": run.model.state_dict(), "config": cfg.as_dict(), "loss": loss_spec,
                                              "input_size": size, "history": without_timings(run.history),
                                              "best": without_timings([run.best])[0]})
    export_deployable_onnx(run.model, MODEL_DIR / "parser.onnx", size)
    save_learning_curves(run.history, CURVES_PNG, f"{cfg.arch} / {cfg.encoder}, loss {loss_spec}")


if __name__ == "__main__":
    main()
