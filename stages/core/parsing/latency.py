"""The latency table of the exported parsers: every model x variant (torch fp32, ORT fp32, ORT int8) x threads,
with params, FLOPs, file size and test F1, timed beside the issue's reference (DeepLabV3+ on mobilenet_v2,
decoder width 128, random weights: latency does not depend on them) in the same interleaved run.

Timings on a shared machine move from run to run, so each row also holds ``ratio_to_reference``, its median
divided by the reference's at the same thread count, measured in the same run: that ratio is the number to
compare between runs. Every latency is batch 1, uint8 photo in, labels out (``DeployableParser`` for torch too,
so all three variants do the same work).
"""
from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stages.core.common.classes import NUM_CLASSES
from stages.core.data.cache_arrays import CachedSplit
from stages.core.models.registry import build_parser, inference_parameter_count, load_parser
from stages.core.parsing.export import DeployableParser, export_deployable_onnx
from stages.core.parsing.metrics import confusion_matrix, segmentation_report
from stages.core.parsing.scoring import split_confusion
from stages.core.parsing.sessions import INPUT_NAME, LABELS_OUTPUT, ort_session, predict_labels_onnx

log = logging.getLogger(__name__)

REFERENCE = {"arch": "DeepLabV3Plus", "encoder": "mobilenet_v2", "decoder_width": 128, "encoder_weights": None}
VARIANTS = ("torch_fp32", "ort_fp32", "ort_int8")


@dataclass(frozen=True)
class ExportedModel:
    """One trained parser's files: its checkpoint, deployable fp32 graph and int8 copy."""

    checkpoint: Path
    fp32: Path
    int8: Path


def interleaved_latency_ms(runners: dict[str, Callable[[], object]], runs: int, rounds: int = 5,
                           warmup: int = 3) -> dict[str, dict[str, float]]:
    """Median and p90 milliseconds of each no-argument callable over ``runs`` calls after ``warmup``.

    The calls are spread over ``rounds`` that alternate between the runners, so that load from other processes
    on a shared machine falls on every candidate alike: compare candidates timed in the same call.
    """
    times: dict[str, list[float]] = {name: [] for name in runners}
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    per_round = [runs // rounds + (i < runs % rounds) for i in range(rounds)]
    for count in per_round:
        for name, fn in runners.items():
            for _ in range(count):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)), "runs": len(t)}
            for name, t in times.items()}


def flops(model: nn.Module, size: int) -> int:
    """Multiply-accumulates x 2 of one ``(1, 3, S, S)`` forward pass, counted by thop (convs, linears, norms)."""
    import copy

    from thop import profile

    macs, _ = profile(copy.deepcopy(model).eval(), inputs=(torch.zeros(1, 3, size, size),), verbose=False)
    return int(2 * macs)


def file_mb(path: str | Path) -> float:
    return round(Path(path).stat().st_size / 2**20, 3)


def pareto_front(points: Iterable[tuple[float, float]]) -> list[bool]:
    """For (latency, score) points: True where no other point is at least as fast and at least as good while
    strictly better in one of the two."""
    points = list(points)
    return [not any(lo <= la and so >= sa and (lo < la or so > sa) for lo, so in points) for la, sa in points]



def _test_f1(pred_fn: Callable[[np.ndarray], np.ndarray], test: CachedSplit, batch_size: int = 16) -> float:
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for start in range(0, len(test), batch_size):
        cm += confusion_matrix(test.labels[start:start + batch_size], pred_fn(np.asarray(test.images[start:start + batch_size])))
    return segmentation_report(cm)["mean_f1_fg"] or 0.0


def _torch_runner(model: DeployableParser, image: np.ndarray, threads: int) -> Callable[[], None]:
    tensor = torch.from_numpy(image)

    def run() -> None:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            model(tensor)
    return run


def _ort_runner(session, image: np.ndarray) -> Callable[[], None]:
    return lambda: session.run([LABELS_OUTPUT], {INPUT_NAME: image})


