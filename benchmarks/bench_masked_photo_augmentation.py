"""The parser under the mask, before and after training with masked photos (``parser.augment.masked_photo``).

Starts from a trained parser (``--checkpoint``, trained without the augmentation) and fine-tunes one copy per
probability in ``--probabilities`` for ``--epochs`` on the first ``--train-limit`` training photos, with the
same seed, data order, loss and learning rate; only how often a photo is swapped for its masked copy differs
(0 is the control: the same extra training without masked photos). Prints, for the checkpoint and each copy,
the foreground-mean F1 restricted to the mask pixels of the masks stage's test photos, on the masked photos and
on the clean ones (:func:`stages.core.parsing.scoring.masked_region_scores`), and the F1 on the whole clean test split.

    HF_HUB_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1 .venv/bin/python benchmarks/bench_masked_photo_augmentation.py \
        --checkpoint models/parser.pt --probabilities 0,0.3,0.6 --epochs 1 --train-limit 256
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.data import Subset  # noqa: E402
from tqdm import tqdm  # noqa: E402

from stages.core.common.torch_utils import make_loader, seed_everything  # noqa: E402
from stages.core.data.cache_arrays import CachedSplit  # noqa: E402
from stages.core.data.masked_arrays import MaskedPhotos  # noqa: E402
from stages.core.models.registry import load_parser  # noqa: E402
from stages.core.parsing.losses import build_loss, supervised_loss  # noqa: E402
from stages.core.parsing.scoring import evaluate, masked_region_scores, predict_labels  # noqa: E402
from stages.core.parsing.training import ParserParams, SegmentationArrays, build_augmentation  # noqa: E402


def scores(model, masked_test: MaskedPhotos, clean_test: CachedSplit) -> dict:
    under = masked_region_scores(lambda images: predict_labels(model, images), masked_test, clean_test)
    return {"masked_photo_f1_fg": round(under["masked_photo_f1_fg"], 4),
            "clean_photo_f1_fg": round(under["clean_photo_f1_fg"], 4),
            "test_f1_fg": round(evaluate(model, clean_test)["mean_f1_fg"], 4)}


def fine_tune(model, payload: dict, probability: float, args, cache: Path, masks: Path):
    cfg = ParserParams.from_params(payload["config"])
    seed_everything(args.seed, args.threads)
    train = CachedSplit(cache, "train")
    dataset = SegmentationArrays(train, build_augmentation(cfg.augment), MaskedPhotos(masks, "train"), probability)
    dataset = Subset(dataset, range(min(args.train_limit or len(train), len(train))))
    loss_fn = build_loss(payload.get("loss") or "ce+dice", None, cfg.loss_options.as_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=cfg.weight_decay)
    for epoch in range(args.epochs):
        seed_everything(args.seed + epoch)
        dataset.dataset.augment.set_random_seed(args.seed + epoch)
        model.train()
        for images, labels in tqdm(make_loader(dataset, cfg.batch_size, True, args.seed + epoch),
                                   desc=f"p={probability} epoch {epoch + 1}", leave=False):
            optimizer.zero_grad(set_to_none=True)
            supervised_loss(model, model(images), labels, loss_fn).backward()
            optimizer.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("models/parser.pt"))
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--masks", type=Path, default=Path("data/masks"))
    parser.add_argument("--probabilities", default="0,0.3,0.6")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.0005)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-checkpoint", action="store_true", help="do not score the starting checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, payload = load_parser(args.checkpoint)
    masked_test, clean_test = MaskedPhotos(args.masks, "test"), CachedSplit(args.cache, "test")
    results = {}
    if not args.skip_checkpoint:
        results["checkpoint"] = scores(model, masked_test, clean_test)
        print(json.dumps({"checkpoint": results["checkpoint"]}), flush=True)
    for probability in (float(p) for p in args.probabilities.split(",")):
        tuned = fine_tune(copy.deepcopy(model), payload, probability, args, args.cache, args.masks)
        results[f"masked_photo={probability}"] = scores(tuned, masked_test, clean_test)
        print(json.dumps({f"masked_photo={probability}": results[f"masked_photo={probability}"]}), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
