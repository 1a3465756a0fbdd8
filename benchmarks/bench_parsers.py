"""Candidate real-time face parsers: parameters, ONNX Runtime latency and training throughput on the CPU.

Latency: batch 1 at 256x256, onnxruntime CPU with 2 intra-op threads, median of ``--runs`` after warm-up.
Training throughput: forward + backward + AdamW step, batch 8, torch on 2 threads, median images/s over
``--train-steps`` steps (0 skips it). Random weights: latency and speed do not depend on them.

    HF_HUB_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1 .venv/bin/python benchmarks/bench_parsers.py [--only regseg,unet_mnv3s]
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

from stages.core.classes import NUM_CLASSES  # noqa: E402
from stages.core.models.registry import build_parser  # noqa: E402
from stages.core.training import export_onnx  # noqa: E402

SLIM = [64, 48, 32, 16, 16]
CANDIDATES: dict[str, dict] = {
    "unet_mnv3s": {"arch": "Unet", "encoder": "tu-mobilenetv3_small_100", "decoder_channels": SLIM},
    "unet_mnv3l": {"arch": "Unet", "encoder": "tu-mobilenetv3_large_100", "decoder_channels": SLIM},
    "unet_effb0": {"arch": "Unet", "encoder": "tu-efficientnet_b0", "decoder_channels": SLIM},
    "unetpp_mnv3s": {"arch": "UnetPlusPlus", "encoder": "tu-mobilenetv3_small_100", "decoder_channels": SLIM},
    "deeplabv3plus_mnv3s": {"arch": "DeepLabV3Plus", "encoder": "tu-mobilenetv3_small_100", "decoder_width": 128},
    "deeplabv3plus_mnv2": {"arch": "DeepLabV3Plus", "encoder": "mobilenet_v2", "decoder_width": 128},
    "fpn_mnv3s": {"arch": "FPN", "encoder": "tu-mobilenetv3_small_100", "decoder_width": 64},
    "linknet_mnv3s": {"arch": "Linknet", "encoder": "tu-mobilenetv3_small_100"},
    "regseg": {"arch": "regseg"},
    "ddrnet23_slim": {"arch": "ddrnet23_slim"},
    "unet_resnet18": {"arch": "Unet", "encoder": "resnet18"},
}


def onnx_session(model: torch.nn.Module, size: int, threads: int) -> ort.InferenceSession:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "parser.onnx"
        export_onnx(model, path, size)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def interleaved_latencies_ms(sessions: dict[str, ort.InferenceSession], size: int, runs: int,
                             rounds: int = 3) -> dict[str, float]:
    """Median latency per session; rounds alternate between candidates so load spikes hit them all alike."""
    image = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for session in sessions.values():
        for _ in range(3):
            session.run(None, {"image": image})
    for _ in range(rounds):
        for name, session in sessions.items():
            for _ in range(max(runs // rounds, 1)):
                start = time.perf_counter()
                session.run(None, {"image": image})
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--json", default="", help="also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.only.split(",") if n] or list(CANDIDATES)
    models, sessions = {}, {}
    for name in names:
        torch.manual_seed(0)
        models[name] = build_parser({**CANDIDATES[name], "encoder_weights": None}, NUM_CLASSES)
        sessions[name] = onnx_session(models[name], args.size, args.threads)
    latencies = interleaved_latencies_ms(sessions, args.size, args.runs)
    train_images_per_second(models[names[0]], args.train_size, 1)  # warm up torch's thread pool and allocator
    rows = []
    print(f"{'candidate':22s} {'params M':>8s} {'onnx ms':>8s} {'train img/s':>11s}", flush=True)
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        speed = train_images_per_second(model, args.train_size, args.train_steps) if args.train_steps else float("nan")
        rows.append({"candidate": name, **CANDIDATES[name], "params_m": round(params, 2),
                     "onnx_ms": round(latencies[name], 1), "train_img_s": round(speed, 2)})
        print(f"{name:22s} {params:8.2f} {latencies[name]:8.1f} {speed:11.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
