"""What each deployment lever changes in ONNX Runtime latency, every variant timed in one interleaved run.

For each ``--models`` candidate (random weights: latency does not depend on them), batch 1 at 256x256:
- ``float_graph+numpy``: the old export (float NCHW in, logits out) with numpy normalisation before and argmax after;
- ``uint8_graph_labels``: the deployable graph (uint8 NHWC in, normalisation inside, uint8 labels out);
- ``uint8_graph_logits+softmax``: the same graph's logits output and numpy softmax (what ``faceparse enhance`` needs);
- ``opt_<level>``: the deployable graph at each graph optimisation level;
- ``threads_1`` and ``nospin``: one intra-op thread, and two without thread spinning.
Each row holds its median divided by ``uint8_graph_labels``'s (2 threads, ORT_ENABLE_ALL). Session creation
time with and without a saved optimised model (``optimized_model_filepath``) is measured apart.

    .venv/bin/python benchmarks/bench_deploy_levers.py --models regseg,fpn_mnv3s --runs 60
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
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from bench_parsers import CANDIDATES  # noqa: E402

from stages.core.common.classes import NUM_CLASSES  # noqa: E402
from stages.core.inference.parsing import softmax  # noqa: E402
from stages.core.models.preprocessing import normalise  # noqa: E402
from stages.core.models.registry import build_parser  # noqa: E402
from stages.core.parsing.export import export_deployable_onnx  # noqa: E402
from stages.core.parsing.latency import interleaved_latency_ms  # noqa: E402
from stages.core.parsing.sessions import ort_session  # noqa: E402
from stages.core.parsing.training import export_onnx  # noqa: E402

LEVELS = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def session_at_level(path: Path, level: str, threads: int = 2) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = LEVELS[level]
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def creation_ms(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="regseg,fpn_mnv3s")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    image = np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, 3), dtype=np.uint8)
    runners, creation = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            torch.manual_seed(0)
            model = build_parser({**CANDIDATES[name], "encoder_weights": None}, NUM_CLASSES).eval()
            old, new = Path(tmp) / f"{name}_float.onnx", Path(tmp) / f"{name}.onnx"
            export_onnx(model, old, args.size)
            export_deployable_onnx(model, new, args.size)
            float_session, main_session = session_at_level(old, "all"), ort_session(new, 2)

            def float_path(s=float_session):
                s.run(None, {"image": normalise(image)})[0].argmax(1).astype(np.uint8)
            runners[f"{name}/float_graph+numpy"] = float_path
            runners[f"{name}/uint8_graph_labels"] = lambda s=main_session: s.run(["labels"], {"image": image})
            runners[f"{name}/uint8_graph_logits+softmax"] = (
                lambda s=main_session: softmax(s.run(["logits"], {"image": image})[0]))
            levers = {f"opt_{level}": session_at_level(new, level) for level in ("disable", "basic", "extended")}
            levers["threads_1"] = ort_session(new, 1)
            levers["nospin"] = ort_session(new, 2, spinning=False)
            for lever, session in levers.items():
                runners[f"{name}/{lever}"] = lambda s=session: s.run(["labels"], {"image": image})
            saved = Path(tmp) / f"{name}.opt.onnx"
            ort_session(new, 2, optimized_path=saved)
            creation[name] = {"create_ms_optimising": creation_ms(lambda p=new: ort_session(p, 2)),
                              "create_ms_saved_optimised": creation_ms(lambda p=saved: session_at_level(p, "disable"))}
        timings = interleaved_latency_ms(runners, args.runs)
    rows = []
    for key, timing in timings.items():
        name, lever = key.split("/")
        base = timings[f"{name}/uint8_graph_labels"]["median_ms"]
        rows.append({"model": name, "lever": lever, "median_ms": round(timing["median_ms"], 2),
                     "p90_ms": round(timing["p90_ms"], 2), "ratio": round(timing["median_ms"] / base, 3)})
        print(f"{name:14s} {lever:28s} {timing['median_ms']:8.2f} {timing['p90_ms']:8.2f} "
              f"{timing['median_ms'] / base:6.2f}", flush=True)
    for name, c in creation.items():
        print(f"{name:14s} session creation: {c['create_ms_optimising']:.0f} ms optimising, "
              f"{c['create_ms_saved_optimised']:.0f} ms from the saved optimised model", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "session_creation": creation}, indent=2) + "\n")


if __name__ == "__main__":
    main()
