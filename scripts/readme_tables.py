"""Generate the README's latency table from ``metrics/latency.json`` (written by the benchmark stage).

The table sits between ``<!-- latency-table:start -->`` and ``<!-- latency-table:end -->`` in README.md; this
script rewrites what is between them, so the README never holds a hand-typed number. ``--check`` only compares
and exits 1 when the README is out of date (tests/test_readme_tables.py runs it).

    .venv/bin/python scripts/readme_tables.py [--check]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import segmentation_models_pytorch as smp  # noqa: E402

from stages.core.parsing.latency import table_rows  # noqa: E402

START, END = "<!-- latency-table:start -->", "<!-- latency-table:end -->"
VARIANT_NAMES = {"torch_fp32": "torch fp32", "ort_fp32": "ORT fp32", "ort_int8": "ORT int8"}
# only smp's architectures take an encoder; the project's own (regseg, ddrnet...) ignore parser.encoder
SMP_ARCHS = {name.lower() for name in smp.MODEL_ARCHITECTURES_MAPPING}


def render_latency_table(latency: dict | None) -> str:
    """Markdown for the README block: one row per model x variant x threads, and the run's reference."""
    if latency is None:
        return "_No `metrics/latency.json` yet: run `dvc repro benchmark`, then `python scripts/readme_tables.py`._"
    lines = ["| model | variant | threads | median ms | p90 ms | / DeepLabV3+-mnv2 | params M | GFLOPs | file MB "
             "| test F1 (fg) |", "|---|---|---|---|---|---|---|---|---|---|"]
    default = latency.get("default", "")
    for row in table_rows(latency):
        encoder = f"/{row['encoder']}" if row["arch"].lower() in SMP_ARCHS else ""
        name = f"{row['model']} ({row['arch']}{encoder})"
        deployed_variant = "ort_int8" if default.endswith("_int8") else "ort_fp32"
        deployed = row["model"] == default.removesuffix("_int8") and row["variant"] == deployed_variant
        lines.append(f"| {name}{' **default**' if deployed else ''} | {VARIANT_NAMES[row['variant']]} | {row['threads']} "
                     f"| {row['median_ms']:.1f} | {row['p90_ms']:.1f} | {row['ratio_to_reference']:.2f} "
                     f"| {row['params'] / 1e6:.2f} | {row['flops'] / 1e9:.2f} | {row['file_mb']:.2f} "
                     f"| {row['test_f1_fg']:.3f} |")
    reference = latency["reference"]
    timings = ", ".join(f"{k.removeprefix('threads_')} thread(s) {v['median_ms']:.1f} ms" for k, v in reference.items()
                        if k.startswith("threads_"))
    lines.append("")
    lines.append(f"Reference in the same run: DeepLabV3+ on mobilenet_v2 (decoder width 128), ORT fp32: {timings}. "
                 "Batch 1, uint8 photo in, labels out; the ratio column is the number to compare between runs.")
    return "\n".join(lines)


def replace_block(text: str, body: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md: the markers {START} and {END} are missing")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{body}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date; change nothing")
    parser.add_argument("--metrics", type=Path, default=ROOT / "metrics/latency.json")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    latency = json.loads(args.metrics.read_text()) if args.metrics.is_file() else None
    text = args.readme.read_text()
    updated = replace_block(text, render_latency_table(latency))
    if args.check:
        if updated != text:
            print(f"{args.readme}: the latency table is out of date; run python scripts/readme_tables.py")
            return 1
        return 0
    if updated != text:
        args.readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
