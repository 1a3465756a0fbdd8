"""DVC stage `benchmark`: score the parser and the inpainter on the test split; write metrics and plots.

The parser is also scored on the reframed test set (``benchmark.reframed``; see :mod:`stages.core.data.reframing`),
as a whole photo and through ``faceparse``'s detect-align-parse path with ``models/framing.json``, under the
``reframed`` key of ``metrics/parser.json``; under ``masked``, the parser under the masks of the masks stage's
test photos. ``metrics/mask_finder.json`` scores the mask finder on the same photos.

It also writes the latency table of the exported parsers (the parser and the distilled student, each as torch
fp32, ONNX Runtime fp32 and int8, at each of ``benchmark.table_threads``; see :mod:`stages.core.parsing.latency`) to
``metrics/latency.json`` and its F1-against-latency plot with the Pareto front to ``metrics/plots/latency_pareto.png``.

Reads params ``benchmark``. Writes ``metrics/parser.json``, ``metrics/inpainter.json``,
``metrics/mask_finder.json``, ``metrics/latency.json`` and PNGs in ``metrics/plots/``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from stages.core.common.io import write_json_atomic
from stages.core.data.cache_arrays import CachedSplit
from stages.core.inpainting.evaluation import benchmark_inpainter
from stages.core.parsing.evaluation import (
    BenchmarkParams,
    benchmark_mask_finder,
    benchmark_masked_parser,
    benchmark_parser,
    benchmark_reframed,
)
from stages.core.parsing.latency import ExportedModel, latency_table, pareto_front, table_rows
from stages.core.plots import save_confusion_matrix, save_image_grid, save_pareto_plot

CACHE_DIR, MASKS_DIR, MODELS = Path("data/cache"), Path("data/masks"), Path("models")
METRICS, PLOTS = Path("metrics"), Path("metrics/plots")
REALTIME_TARGET = 0.6  # a real-time parser takes at most 0.6x DeepLabV3+-mnv2's latency (issue 13)


def _rounded(obj, digits: int = 4):
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    return obj


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = BenchmarkParams.load()
    threads, runs = cfg.threads, cfg.latency_runs
    parser_metrics, cm, parser_rows = benchmark_parser(MODELS / "parser.pt", MODELS / "parser.onnx", CACHE_DIR,
                                                       threads, runs)
    parser_metrics["reframed"], reframed_rows = benchmark_reframed(MODELS / "parser.onnx", MODELS / "framing.json", CACHE_DIR,
                                                                   cfg.reframed, threads, parser_metrics["mean_f1_fg"])
    parser_metrics["masked"] = benchmark_masked_parser(MODELS / "parser.pt", MASKS_DIR, CACHE_DIR, threads)
    write_json_atomic(METRICS / "parser.json", _rounded(parser_metrics))
    save_confusion_matrix(cm, PLOTS / "parser_confusion.png", "parser, test split (row-normalised %)")
    save_image_grid(parser_rows, PLOTS / "parser_samples.png")
    # columns: reframed photo, truth (the unscored padding dimmed), whole-photo prediction, parse-path prediction
    save_image_grid(reframed_rows, PLOTS / "parser_reframed.png")
    inpainter_metrics, inpainter_rows = benchmark_inpainter(MODELS / "inpainter.pt", MODELS / "inpainter.onnx",
                                                            MODELS / "parser.pt", MASKS_DIR, CACHE_DIR, threads, runs)
    write_json_atomic(METRICS / "inpainter.json", _rounded(inpainter_metrics))
    # columns: masked photo, inpainter, Telea, Navier-Stokes, clean photo
    save_image_grid(inpainter_rows, PLOTS / "inpainter_samples.png")
    latency = latency_table({name: ExportedModel(MODELS / f"{name}.pt", MODELS / f"{name}.onnx",
                                                 MODELS / f"{name}_int8.onnx") for name in ("parser", "student")},
                            CachedSplit(CACHE_DIR, "test"), cfg.table_threads, runs)
    latency["default"] = json.loads((MODELS / "deploy.json").read_text())["default"]
    write_json_atomic(METRICS / "latency.json", _rounded(latency))
    rows = table_rows(latency, threads)
    points = [(f"{r['model']} {r['variant']}", r["ratio_to_reference"], r["test_f1_fg"]) for r in rows]
    save_pareto_plot(points, pareto_front([(x, y) for _, x, y in points]), PLOTS / "latency_pareto.png",
                     f"latency / DeepLabV3+-mnv2's, same run ({threads} threads, batch 1)", "exported parsers",
                     target=REALTIME_TARGET)
    write_json_atomic(METRICS / "mask_finder.json", _rounded(benchmark_mask_finder(
        MODELS / "mask_finder.onnx", MODELS / "framing.json", MASKS_DIR, CACHE_DIR, threads)))
    reframed = parser_metrics["reframed"]
    logging.info("parser mean F1 (fg) %.4f vs majority baseline %.4f; reframed: whole photo %.4f, parse path %.4f "
                 "(faces in %d of %d photos); inpainter PSNR %.2f vs Telea %.2f",
                 parser_metrics["mean_f1_fg"] or 0, parser_metrics["majority_baseline"]["mean_f1_fg"],
                 reframed["whole_photo"]["mean_f1_fg"] or 0, reframed["parse_path"]["mean_f1_fg"] or 0,
                 reframed["photos_with_face"], reframed["images"],
                 inpainter_metrics["inpainter"]["psnr"], inpainter_metrics["telea"]["psnr"])


if __name__ == "__main__":
    main()
