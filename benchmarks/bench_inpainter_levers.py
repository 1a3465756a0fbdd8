"""The inpainter's levers, each trained from scratch in the same run: fixed against fresh masks, free-form holes,
shared augmentation, and the frozen parser's two loss terms.

Every arm starts from the ``inpainter`` section of params.yaml, takes its own overrides (``ARMS``), and trains for
``--epochs`` on the first ``--train-limit`` training faces (a small set shows learning by heart sooner). Per arm it
prints the last epoch's hole PSNR on as many training faces as val has (with the masks stage's masks: the ones a
fixed-mask run saw every epoch) and on val, their gap, and on the test split: PSNR inside the mask and over the
whole photo, guided by the parser as ``faceparse unmask`` is, the identity distance (dlib's descriptor, against the
clean photo) and the parser-feature distance. The per-epoch curves go to ``--out`` as JSON.

    .venv/bin/python benchmarks/bench_inpainter_levers.py --arms fixed,fresh,fresh_free_form --epochs 6 \\
        --train-limit 500 --out /tmp/levers.json
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

from stages.core.common.params import section  # noqa: E402
from stages.core.inference.parsing import ParserModel  # noqa: E402
from stages.core.inpainting.evaluation import image_scores  # noqa: E402
from stages.core.inpainting.identity import descriptor_distance, face_descriptor  # noqa: E402
from stages.core.inpainting.parser_critic import FrozenParser, photo_feature_distances  # noqa: E402
from stages.core.inpainting.training import InpainterParams, MaskedSplit, classical_inpaint, fit_inpainter, inpaint  # noqa: E402
from stages.core.masks.config import MaskParams  # noqa: E402

UNGUIDED = {"fresh_masks": 1.0, "guided": False, "parser_guide": 0.0}
ARMS = {
    "fixed": {"fresh_masks": 0.0},
    "fresh": {"fresh_masks": 1.0},
    "fresh_free_form": {"fresh_masks": 1.0, "free_form": 0.25},
    "fresh_augment": {"fresh_masks": 1.0, "affine": 0.5, "photometric": 0.5},
    "fresh_perceptual": {"fresh_masks": 1.0, "loss": {"parser_perceptual": 1.0}},
    "fresh_parse": {"fresh_masks": 1.0, "loss": {"parse": 0.05}},
    # learning by heart, without the parser's guide in training (as the last round measured it)
    "fixed_true_labels": {"fresh_masks": 0.0, "parser_guide": 0.0},
    "fresh_true_labels": {"fresh_masks": 1.0, "parser_guide": 0.0},
    # no label map at all: the generator draws the mouth from the visible face alone
    "fresh_unguided": UNGUIDED,
    # capacity: every level of the unguided generator about 1.33 and 2 times as wide (2.4 M and 4.4 M weights, not 1.1 M)
    "fresh_unguided_wide": {**UNGUIDED, "widths": [32, 64, 128, 192]},
    "fresh_unguided_wider": {**UNGUIDED, "widths": [48, 96, 192, 256]},
}


def merged(base: dict, overrides: dict) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def test_scores(model, test: MaskedSplit, guide: np.ndarray, critic: FrozenParser) -> dict[str, float]:
    masked, masks = np.asarray(test.masked), np.asarray(test.masks)
    clean = np.asarray(test.clean)[test.source_index]
    restored = inpaint(model, masked, masks, guide) if model is not None else \
        np.stack([classical_inpaint(masked[i], masks[i]) for i in range(len(masked))])
    rows = [image_scores(restored[i], clean[i], masks[i].astype(bool)) for i in range(len(restored))]
    identity = [descriptor_distance(face_descriptor(restored[i], test.landmarks[i]),
                                    face_descriptor(clean[i], test.landmarks[i])) for i in range(len(restored))]
    return {"test_psnr": float(np.mean([r["psnr"] for r in rows])),
            "test_psnr_whole": float(np.mean([r["psnr_whole"] for r in rows])),
            "test_identity": float(np.mean(identity)),
            "test_parser_feature": float(photo_feature_distances(critic, {"restored": restored}, clean)["restored"].mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default="fixed,fresh", help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-limit", type=int, default=500, help="the first N training faces; 0 = all")
    parser.add_argument("--parser", type=Path, default=Path("models/parser.pt"))
    parser.add_argument("--masks", type=Path, default=Path("data/masks"))
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--telea", action="store_true", help="also score OpenCV's Telea on the test split")
    parser.add_argument("--out", type=Path, help="write every arm's per-epoch history and scores here (JSON)")
    args = parser.parse_args(argv)
    arms = [arm.strip() for arm in args.arms.split(",") if arm.strip()]
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    if not args.parser.is_file():
        parser.error(f"{args.parser}: no trained parser (run `dvc repro train_parser`)")

    torch.set_num_threads(args.threads)
    base, mask_params = section("inpainter"), MaskParams.from_dict(section("masks"))
    critic = FrozenParser.load(args.parser)
    test = MaskedSplit(args.masks, args.cache, "test")
    guide = ParserModel(args.parser, args.threads).mirror_averaged_labels(test.masked, progress="parser labels (test)")
    results = {}
    if args.telea:
        results["telea"] = {"scores": test_scores(None, test, guide, critic)}
    print("| arm | s/epoch | train hole PSNR | val hole PSNR | train − val | test PSNR in mask | test PSNR whole | "
          "identity | parser-feature |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arm in arms:
        cfg = InpainterParams.from_params(merged(base, {**ARMS[arm], "epochs": args.epochs, "train_limit": args.train_limit,
                                                        "threads": args.threads, "max_minutes": 0, "resume": ""}))
        start = time.perf_counter()
        run = fit_inpainter(cfg, args.masks, args.cache, parser=critic, mask_params=mask_params)
        seconds = (time.perf_counter() - start) / args.epochs
        last = run.history[-1]
        scores = test_scores(run.model, test, guide, critic)
        results[arm] = {"overrides": ARMS[arm], "history": run.history, "scores": scores, "seconds_per_epoch": seconds}
        print(f"| {arm} | {seconds:.0f} | {last['train_hole_psnr']:.2f} | {last['val_hole_psnr']:.2f} | "
              f"{last['train_minus_val_psnr']:+.2f} | {scores['test_psnr']:.2f} | {scores['test_psnr_whole']:.2f} | "
              f"{scores['test_identity']:.3f} | {scores['test_parser_feature']:.4f} |", flush=True)
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
    if "telea" in results:
        t = results["telea"]["scores"]
        print(f"| Telea | | | | | {t['test_psnr']:.2f} | {t['test_psnr_whole']:.2f} | {t['test_identity']:.3f} | "
              f"{t['test_parser_feature']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
