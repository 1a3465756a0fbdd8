"""DVC stage `distill`: train the fast student parser from the trained parser's soft labels.

Reads params ``distill``, ``parser`` (the student's defaults) and ``loss``. Reads ``models/parser.pt`` (the
teacher), ``data/cache/``, ``data/masks/`` (for the ``parser.augment.masked_photo`` the student inherits) and
``data/unified/class_weights.json``. Writes ``models/student.pt``,
``models/student.onnx`` (the deployable graph of :mod:`stages.core.parsing.export`) and the dvclive log ``metrics/distill/``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from dvclive import Live

from stages.core.common.params import section
from stages.core.common.torch_utils import save_checkpoint
from stages.core.data.cache_arrays import CachedSplit
from stages.core.models.registry import load_parser
from stages.core.parsing.distillation import DistillParams, fit_student, student_params
from stages.core.parsing.export import export_deployable_onnx
from stages.core.parsing.training import ParserParams, check_loss_spec, load_class_weights, without_timings

CACHE_DIR, MASKS_DIR = Path("data/cache"), Path("data/masks")
WEIGHTS_FILE = Path("data/unified/class_weights.json")
MODEL_DIR = Path("models")
LIVE_DIR = Path("metrics/distill")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser_cfg, distill, loss_spec = ParserParams.load(), DistillParams.load(), check_loss_spec(section("loss"))
    cfg = student_params(parser_cfg, distill)
    teacher, _ = load_parser(MODEL_DIR / "parser.pt")
    weights = load_class_weights(WEIGHTS_FILE, cfg.class_weights)
    with Live(dir=str(LIVE_DIR), save_dvc_exp=False, dvcyaml=None) as live:
        run = fit_student(parser_cfg, distill, loss_spec, CACHE_DIR, weights, teacher, live=live, masks_dir=MASKS_DIR)
        live.summary["best_epoch"] = run.best["epoch"]
    size = CachedSplit(CACHE_DIR, "train").images.shape[1]
    save_checkpoint(MODEL_DIR / "student.pt", {"state_dict": run.model.state_dict(), "config": cfg.as_dict(),
                                               "loss": loss_spec, "input_size": size,
                                               "distill": distill.as_dict(), "history": without_timings(run.history),
                                               "best": without_timings([run.best])[0]})
    export_deployable_onnx(run.model, MODEL_DIR / "student.onnx", size)


if __name__ == "__main__":
    main()