def latency_table(models: dict[str, ExportedModel], test: CachedSplit, threads: Iterable[int] = (1, 2),
                  runs: int = 50) -> dict:
    """Time and score every model of ``models`` (name -> files) on the test split; see the module docstring.

    Returns ``{"reference": {...}, name: {"arch", "encoder", "params", "flops", "variants": {variant:
    {"file_mb", "test_f1_fg", "threads_<t>": {"median_ms", "p90_ms", "runs", "ratio_to_reference"}}}}}``.
    """
    threads = list(threads)
    size = int(test.images.shape[1])
    image = np.asarray(test.images[:1], dtype=np.uint8)
    table: dict = {}
    runners: dict[str, Callable[[], None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        reference = build_parser(REFERENCE, NUM_CLASSES).eval()
        reference_path = Path(tmp) / "reference.onnx"
        export_deployable_onnx(reference, reference_path, size)
        table["reference"] = {**{k: v for k, v in REFERENCE.items() if v is not None},
                              "weights": "random (latency only)", "flops": flops(reference, size)}
        for t in threads:
            runners[f"reference/ort_fp32/{t}"] = _ort_runner(ort_session(reference_path, t), image)
    for name, files in models.items():
        model, payload = load_parser(files.checkpoint)
        deployable = DeployableParser(model).eval()
        sessions = {(v, t): ort_session(path, t) for v, path in (("ort_fp32", files.fp32), ("ort_int8", files.int8))
                    for t in threads}
        torch_f1 = segmentation_report(split_confusion(model, test)[0])["mean_f1_fg"] or 0.0
        table[name] = {
            "arch": payload["config"].get("arch"), "encoder": payload["config"].get("encoder"),
            "params": inference_parameter_count(model), "flops": flops(model, size),
            "variants": {
                "torch_fp32": {"file_mb": file_mb(files.checkpoint), "test_f1_fg": torch_f1},
                **{variant: {"file_mb": file_mb(path),
                             "test_f1_fg": _test_f1(partial(predict_labels_onnx, sessions[variant, threads[-1]]), test)}
                   for variant, path in (("ort_fp32", files.fp32), ("ort_int8", files.int8))},
            }}
        for t in threads:
            runners[f"{name}/torch_fp32/{t}"] = _torch_runner(deployable, image, t)
            for variant in ("ort_fp32", "ort_int8"):
                runners[f"{name}/{variant}/{t}"] = _ort_runner(sessions[variant, t], image)
    start = time.perf_counter()
    timings = interleaved_latency_ms(runners, runs)
    log.info("latency table: %d timings of %d runs in %.1f s", len(runners), runs, time.perf_counter() - start)
    for key, timing in timings.items():
        name, variant, t = key.split("/")
        reference_ms = timings[f"reference/ort_fp32/{t}"]["median_ms"]
        row = {**timing, "ratio_to_reference": timing["median_ms"] / reference_ms}
        if name == "reference":
            table["reference"][f"threads_{t}"] = row
        else:
            table[name]["variants"][variant][f"threads_{t}"] = row
    return table


def table_rows(table: dict, threads: int | None = None) -> list[dict]:
    """The latency table flattened to one row per model x variant x threads (only ``threads`` when given)."""
    rows = []
    for name, entry in table.items():
        if name == "reference" or not isinstance(entry, dict) or "variants" not in entry:
            continue
        for variant, stats in entry["variants"].items():
            for key, timing in stats.items():
                if not key.startswith("threads_") or (threads is not None and key != f"threads_{threads}"):
                    continue
                rows.append({"model": name, "arch": entry["arch"], "encoder": entry["encoder"], "variant": variant,
                             "threads": int(key.removeprefix("threads_")), "median_ms": timing["median_ms"],
                             "p90_ms": timing["p90_ms"], "ratio_to_reference": timing["ratio_to_reference"],
                             "params": entry["params"], "flops": entry["flops"], "file_mb": stats["file_mb"],
                             "test_f1_fg": stats["test_f1_fg"]})
    return rows
