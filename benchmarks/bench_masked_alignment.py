"""How far a masked face's alignment lands from its clean face's: all 68 landmarks against the visible upper face.

For each masked photo of the masks stage (``data/masks/{split}_masked.npy``), the clean photo it was drawn on
(``data/cache``) gives the reference alignment into the training framing (``models/framing.json``): from its known
landmarks (synthetic faces), or else from the 68 landmarks ``find_faces`` predicts on the clean photo (real data,
whose cache holds none). On the masked photo, ``find_faces`` predicts the 68 landmarks, and the crop is aligned two ways:

* ``all 68``: today's fit to every landmark, jaw and mouth included, which dlib guesses under a mask;
* ``upper face``: the fit to the points a mask leaves visible (:data:`~stages.core.inference.alignment.UPPER_FACE`:
  eyebrows, nose bridge, eyes).

Each fit is compared with the same fit to the clean photo's reference landmarks ("masked against clean"); the
same two fits on the clean photo's predicted landmarks are the control (zero where the reference is that very
prediction). Printed: the mean and median over faces of the corner error, the mean distance between where a crop
corner lands in the photo and where the reference puts it, as a percentage of the crop's side, and the faces
found.

    .venv/bin/python benchmarks/bench_masked_alignment.py [--split test] [--detector centerface]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2
import numpy as np

from stages.core.data.cache_arrays import CachedSplit
from stages.core.inference.alignment import UPPER_FACE, Framing, alignment_matrix
from stages.core.inference.faces import DETECTORS, find_faces

FITS = {"all 68": None, "upper face": UPPER_FACE}


def crop_corners_in_photo(matrix: np.ndarray, size: int) -> np.ndarray:
    """``(4, 2)``: where the corners of the ``size``² aligned crop lie in the photo (the inverse of ``matrix``)."""
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
    inverse = cv2.invertAffineTransform(matrix)
    return corners @ inverse[:, :2].T + inverse[:, 2]


def corner_error(matrix: np.ndarray, reference: np.ndarray, size: int) -> float:
    """Mean distance of the four crop corners from the reference's, in percent of the crop side in the photo."""
    ours, truth = crop_corners_in_photo(matrix, size), crop_corners_in_photo(reference, size)
    side = np.linalg.norm(truth[1] - truth[0])
    return float(100 * np.linalg.norm(ours - truth, axis=1).mean() / side)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=Path, default=ROOT / "data" / "masks", help="[%(default)s]")
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "cache", help="[%(default)s]")
    parser.add_argument("--framing", type=Path, default=ROOT / "models" / "framing.json", help="[%(default)s]")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="[%(default)s]")
    parser.add_argument("--detector", default="centerface", choices=DETECTORS, help="[%(default)s]")
    parser.add_argument("--min-face-size", type=int, default=20, help="pixels of the cached photo [%(default)s]")
    parser.add_argument("--limit", type=int, default=0, help="the first N masked photos; 0 = all [%(default)s]")
    args = parser.parse_args(argv)

    masked_path = args.masks / f"{args.split}_masked.npy"
    if not masked_path.is_file():
        parser.error(f"{masked_path}: no masked photos (run `dvc repro masks`)")
    masked = np.load(masked_path, mmap_mode="r")
    source = np.load(args.masks / f"{args.split}_source_index.npy")
    clean = CachedSplit(args.cache, args.split)
    truth_landmarks = np.load(args.cache / f"{args.split}_landmarks.npy", mmap_mode="r")
    framing = Framing.load(args.framing)
    size = framing.size
    count = len(masked) if args.limit <= 0 else min(args.limit, len(masked))

    errors = {(photo, fit): [] for photo in ("masked", "clean") for fit in FITS}
    found = {"masked": 0, "clean": 0}
    usable = 0
    for i in range(count):
        truth = np.asarray(truth_landmarks[source[i]], np.float64)
        photos = {"masked": masked[i], "clean": clean.images[source[i]]}
        faces = {photo: find_faces(np.ascontiguousarray(image), args.min_face_size, args.detector).faces
                 for photo, image in photos.items()}
        if not np.isfinite(truth).all():
            if not faces["clean"]:
                continue
            truth = faces["clean"][0].landmarks
        usable += 1
        references = {fit: alignment_matrix(truth, framing, points) for fit, points in FITS.items()}
        for photo in photos:
            if not faces[photo]:
                continue
            found[photo] += 1
            for fit, points in FITS.items():
                errors[photo, fit].append(corner_error(alignment_matrix(faces[photo][0].landmarks, framing, points),
                                                       references[fit], size))
    print(f"{args.split}: {usable} masked photos with a reference alignment; a face found on {found['masked']} masked, "
          f"{found['clean']} clean ({args.detector})")
    print("| photo | fit | mean corner error (% of the crop side) | median |\n|---|---|---|---|")
    for (photo, fit), values in errors.items():
        if values:
            print(f"| {photo} | {fit} | {statistics.fmean(values):.2f} | {statistics.median(values):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
