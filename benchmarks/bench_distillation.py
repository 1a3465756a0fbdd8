"""What distillation and int8 quantisation do to test F1: one student trained per distillation weight from the
same teacher checkpoint, each scored on the test split in torch, ONNX Runtime fp32 and ONNX Runtime int8 (static
QDQ, calibrated on the first ``--calibration`` training photos); the teacher is scored the same way.

    .venv/bin/python benchmarks/bench_distillation.py --cache data/cache --teacher models/parser.pt \\
        --weights 0,0.5 --epochs 8 --json /tmp/distill.json

``--weights 0`` is the same student trained on the hard labels alone: the baseline distillation must beat.
The student's other params are params.yaml's ``parser`` section with ``distill.student`` merged in, then ``-S``
style overrides from ``--set key=value`` (YAML values), e.g. ``--set decoder_width=32``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from stages.core.common.classes import NUM_CLASSES  # noqa: E402
from stages.core.common.params import load_params  # noqa: E402
from stages.core.common.torch_utils import save_checkpoint  # noqa: E402
from stages.core.data.cache_arrays import CachedSplit  # noqa: E402
from stages.core.models.registry import load_parser  # noqa: E402
from stages.core.parsing.distillation import DistillParams, fit_student, student_params  # noqa: E402
from stages.core.parsing.export import export_deployable_onnx  # noqa: E402
from stages.core.parsing.metrics import confusion_matrix, segmentation_report  # noqa: E402
from stages.core.parsing.quantization import quantize_int8  # noqa: E402
from stages.core.parsing.scoring import split_confusion  # noqa: E402
from stages.core.parsing.sessions import ort_session, predict_labels_onnx  # noqa: E402
from stages.core.parsing.training import ParserParams  # noqa: E402


def scores(model, test: CachedSplit, calibration: np.ndarray, size: int) -> dict[str, float]:
    """Test mean F1 (fg) of ``model`` in torch, ORT fp32 and ORT int8."""
    out = {"torch_fp32": segmentation_report(split_confusion(model, test)[0])["mean_f1_fg"]}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "m.onnx", Path(tmp) / "m_int8.onnx"
        export_deployable_onnx(model, fp32, size)
        quantize_int8(fp32, int8, calibration)
        for name, path in (("ort_fp32", fp32), ("ort_int8", int8)):
            pred = predict_labels_onnx(ort_session(path, 2), np.asarray(test.images))
            out[name] = segmentation_report(confusion_matrix(np.asarray(test.labels), pred, NUM_CLASSES))["mean_f1_fg"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--teacher", type=Path, default=Path("models/parser.pt"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--weights", default="0,0.5", help="distillation weights, one student each")
    parser.add_argument("--temperature", type=float, default=None, help="default: params.yaml's")
    parser.add_argument("--epochs", type=int, default=None, help="default: the parser section's")
    parser.add_argument("--set", action="append", default=[], help="student param override key=value")
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--json", default="")
    parser.add_argument("--save-dir", type=Path, default=None,
                        help="also save each student as <dir>/student_w<weight>.pt (the train_parser checkpoint format)")
    args = parser.parse_args()
    params = load_params(args.params)
    distill = DistillParams.from_params(params["distill"])
    student = dict(distill.student)
    if args.epochs:
        student["epochs"] = args.epochs
    for item in args.set:
        key, value = item.split("=", 1)
        student[key] = yaml.safe_load(value)
    test, train = CachedSplit(args.cache, "test"), CachedSplit(args.cache, "train")
    calibration = np.asarray(train.images[: args.calibration])
    size = int(test.images.shape[1])
    teacher, payload = load_parser(args.teacher)
    rows = {"teacher": {"arch": payload["config"]["arch"], **scores(teacher, test, calibration, size)}}
    print("teacher", rows["teacher"], flush=True)
    for weight in (float(w) for w in args.weights.split(",")):
        cfg = DistillParams(temperature=args.temperature or distill.temperature, weight=weight, student=student)
        start = time.perf_counter()
        run = fit_student(ParserParams.from_params(params["parser"]), cfg, params["loss"], args.cache, None, teacher)
        rows[f"student_w{weight:g}"] = {"arch": student.get("arch"), "weight": weight, "temperature": cfg.temperature,
                                        "epochs": len(run.history), "train_minutes": (time.perf_counter() - start) / 60,
                                        "best_val_f1_fg": run.best["val_mean_f1_fg"],
                                        **scores(run.model, test, calibration, size)}
        print(f"student w={weight:g}", rows[f"student_w{weight:g}"], flush=True)
        if args.save_dir:
            args.save_dir.mkdir(parents=True, exist_ok=True)
            save_checkpoint(args.save_dir / f"student_w{weight:g}.pt",
                            {"state_dict": run.model.state_dict(), "config": student_params(
                                ParserParams.from_params(params["parser"]), cfg).as_dict(), "input_size": size})
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
