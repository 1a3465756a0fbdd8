"""Candidate real-time face parsers: parameters, ONNX Runtime latency and training throughput on the CPU.

Latency: the deployable graph (:mod:`stages.core.parsing.export`: uint8 NHWC photo in, normalisation in the graph, uint8
labels out) at batch 1, 256x256, onnxruntime CPU with ``--threads`` intra-op threads and ``ORT_ENABLE_ALL``;
median and p90 of ``--runs`` after warm-up, interleaved between candidates so that load from other processes
falls on all alike. ``--int8`` also times each candidate's static int8 QDQ copy (calibrated on random photos:
latency does not depend on the weights or the calibration). Each row also holds its latency divided by the
reference's (``--reference``, DeepLabV3+ on mobilenet_v2 by default) measured in the same run: on a shared
machine the ratio is the number to compare, not the milliseconds.
Training throughput: forward + backward + AdamW step, batch 8, torch on 2 threads, median images/s over
``--train-steps`` steps (0 skips it). Random weights: latency and speed do not depend on them.

    HF_HUB_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1 .venv/bin/python benchmarks/bench_parsers.py [--only regseg,unet_mnv3s]
        [--int8] [--json metrics/zoo_latency.json] [--f1 zoo_f1.json --plot zoo_pareto.png]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
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

from stages.core.common.classes import NUM_CLASSES  # noqa: E402
from stages.core.models.registry import build_parser, inference_parameter_count  # noqa: E402
from stages.core.parsing.export import export_deployable_onnx  # noqa: E402
from stages.core.parsing.latency import interleaved_latency_ms, pareto_front  # noqa: E402
from stages.core.parsing.quantization import quantize_int8  # noqa: E402
from stages.core.parsing.sessions import INPUT_NAME, LABELS_OUTPUT, ort_session  # noqa: E402
from stages.core.plots import save_pareto_plot  # noqa: E402

SLIM = [64, 48, 32, 16, 16]
CANDIDATES: dict[str, dict] = {
    "unet_mnv3s": {"arch": "Unet", "encoder": "tu-mobilenetv3_small_100", "decoder_channels": SLIM},
    "unet_mnv3l": {"arch": "Unet", "encoder": "tu-mobilenetv3_large_100", "decoder_channels": SLIM},
    "unet_effb0": {"arch": "Unet", "encoder": "tu-efficientnet_b0", "decoder_channels": SLIM},
    "unetpp_mnv3s": {"arch": "UnetPlusPlus", "encoder": "tu-mobilenetv3_small_100", "decoder_channels": SLIM},
    "deeplabv3plus_mnv3s": {"arch": "DeepLabV3Plus", "encoder": "tu-mobilenetv3_small_100", "decoder_width": 128},
    "deeplabv3plus_mnv2": {"arch": "DeepLabV3Plus", "encoder": "mobilenet_v2", "decoder_width": 128},
    "fpn_mnv3s": {"arch": "FPN", "encoder": "tu-mobilenetv3_small_100", "decoder_width": 64},
    "fpn_mnv3s_w32": {"arch": "FPN", "encoder": "tu-mobilenetv3_small_100", "decoder_width": 32},
    "linknet_mnv3s": {"arch": "Linknet", "encoder": "tu-mobilenetv3_small_100"},
    "regseg": {"arch": "regseg"},
    "regseg_slim": {"arch": "regseg_slim"},
    "ddrnet23_slim": {"arch": "ddrnet23_slim"},
    "unet_resnet18": {"arch": "Unet", "encoder": "resnet18"},
}


def deployable_sessions(name: str, model: torch.nn.Module, size: int, threads: int, int8: bool,
                        workdir: Path) -> dict[str, ort.InferenceSession]:
    """``{name: fp32 session}`` and, with ``int8``, ``{name + "_int8": int8 session}``."""
    fp32 = workdir / f"{name}.onnx"
    export_deployable_onnx(model, fp32, size)
    sessions = {name: ort_session(fp32, threads)}
    if int8:
        calibration = np.random.default_rng(0).integers(0, 256, (4, size, size, 3), dtype=np.uint8)
        quantize_int8(fp32, workdir / f"{name}_int8.onnx", calibration)
        sessions[f"{name}_int8"] = ort_session(workdir / f"{name}_int8.onnx", threads)
    return sessions


def train_images_per_second(model: torch.nn.Module, size: int, steps: int, batch: int = 8) -> float:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.randn(batch, 3, size, size)
    labels = torch.randint(0, NUM_CLASSES, (batch, size, size))
    rates = []
    for step in range(steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
        if step:  # the first step pays one-off allocation costs
            rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)


def save_zoo_plot(rows: list[dict], f1: dict[str, float], path: Path) -> None:
    """One point per candidate that has an F1 in ``f1``: its latency ratio against its F1, Pareto front marked."""
    points = [(r["candidate"], r["ratio_to_reference"], float(f1[r["candidate"]])) for r in rows if r["candidate"] in f1]
    if not points:
        raise SystemExit(f"no candidate of this run has an F1 in the --f1 file (it has {', '.join(f1)})")
    save_pareto_plot(points, pareto_front([(x, y) for _, x, y in points]), path,
                     f"latency / {rows[0]['reference']}'s, same run ({rows[0]['threads']} threads, batch 1)", "parser zoo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    parser.add_argument("--reference", default="deeplabv3plus_mnv2", help="latency ratios are to this candidate")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="also time each candidate's static int8 QDQ copy")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--json", default="", help="also write the rows to this file")
    parser.add_argument("--f1", type=Path, default=None,
                        help="JSON {candidate: test mean F1 (fg)} from trained runs; with --plot, draws the zoo")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of F1 against latency ratio, Pareto front marked")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.only.split(",") if n] or list(CANDIDATES)
    if args.reference not in names:
        names.append(args.reference)
    image = np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, 3), dtype=np.uint8)
    models, sessions = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            torch.manual_seed(0)
            models[name] = build_parser({**CANDIDATES[name], "encoder_weights": None}, NUM_CLASSES).eval()
            sessions.update(deployable_sessions(name, models[name], args.size, args.threads, args.int8, Path(tmp)))
    latencies = interleaved_latency_ms(
        {variant: (lambda s=session: s.run([LABELS_OUTPUT], {INPUT_NAME: image})) for variant, session in sessions.items()},
        args.runs)
    reference_ms = latencies[args.reference]["median_ms"]
    if args.train_steps:
        train_images_per_second(models[names[0]], args.train_size, 1)  # warm up torch's thread pool and allocator
    rows = []
    print(f"{'candidate':26s} {'params M':>8s} {'median ms':>9s} {'p90 ms':>7s} {'ratio':>6s} {'train img/s':>11s}",
          flush=True)
    for variant, timing in latencies.items():
        name = variant.removesuffix("_int8")
        params = inference_parameter_count(models[name]) / 1e6
        speed = (train_images_per_second(models[name], args.train_size, args.train_steps)
                 if args.train_steps and variant == name else float("nan"))
        ratio = timing["median_ms"] / reference_ms
        rows.append({"candidate": variant, **CANDIDATES[name], "precision": "int8" if variant != name else "fp32",
                     "params_m": round(params, 2), "median_ms": round(timing["median_ms"], 2),
                     "p90_ms": round(timing["p90_ms"], 2), "ratio_to_reference": round(ratio, 3),
                     "reference": args.reference, "threads": args.threads, "train_img_s": round(speed, 2)})
        print(f"{variant:26s} {params:8.2f} {timing['median_ms']:9.2f} {timing['p90_ms']:7.2f} {ratio:6.2f} "
              f"{speed:11.2f}", flush=True)
    if args.plot:
        if args.f1 is None:
            parser.error("--plot needs --f1: latency comes from this run, F1 from trained models")
        save_zoo_plot(rows, json.loads(args.f1.read_text()), args.plot)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
