"""DVC stage `benchmark`: score the parser and the inpainter on the test split; write metrics and plots.

Reads params ``benchmark``. Writes ``metrics/parser.json``, ``metrics/inpainter.json`` and PNGs in ``metrics/plots/``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from stages.core.evaluation import BenchmarkParams, benchmark_parser
from stages.core.inpainting import benchmark_inpainter
from stages.core.io import write_json_atomic
from stages.core.plots import save_confusion_matrix, save_image_grid

CACHE_DIR, MASKS_DIR, MODELS = Path("data/cache"), Path("data/masks"), Path("models")
METRICS, PLOTS = Path("metrics"), Path("metrics/plots")


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
    write_json_atomic(METRICS / "parser.json", _rounded(parser_metrics))
    save_confusion_matrix(cm, PLOTS / "parser_confusion.png", "parser, test split (row-normalised %)")
    save_image_grid(parser_rows, PLOTS / "parser_samples.png")
    inpainter_metrics, inpainter_rows = benchmark_inpainter(MODELS / "inpainter.pt", MASKS_DIR, CACHE_DIR, threads)
    write_json_atomic(METRICS / "inpainter.json", _rounded(inpainter_metrics))
    save_image_grid(inpainter_rows, PLOTS / "inpainter_samples.png")
    logging.info("parser mean F1 (fg) %.4f vs majority baseline %.4f; inpainter PSNR %.2f vs Telea %.2f",
                 parser_metrics["mean_f1_fg"] or 0, parser_metrics["majority_baseline"]["mean_f1_fg"],
                 inpainter_metrics["inpainter"]["psnr"], inpainter_metrics["telea"]["psnr"])


if __name__ == "__main__":
    main()
