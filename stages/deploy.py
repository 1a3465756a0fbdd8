"""DVC stage `deploy`: int8 copies of the exported parsers, and the model `faceparse` runs by default.

Reads params ``deploy``. Reads ``models/parser.onnx``, ``models/student.onnx`` and ``data/cache/`` (the first
``calibration_images`` training photos calibrate the int8 copies; the val split scores every variant).
Writes ``models/parser_int8.onnx``, ``models/student_int8.onnx``, ``models/faceparse.onnx`` (a copy of the
chosen variant, see :class:`stages.core.parsing.export.DeployParams`) and ``models/deploy.json`` (val F1 of each
variant, the choice and the reason for each candidate).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from stages.core.common.io import atomic_path, write_json_atomic
from stages.core.data.cache_arrays import CachedSplit
from stages.core.parsing.export import DeployParams, choose_default
from stages.core.parsing.metrics import confusion_matrix, segmentation_report
from stages.core.parsing.quantization import quantize_int8
from stages.core.parsing.sessions import ort_session, predict_labels_onnx

CACHE_DIR, MODELS = Path("data/cache"), Path("models")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = DeployParams.load()
    train, val = CachedSplit(CACHE_DIR, "train"), CachedSplit(CACHE_DIR, "val")
    calibration = np.asarray(train.images[: cfg.calibration_images])
    for model in ("parser", "student"):
        quantize_int8(MODELS / f"{model}.onnx", MODELS / f"{model}_int8.onnx", calibration)
    val_f1 = {}
    for variant in ("parser", "parser_int8", "student", "student_int8"):
        session = ort_session(MODELS / f"{variant}.onnx", cfg.threads)
        cm = confusion_matrix(np.asarray(val.labels), predict_labels_onnx(session, np.asarray(val.images)))
        val_f1[variant] = segmentation_report(cm)["mean_f1_fg"] or 0.0
    chosen, reasons = choose_default(val_f1, cfg.candidates, cfg.max_f1_drop, cfg.int8_max_f1_drop)
    with atomic_path(MODELS / "faceparse.onnx") as tmp:
        shutil.copyfile(MODELS / f"{chosen}.onnx", tmp)
    write_json_atomic(MODELS / "deploy.json", {"default": chosen, "val_mean_f1_fg": val_f1, "reasons": reasons})
    logging.info("faceparse default: %s (%s); val F1 %s", chosen, reasons[chosen], val_f1)


if __name__ == "__main__":
    main()
