"""The mask finder on real photos: on how many masked faces it finds a mask, and on how many unmasked ones it
wrongly finds one (a region above ``min_region`` of the face), with a contact sheet to look at.

Usage: ``.venv/bin/python scripts/mask_finder_realdata.py [--model models/mask_finder.onnx]
[--framing models/framing.json] [--photos ../shared/data/masked-faces] [--sheet /tmp/mask_finder_sheet.png]
[--detector centerface]``

Reads ``with_mask/`` and ``without_mask/`` under ``--photos`` (see ../shared/data/README.md). Each photo's faces
are found and aligned as ``faceparse unmask`` does (CenterFace with its border retry, then the points a mask leaves
visible; ``--detector hog+cnn`` for ``parse``'s dlib path) and searched for a mask. A ``with_mask`` photo counts
as found when a mask is found on one of its faces; a ``without_mask`` photo counts as a false find when one of
its faces gets a region above ``min_region``. Photos where no face is found are counted apart.
The sheet shows each photo's largest face (aligned crop, the region found in red), captioned M (with_mask) or N
(without_mask) and the photo's number, MASK or none, the region's fraction of the face and the faces found.
It shows licensed photos: write it outside the repository and never commit it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.core.common.io import BadInputError, read_image, write_png
from stages.core.inference.alignment import UPPER_FACE, Framing
from stages.core.inference.photo_masks import find_photo_masks
from stages.core.mask_finding.finder import MaskFinder
from stages.core.masks.contact_sheet import contact_sheet

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def shown(crop: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The crop with the region tinted red and outlined."""
    out = crop.astype(np.float32)
    out[region] = out[region] * 0.45 + np.array([255, 0, 0]) * 0.55
    out = out.astype(np.uint8)
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 255, 0), 1)
    return out


def score_folder(folder: Path, finder: MaskFinder, framing: Framing, tiles: list, captions: list, tag: str,
                 detector: str) -> dict:
    """Counts for one folder; appends one captioned tile per photo (``tag`` + the photo's number)."""
    points = UPPER_FACE if detector == "centerface" else None  # as unmask_photo aligns, and parse
    counts = {"photos": 0, "with_face": 0, "found": 0, "fractions": []}
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
        counts["photos"] += 1
        try:
            image = read_image(path)
        except BadInputError as exc:
            print(f"  {path.name}: unreadable ({exc})")
            continue
        result = find_photo_masks(image, finder, framing, detector=detector, points=points)
        if not result.faces:
            tiles.append(cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA))
            captions.append(f"{tag}{path.stem[-3:]} no face")
            continue
        counts["with_face"] += 1
        counts["found"] += result.any_found
        largest = result.faces[0]
        counts["fractions"].append(round(max(f.mask.fraction for f in result.faces), 3))
        tiles.append(shown(largest.crop, largest.mask.region))
        mark = "MASK" if largest.mask.found else "none"
        captions.append(f"{tag}{path.stem[-3:]} {mark} {largest.mask.fraction:.1%} ({len(result.faces)}f)")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mask_finder.onnx")
    parser.add_argument("--framing", type=Path, default=ROOT / "models" / "framing.json")
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "masked-faces")
    parser.add_argument("--sheet", type=Path, default=Path("/tmp/mask_finder_sheet.png"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--detector", choices=("centerface", "hog+cnn", "hog", "cnn"), default="centerface",
                        help="centerface: faceparse unmask's path (default); hog+cnn: parse's")
    args = parser.parse_args()
    if args.sheet.resolve().is_relative_to(ROOT):
        parser.error(f"--sheet {args.sheet} is inside the repository; real photos must never be committed")
    if not args.photos.is_dir():
        parser.error(f"{args.photos}: no real photos here (see ../shared/data/README.md)")
    finder, framing = MaskFinder(args.model, args.threads), Framing.load(args.framing)
    tiles, captions = [], []
    masked = score_folder(args.photos / "with_mask", finder, framing, tiles, captions, "M", args.detector)
    unmasked = score_folder(args.photos / "without_mask", finder, framing, tiles, captions, "N", args.detector)
    print(f"settings: {finder.settings}")
    print(f"with_mask: a mask found in {masked['found']} of {masked['photos']} photos "
          f"({masked['with_face']} with a face found); largest fractions {masked['fractions']}")
    print(f"without_mask: a region above {finder.settings.min_region:.0%} of the face in {unmasked['found']} of "
          f"{unmasked['photos']} photos ({unmasked['with_face']} with a face found); fractions {unmasked['fractions']}")
    write_png(args.sheet, contact_sheet(tiles, captions, columns=10, size=160))
    print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
