"""The inpainter fine-tuned under the parser's labels, against the same extra training on true labels.

Starts from a training state (``--state``, default ``models/inpainter_last.pt``: the best generator of its run and
its last discriminator) and fine-tunes one copy per arm for ``--epochs`` with the run's own params, both learning
rates times ``--lr-factor`` and a cosine schedule to zero. The arms differ only in what guides the generator:

- ``true``: the true labels (the control: the same extra training as the others);
- ``parser``: the parser's mirror-averaged labels on the masked photos (``inpainter.parser_guide`` 1);
- ``augment``: the true labels, with ``inpainter.affine`` and ``inpainter.photometric`` 0.5.

Prints, for the start and each arm, PSNR and SSIM inside the mask and over the whole photo on the masks stage's
test photos, guided as ``faceparse unmask`` guides (the parser's mirror-averaged labels) and by the true labels.

    .venv/bin/python benchmarks/bench_inpainter_guide.py --epochs 3 --arms true,parser,augment
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from stages.core.common.torch_utils import load_checkpoint, require_keys  # noqa: E402
from stages.core.inference.parsing import ParserModel  # noqa: E402
from stages.core.inpainting.evaluation import image_scores  # noqa: E402
from stages.core.inpainting.parser_critic import FrozenParser  # noqa: E402
from stages.core.inpainting.training import InpainterParams, MaskedSplit, build_inpainter, fit_inpainter, inpaint  # noqa: E402
from stages.core.masks.config import MaskParams  # noqa: E402
from stages.core.models.inpainter import ParseGuidedInpainter  # noqa: E402

ARMS = {"true": {"parser_guide": 0.0},
        "parser": {"parser_guide": 1.0},
        "augment": {"parser_guide": 0.0, "affine": 0.5, "photometric": 0.5}}


def mean_scores(model: ParseGuidedInpainter, masked: np.ndarray, masks: np.ndarray, clean: np.ndarray,
                labels: np.ndarray) -> dict[str, float]:
    """Mean PSNR and SSIM inside the mask and whole over ``(N, S, S, 3)`` masked photos restored under ``labels``."""
    restored = inpaint(model, masked, masks, labels)
    rows = [image_scores(restored[i], clean[i], masks[i].astype(bool)) for i in range(len(restored))]
    return {key: round(float(np.mean([row[key] for row in rows])), 3) for key in ("psnr", "ssim", "psnr_whole", "ssim_whole")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, default=Path("models/inpainter_last.pt"), help="a training state to start from")
    parser.add_argument("--parser", type=Path, default=Path("models/parser.pt"), help="the parser whose labels guide")
    parser.add_argument("--masks", type=Path, default=Path("data/masks"))
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--arms", default="true,parser", help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr-factor", type=float, default=0.3, help="both learning rates of the run, times this")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    arms = [arm.strip() for arm in args.arms.split(",") if arm.strip()]
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")

    state = load_checkpoint(args.state)
    require_keys(state, ("best_state", "discriminator", "config"), args.state)
    run_cfg = InpainterParams.from_params(state["config"], args.state)
    test = MaskedSplit(args.masks, args.cache, "test")
    test_guide = ParserModel(args.parser, args.threads).mirror_averaged_labels(test.masked, progress="parser labels")
    critic = FrozenParser.load(args.parser)
    masked, masks = np.asarray(test.masked), np.asarray(test.masks)
    clean, truth = (np.asarray(array)[test.source_index] for array in (test.clean, test.labels))

    model = build_inpainter(run_cfg)
    model.load_state_dict(state["best_state"])
    results = {"start": model}
    for arm in arms:
        cfg = InpainterParams.from_params({**run_cfg.as_dict(), **ARMS[arm], "epochs": args.epochs,
                                           "lr": run_cfg.lr * args.lr_factor, "disc_lr": run_cfg.disc_lr * args.lr_factor,
                                           "lr_schedule": "cosine", "resume": "", "max_minutes": 0,
                                           "threads": args.threads})
        run = fit_inpainter(cfg, args.masks, args.cache, parser=critic, mask_params=MaskParams(),
                            warm_start={"generator": state["best_state"], "discriminator": state["discriminator"]})
        results[arm] = run.model
    print("| generator | guide | PSNR in mask | SSIM in mask | PSNR whole | SSIM whole |")
    print("|---|---|---|---|---|---|")
    table = {}
    for name, model in results.items():
        for guide_name, labels in (("parser", test_guide), ("true labels", truth)):
            scores = table.setdefault(name, {})[guide_name] = mean_scores(model, masked, masks, clean, labels)
            print(f"| {name} | {guide_name} | {scores['psnr']} | {scores['ssim']} | {scores['psnr_whole']} | "
                  f"{scores['ssim_whole']} |", flush=True)
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
