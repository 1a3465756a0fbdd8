"""`faceparse unmask` per photo, split by step, for today's dlib detection and CenterFace, in one run.

For each photo of ``--photos`` (default ``../shared/data/masked-faces``: ``with_mask/`` and ``without_mask/``) and
each detector of ``--detectors``, interleaved photo by photo so that both see the same machine, it times the
steps that :func:`stages.core.inference.unmask.unmask_photo` takes, with the models of ``models/``:

* ``decode``: reading the file (``read_image``: EXIF, colour modes);
* ``detect+landmarks``: ``find_faces`` (boxes and dlib's 68 points, the padded retry for CenterFace);
* ``align``: the similarity transform into the training framing and the warp of each face;
* ``mask finding``: the mask finder on the aligned faces;
* ``parsing``: the parser's mirror-averaged labels of each face with a mask (the inpainter's guide);
* ``inpainting``: the inpainter on each face with a mask;
* ``paste-back``: blending each restored face back into the photo.

``parse`` and ``enhance`` share decode, detection and alignment, then run the parser and paste its probabilities
back. Printed: per detector, the median milliseconds of each step and of the whole photo, its share of the
total, photos per second at ``--threads`` threads, and how many photos had a face and a mask found.

    .venv/bin/python benchmarks/bench_photo_steps.py [--detectors hog+cnn centerface] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from stages.core.common.io import read_image
from stages.core.inference.alignment import UPPER_FACE, Framing, alignment_matrix, warp_into_framing
from stages.core.inference.faces import DETECTORS, find_faces
from stages.core.inference.parsing import ParserModel
from stages.core.inference.unmask import InpainterModel, blend_back
from stages.core.mask_finding.finder import MaskFinder, face_pixels, regions_from_probabilities

STEPS = ("decode", "detect+landmarks", "align", "mask finding", "parsing", "inpainting", "paste-back")
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


class StepClock:
    """Milliseconds spent in each named step of one photo."""

    def __init__(self):
        self.ms = dict.fromkeys(STEPS, 0.0)
        self._start = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.ms[step] += 1000 * (now - self._start)
        self._start = now


def unmask_steps(path: Path, detector: str, finder: MaskFinder, parser: ParserModel, inpainter: InpainterModel,
                 framing: Framing, min_face_size: int) -> tuple[dict[str, float], int, int]:
    """``unmask_photo``'s work on one photo, step by step: (ms per step, faces found, faces with a mask)."""
    clock = StepClock()
    image = read_image(path)
    clock.lap("decode")
    detection = find_faces(image, min_face_size, detector)
    clock.lap("detect+landmarks")
    size = inpainter.size
    scaled = framing if framing.size == size else framing.scaled_to(size)
    matrices = [alignment_matrix(face.landmarks, scaled, UPPER_FACE) for face in detection.faces]
    crops = [warp_into_framing(image, matrix, size) for matrix in matrices]
    clock.lap("align")
    masks = (regions_from_probabilities(finder.probabilities(np.stack(crops)), finder.settings,
                                        face_pixels(scaled.template, scaled.size, size)) if crops else [])
    clock.lap("mask finding")
    restored, masked = image, 0
    for crop, matrix, mask in zip(crops, matrices, masks):
        if not mask.found:
            continue
        masked += 1
        labels = parser.mirror_averaged_labels(crop[None])
        clock.lap("parsing")
        face = inpainter.restore(crop[None], mask.region[None], labels)[0]
        clock.lap("inpainting")
        restored = blend_back(restored, face, mask.region, matrix)
        clock.lap("paste-back")
    return clock.ms, len(detection.faces), masked


def photos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "masked-faces",
                        help="a folder with with_mask/ and without_mask/ [%(default)s]")
    parser.add_argument("--detectors", nargs="+", default=["hog+cnn", "centerface"], choices=DETECTORS,
                        help="the detection paths to compare [%(default)s]")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "faceparse.onnx", help="parser [%(default)s]")
    parser.add_argument("--inpainter", type=Path, default=ROOT / "models" / "inpainter.onnx", help="[%(default)s]")
    parser.add_argument("--mask-finder", type=Path, default=ROOT / "models" / "mask_finder.onnx", help="[%(default)s]")
    parser.add_argument("--framing", type=Path, default=ROOT / "models" / "framing.json", help="[%(default)s]")
    parser.add_argument("--min-face-size", type=int, default=40, help="[%(default)s]")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over every photo; medians [%(default)s]")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads [%(default)s]")
    args = parser.parse_args(argv)

    folders = {kind: args.photos / kind for kind in ("with_mask", "without_mask")}
    missing = [str(folder) for folder in folders.values() if not folder.is_dir()]
    if missing:
        parser.error(f"no photos at {', '.join(missing)} (see ../shared/data/README.md)")
    try:
        models = (MaskFinder(args.mask_finder, args.threads), ParserModel(args.model, args.threads),
                  InpainterModel(args.inpainter, args.threads), Framing.load(args.framing))
    except (FileNotFoundError, ValueError) as error:
        print(f"bench_photo_steps: {error}", file=sys.stderr)
        return 2
    photos = [(kind, path) for kind, folder in folders.items() for path in photos_in(folder)]
    for detector in args.detectors:  # warm-up: sessions, detector weights, first-call allocations
        unmask_steps(photos[0][1], detector, *models, args.min_face_size)

    steps = {d: {s: [] for s in (*STEPS, "total")} for d in args.detectors}
    found = {d: {kind: [0, 0] for kind in folders} for d in args.detectors}  # photos with a face, with a mask
    for repeat in range(args.repeats):
        for kind, path in photos:
            for detector in args.detectors:
                ms, faces, masked = unmask_steps(path, detector, *models, args.min_face_size)
                per_photo = steps[detector]
                for step, value in ms.items():
                    per_photo[step].append(value)
                per_photo["total"].append(sum(ms.values()))
                if repeat == 0:
                    found[detector][kind][0] += faces > 0
                    found[detector][kind][1] += masked > 0

    counts = {kind: len(photos_in(folder)) for kind, folder in folders.items()}
    print(f"{len(photos)} photos x {args.repeats} passes, {args.threads} threads; median ms per photo (share of the "
          "summed medians)")
    header = "| step | " + " | ".join(args.detectors) + " |"
    print(header + "\n|" + "---|" * (len(args.detectors) + 1))
    medians = {d: {s: statistics.median(v) for s, v in steps[d].items()} for d in args.detectors}
    for step in (*STEPS, "total"):
        cells = []
        for detector in args.detectors:
            summed = sum(medians[detector][s] for s in STEPS) or 1.0
            share = "" if step == "total" else f" ({100 * medians[detector][step] / summed:.0f} %)"
            cells.append(f"{medians[detector][step]:.1f}{share}")
        print(f"| {step} | " + " | ".join(cells) + " |")
    print("| photos per second | " + " | ".join(f"{1000 / medians[d]['total']:.1f}" for d in args.detectors) + " |")
    for kind in folders:
        print(f"| {kind}: a face / a mask found | "
              + " | ".join(f"{found[d][kind][0]} / {found[d][kind][1]} of {counts[kind]}" for d in args.detectors)
              + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
