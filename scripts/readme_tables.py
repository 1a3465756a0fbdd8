"""Generate the documentation's result tables from ``metrics/`` (written by the benchmark stage).

Each table sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` markers in its Markdown file; this script
rewrites what is between them, so the documentation never holds a hand-typed number:

- ``synthetic-results`` in README.md: the embedded default's scores (no timings: they belong to one machine);
- ``latency-table`` in docs/deployment.md: the latency of every deployable variant.

``--check`` only compares and exits 1 when a file is out of date. A table passes when it matches the metrics in
the working tree *or* the ones committed at git HEAD: ``make repro`` on another machine rewrites ``metrics/`` with
that machine's timings and scores, and the committed documentation must still pass ``make test`` after it.

    .venv/bin/python scripts/readme_tables.py [--check]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import segmentation_models_pytorch as smp  # noqa: E402

from stages.core.parsing.latency import table_rows  # noqa: E402

VARIANT_NAMES = {"torch_fp32": "torch fp32", "ort_fp32": "ORT fp32", "ort_int8": "ORT int8"}
# only smp's architectures take an encoder; the project's own (regseg, ddrnet...) ignore parser.encoder
SMP_ARCHS = {name.lower() for name in smp.MODEL_ARCHITECTURES_MAPPING}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


START, END = markers("latency-table")


def render_latency_table(latency: dict | None) -> str:
    """Markdown for the latency block: one row per model x variant x threads, and the run's reference."""
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


def render_synthetic_results(metrics: dict[str, dict | None]) -> str:
    """Markdown for the README's table of the embedded default: quality figures only, never timings."""
    parser, inpainter, finder, latency = (metrics.get(name) for name in ("parser", "inpainter", "mask_finder", "latency"))
    if parser is None or inpainter is None or finder is None or latency is None:
        return "_No benchmark metrics yet: run `dvc repro`, then `python scripts/readme_tables.py`._"
    path = parser["reframed"]["parse_path"]
    student = latency["student"]
    lines = [
        f"{parser['test_images']} test faces at {parser['input_size']}², `{parser['arch']}` parser with `{parser['loss']}`.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| parser, test F1 (10 fg classes) | {parser['mean_f1_fg']:.3f} (IoU {parser['mean_iou_fg']:.3f}, "
        f"pixel accuracy {parser['pixel_accuracy']:.3f}) |",
        f"| parser on reframed photos through `faceparse` | F1 {path['mean_f1_fg']:.3f}, a face found in "
        f"{parser['reframed']['photos_with_face']} of {parser['reframed']['images']} |",
        f"| student (`{student['arch']}`), test F1 | {student['variants']['ort_fp32']['test_f1_fg']:.3f} |",
        f"| `faceparse` default (`deploy`) | `{latency['default']}` |",
        f"| mask finder | IoU {finder['iou']:.3f}; a mask found on {finder['masked_found_rate']:.0%} of masked faces, "
        f"wrongly on {finder['clean_found_rate']:.0%} of clean ones |",
        f"| inpainter, PSNR inside the mask | {inpainter['inpainter']['psnr']:.2f} dB (Telea "
        f"{inpainter['telea']['psnr']:.2f}); whole photo {inpainter['inpainter']['psnr_whole']:.2f} dB |",
        f"| identity distance (dlib, lower is closer) | inpainter {inpainter['identity_distance']['inpainter']:.3f}, "
        f"Telea {inpainter['identity_distance']['telea']:.3f}, masked photo {inpainter['identity_distance']['masked']:.3f} |",
    ]
    features = inpainter.get("parser_feature_distance")  # metrics written before it existed have none
    if features:
        lines.append(f"| parser-feature distance (lower is closer) | inpainter {features['inpainter']:.3f}, "
                     f"Telea {features['telea']:.3f}, masked photo {features['masked']:.3f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Block:
    """One generated table: its markers' name, the Markdown file it lives in, and what it is rendered from."""
    name: str
    document: str
    sources: tuple[str, ...]
    render: Callable[[dict[str, dict | None]], str]


BLOCKS = (
    Block("synthetic-results", "README.md",
          ("metrics/parser.json", "metrics/inpainter.json", "metrics/mask_finder.json", "metrics/latency.json"),
          render_synthetic_results),
    Block("latency-table", "docs/deployment.md", ("metrics/latency.json",),
          lambda metrics: render_latency_table(metrics["latency"])),
)


def replace_block(text: str, body: str, name: str = "latency-table") -> str:
    start, end = markers(name)
    if start not in text or end not in text:
        raise ValueError(f"the markers {start} and {end} are missing")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def read_working(root: Path, rel: str) -> dict | None:
    path = root / rel
    return json.loads(path.read_text()) if path.is_file() else None


def read_committed(root: Path, rel: str) -> dict | None:
    """``rel`` as committed at git HEAD, or None outside a git checkout or where HEAD lacks it."""
    result = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=root, capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else None


def metric_sets(root: Path, block: Block, metrics_dir: Path | None) -> list[dict[str, dict | None]]:
    """The block's inputs from the working tree, then (unless ``metrics_dir`` overrides both) from git HEAD."""
    def named(reader) -> dict[str, dict | None]:
        return {Path(rel).stem: reader(rel) for rel in block.sources}
    if metrics_dir is not None:
        return [named(lambda rel: read_working(metrics_dir, Path(rel).name))]
    return [named(lambda rel: read_working(root, rel)), named(lambda rel: read_committed(root, rel))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a generated table matches neither the working nor the committed metrics")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project root [%(default)s]")
    parser.add_argument("--metrics", type=Path, default=None,
                        help="a folder of metrics JSON files to render from instead of <root>/metrics and git HEAD")
    args = parser.parse_args(argv)
    stale = []
    for block in BLOCKS:
        document = args.root / block.document
        if not document.is_file():
            print(f"{document}: missing; it should hold the {block.name} table")
            return 1
        text = document.read_text()
        try:
            candidates = [replace_block(text, block.render(metrics), block.name)
                          for metrics in metric_sets(args.root, block, args.metrics)]
        except ValueError as error:
            print(f"{document}: {error}")
            return 1
        if args.check:
            if text not in candidates:
                stale.append(f"{document}: the {block.name} table is out of date; run python scripts/readme_tables.py")
        elif candidates[0] != text:
            document.write_text(candidates[0])
    if stale:
        print("\n".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
