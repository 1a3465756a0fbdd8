"""The inpainter averaged with its own restoration of the mirror image, against the plain restoration.

On the masks stage's test photos, guided as ``faceparse unmask`` guides (the parser's mirror-averaged labels), the
generator restores each masked photo and, separately, its mirror image; the second is flipped back and the two are
averaged (both keep the photo's own pixels outside the mask, so only the hole changes). Prints PSNR and SSIM inside
the mask and over the whole photo, the identity distance of each (and of OpenCV's Telea), the paired identity
differences with their 95 % intervals, and the seconds each took: averaging costs a second pass of the generator.

    .venv/bin/python benchmarks/bench_inpainter_mirror.py --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from stages.core.inference.parsing import ParserModel  # noqa: E402
from stages.core.inpainting.evaluation import identity_distances, image_scores, paired_mean_difference  # noqa: E402
from stages.core.inpainting.training import MaskedSplit, classical_inpaint, inpaint, load_inpainter  # noqa: E402


def mirrored(images: np.ndarray) -> np.ndarray:
    """``(N, S, S, ...)`` -> the same flipped left to right (the 11 classes have no left or right, so labels flip too)."""
    return np.ascontiguousarray(np.asarray(images)[:, :, ::-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/inpainter.pt"), help="the inpainter checkpoint")
    parser.add_argument("--parser", type=Path, default=Path("models/parser.pt"), help="the parser whose labels guide")
    parser.add_argument("--masks", type=Path, default=Path("data/masks"))
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model = load_inpainter(args.model)
    test = MaskedSplit(args.masks, args.cache, "test")
    masked, masks = np.asarray(test.masked), np.asarray(test.masks)
    clean = np.asarray(test.clean)[test.source_index]
    guide = ParserModel(args.parser, args.threads).mirror_averaged_labels(masked, progress="parser labels")

    start = time.perf_counter()
    plain = inpaint(model, masked, masks, guide)
    seconds = {"plain": time.perf_counter() - start}
    start = time.perf_counter()
    flipped_back = mirrored(inpaint(model, mirrored(masked), mirrored(masks), mirrored(guide)))
    averaged = np.rint((plain.astype(np.float32) + flipped_back) / 2).astype(np.uint8)
    seconds["mirror_averaged"] = seconds["plain"] + time.perf_counter() - start
    start = time.perf_counter()
    telea = np.stack([classical_inpaint(masked[i], masks[i]) for i in range(len(masked))])
    seconds["telea"] = time.perf_counter() - start
    methods = {"plain": plain, "mirror_averaged": averaged, "telea": telea}

    distances = identity_distances(methods, clean, np.asarray(test.landmarks))
    print("| restoration | PSNR in mask | SSIM in mask | PSNR whole | SSIM whole | identity distance | seconds |")
    print("|---|---|---|---|---|---|---|")
    table = {}
    for name, photos in methods.items():
        rows = [image_scores(photos[i], clean[i], masks[i].astype(bool)) for i in range(len(photos))]
        scores = {key: round(float(np.mean([row[key] for row in rows])), 3)
                  for key in ("psnr", "ssim", "psnr_whole", "ssim_whole")}
        scores["identity"] = round(float(np.mean(distances[name])), 4)
        table[name] = scores
        print(f"| {name} | {scores['psnr']} | {scores['ssim']} | {scores['psnr_whole']} | {scores['ssim_whole']} | "
              f"{scores['identity']} | {seconds[name]:.1f} |", flush=True)
    table["identity_averaged_minus_plain"] = paired_mean_difference(distances["mirror_averaged"], distances["plain"])
    table["identity_averaged_minus_telea"] = paired_mean_difference(distances["mirror_averaged"], distances["telea"])
    table["identity_plain_minus_telea"] = paired_mean_difference(distances["plain"], distances["telea"])
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
