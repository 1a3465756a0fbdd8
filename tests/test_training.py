"""Training features on a tiny synthetic cache: augmentation, optimizers, schedules, early stopping, resume."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from stages.core.common.classes import CLASS_NAMES, NUM_CLASSES
from stages.core.parsing.training import (
    OPTIMIZERS,
    EarlyStopping,
    LearningRateSchedule,
    build_augmentation,
    build_optimizer,
    fit_parser,
    load_class_weights,
)

SIZE = 64
TINY_CFG = {"arch": "Unet", "encoder": "tu-mobilenetv3_small_050", "encoder_weights": None,
            "decoder_channels": [16, 16, 8, 8, 8], "epochs": 2, "batch_size": 4, "lr": 0.003, "weight_decay": 1e-4,
            "threads": 1, "augment": {"hflip": 0.5}}


def blob_faces(n: int, seed: int):
    """``n`` images (SIZE, SIZE, 3) with an ellipse 'face' (class 7) and a box 'hair' (class 4) on background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    images = rng.integers(0, 60, (n, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.zeros((n, SIZE, SIZE), np.uint8)
    for i in range(n):
        cy, cx, r = rng.integers(24, 40), rng.integers(24, 40), rng.integers(10, 18)
        face = ((yy - cy) / r) ** 2 + ((xx - cx) / (0.8 * r)) ** 2 < 1
        hair = (yy < cy - r + 4) & (np.abs(xx - cx) < r) & ~face
        labels[i][face], labels[i][hair] = 7, 4
        images[i][face] = (200, 160, 140)
        images[i][hair] = (40, 30, 20)
    return images, labels


@pytest.fixture
def tiny_cache(tmp_path):
    for split, n, seed in (("train", 8, 0), ("val", 4, 1), ("test", 4, 2)):
        images, labels = blob_faces(n, seed)
        np.save(tmp_path / f"{split}_images.npy", images)
        np.save(tmp_path / f"{split}_labels.npy", labels)
        np.save(tmp_path / f"{split}_landmarks.npy", np.full((n, 68, 2), np.nan, np.float32))
        pd.DataFrame({"row": range(n), "id": range(n), "source": "blobs"}).to_csv(tmp_path / f"{split}_ids.csv",
                                                                                   index=False)
    return tmp_path


# ---------------------------------------------------------------------------------------------- augmentation

FULL_AUGMENT = {"hflip": 0.5, "affine": 1.0, "rotate_limit": 30, "color_jitter": 1.0, "coarse_dropout": 1.0,
                "blur": 1.0, "noise": 1.0, "jpeg": 1.0}


def test_no_augmentation_when_nothing_is_enabled():
    assert build_augmentation({"hflip": 0, "affine": 0.0}) is None
    defaults = {type(t).__name__ for t in build_augmentation({}).transforms}  # params.yaml's: hflip and affine
    assert defaults == {"HorizontalFlip", "Affine"}


def test_every_augmentation_keeps_labels_nearest_neighbour():
    augment = build_augmentation(FULL_AUGMENT)
    names = {type(t).__name__ for t in augment.transforms}
    assert {"HorizontalFlip", "Affine", "ColorJitter", "CoarseDropout", "OneOf", "GaussNoise",
            "ImageCompression"} <= names
    images, labels = blob_faces(4, 3)
    augment.set_random_seed(0)
    for image, label in zip(images, labels):
        out = augment(image=image, mask=label)
        assert out["image"].shape == image.shape and out["image"].dtype == np.uint8
        assert out["mask"].shape == label.shape
        assert set(np.unique(out["mask"])) <= {0, 4, 7}  # no blended ids from linear interpolation


def test_hflip_mirrors_the_label_without_swapping_classes():
    images, labels = blob_faces(1, 4)
    out = build_augmentation({"hflip": 1.0, "affine": 0})(image=images[0], mask=labels[0])
    assert np.array_equal(out["mask"], labels[0][:, ::-1])


def test_coarse_dropout_hides_pixels_but_keeps_the_label():
    images, labels = blob_faces(1, 5)
    augment = build_augmentation({"hflip": 0, "affine": 0, "coarse_dropout": 1.0, "dropout_size": 0.5})
    augment.set_random_seed(1)
    out = augment(image=images[0], mask=labels[0])
    assert not np.array_equal(out["image"], images[0])
    assert np.array_equal(out["mask"], labels[0])


# ------------------------------------------------------------------------------------- optimizers, schedules

@pytest.mark.parametrize("name", OPTIMIZERS)
def test_timm_optimizers_take_a_finite_step(name):
    model = torch.nn.Conv2d(3, NUM_CLASSES, 1)
    optimizer = build_optimizer(model, {"optimizer": name, "lr": 0.01, "weight_decay": 1e-4})
    expected = {"adam": "Adam", "adamw": "AdamW", "adamp": "AdamP", "adabelief": "AdaBelief", "sgd": "SGD"}[name]
    assert type(optimizer).__name__ == expected
    before = model.weight.detach().clone()
    loss = model(torch.randn(2, 3, 4, 4)).square().mean()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(model.weight).all() and not torch.equal(before, model.weight)


def test_sgd_gets_momentum():
    optimizer = build_optimizer(torch.nn.Linear(2, 2), {"optimizer": "sgd", "lr": 0.1, "momentum": 0.8})
    assert optimizer.param_groups[0]["momentum"] == 0.8


def test_cosine_schedule_with_warmup():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = LearningRateSchedule(optimizer, {"scheduler": "cosine", "warmup_epochs": 1}, steps_per_epoch=2,
                                    epochs=3)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(6):
        optimizer.step()
        schedule.after_step()
        lrs.append(optimizer.param_groups[0]["lr"])
    # warm-up 1/2, 2/2, then cosine over the 4 remaining steps: 1, (1+cos(pi/4))/2, 1/2, (1+cos(3pi/4))/2, 0
    expected = [0.5, 1.0, 1.0, (1 + np.cos(np.pi / 4)) / 2, 0.5, (1 + np.cos(3 * np.pi / 4)) / 2, 0.0]
    assert lrs == pytest.approx(expected, abs=1e-9)


def test_plateau_schedule_cuts_lr_after_patience_epochs_without_gain():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = LearningRateSchedule(optimizer, {"scheduler": "plateau", "plateau_patience": 1,
                                                "plateau_factor": 0.5}, steps_per_epoch=3, epochs=5)
    lrs = []
    for f1 in (0.5, 0.6, 0.6, 0.6, 0.6):
        schedule.after_step()  # no effect on a plateau schedule
        schedule.after_epoch(f1)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5]


def test_unknown_scheduler_is_refused():
    with pytest.raises(ValueError, match="plateau"):
        LearningRateSchedule(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), {"scheduler": "step"},
                             1, 1)


def test_early_stopping_counts_epochs_without_a_better_score():
    stopper = EarlyStopping(patience=2)
    assert [stopper.update(s) for s in (0.5, 0.6, 0.55, 0.6, 0.7, 0.7, 0.69)] == [
        False, False, False, True, False, False, True]
    never = EarlyStopping(patience=0)
    assert not any(never.update(0.1) for _ in range(10))


def test_class_weights_by_mode_list_or_none(tmp_path):
    table = {"equal": [1.0] * NUM_CLASSES, "empirical": list(np.linspace(0.1, 2, NUM_CLASSES))}
    (tmp_path / "w.json").write_text(json.dumps(table))
    assert load_class_weights(tmp_path / "w.json", "none") is None
    empirical = torch.tensor(table["empirical"], dtype=torch.float32)
    assert torch.allclose(load_class_weights(tmp_path / "w.json", "empirical"), empirical)
    assert load_class_weights(tmp_path / "w.json", [2.0] * NUM_CLASSES).sum() == 2.0 * NUM_CLASSES
    with pytest.raises(KeyError, match="proportional"):
        load_class_weights(tmp_path / "w.json", "proportional")
    with pytest.raises(ValueError, match="11"):
        load_class_weights(tmp_path / "w.json", [1.0, 2.0])


# ----------------------------------------------------------------------------------------------- the loop

class RecordingLive:
    def __init__(self):
        self.metrics, self.steps = {}, 0

    def log_metric(self, name, value):
        self.metrics.setdefault(name, []).append(value)

    def next_step(self):
        self.steps += 1


def test_fit_parser_logs_every_epoch_and_keeps_the_best(tiny_cache):
    live = RecordingLive()
    cfg = {**TINY_CFG, "optimizer": "adamp", "scheduler": "plateau", "augment": FULL_AUGMENT}
    run = fit_parser(cfg, "ce+dice", tiny_cache, torch.ones(NUM_CLASSES), live=live, seed=0)
    assert [row["epoch"] for row in run.history] == [1, 2] and live.steps == 2
    assert all(np.isfinite(row["train_loss"]) and row["epoch_seconds"] > 0 for row in run.history)
    assert run.best["val_mean_f1_fg"] == max(row["val_mean_f1_fg"] for row in run.history)
    assert {"train_loss", "val_mean_f1_fg", "lr", "epoch_seconds", "val_f1/face"} <= set(live.metrics)
    assert all(not k.startswith("val_f1/") or k[7:] in CLASS_NAMES for k in live.metrics)


def test_fit_parser_learns_the_blobs(tiny_cache):
    cfg = {**TINY_CFG, "epochs": 6, "lr": 0.01, "augment": {}}
    run = fit_parser(cfg, "ce", tiny_cache, None, seed=0)
    assert run.history[-1]["train_loss"] < 0.7 * run.history[0]["train_loss"]


def test_early_stopping_ends_the_run(tiny_cache, monkeypatch):
    from stages.core.parsing import training

    scores = iter([0.5, 0.6, 0.55, 0.58, 0.7, 0.7])
    real_evaluate = training.evaluate

    def scripted_evaluate(*args, **kwargs):
        return {**real_evaluate(*args, **kwargs), "mean_f1_fg": next(scores)}

    monkeypatch.setattr(training, "evaluate", scripted_evaluate)
    run = fit_parser({**TINY_CFG, "epochs": 6, "early_stopping_patience": 2}, "ce", tiny_cache, None, seed=0)
    assert [row["val_mean_f1_fg"] for row in run.history] == [0.5, 0.6, 0.55, 0.58]
    assert run.stopped_early and run.best["epoch"] == 2


def test_resumed_run_ends_with_the_same_weights(tiny_cache, tmp_path):
    cfg = {**TINY_CFG, "epochs": 2, "augment": {"hflip": 0.5, "affine": 0.5}}
    straight = fit_parser(cfg, "ce", tiny_cache, None, seed=3)
    # a run cut short after its first epoch (max_minutes tiny), then resumed from its checkpoint
    ckpt = tmp_path / "last.pt"
    first = fit_parser({**cfg, "max_minutes": 1e-9}, "ce", tiny_cache, None, seed=3, checkpoint_path=ckpt)
    assert len(first.history) == 1 and first.stopped_early
    resumed = fit_parser(cfg, "ce", tiny_cache, None, seed=3, checkpoint_path=ckpt, resume_from=ckpt)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert resumed.history[1]["train_loss"] == pytest.approx(straight.history[1]["train_loss"], rel=1e-6)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_resume_refuses_a_checkpoint_of_other_params(tiny_cache, tmp_path):
    ckpt = tmp_path / "last.pt"
    fit_parser({**TINY_CFG, "epochs": 1}, "ce", tiny_cache, None, seed=3, checkpoint_path=ckpt)
    with pytest.raises(ValueError, match=r"last.pt: cannot resume: .*parser\.lr: 0\.003 there, 0\.01 here"):
        fit_parser({**TINY_CFG, "epochs": 1, "lr": 0.01}, "ce", tiny_cache, None, seed=3, resume_from=ckpt)
    with pytest.raises(ValueError, match=r"cannot resume: .*loss: 'ce' there, 'focal' here"):
        fit_parser({**TINY_CFG, "epochs": 1}, "focal", tiny_cache, None, seed=3, resume_from=ckpt)
    with pytest.raises(ValueError, match=r"cannot resume: .*seed: 3 there, 4 here"):
        fit_parser({**TINY_CFG, "epochs": 1}, "ce", tiny_cache, None, seed=4, resume_from=ckpt)


def test_the_same_training_writes_byte_identical_checkpoints(tiny_cache, tmp_path):
    for run in ("a", "b"):  # torch.save names the zip's entries after the file: same name, other folders
        fit_parser({**TINY_CFG, "epochs": 1}, "ce", tiny_cache, None, seed=3, checkpoint_path=tmp_path / run / "last.pt")
    assert (tmp_path / "a" / "last.pt").read_bytes() == (tmp_path / "b" / "last.pt").read_bytes()


# ---------------------------------------------------------------------------------- masked-photo augmentation

def _masked_copies(tmp_path, images, rows):
    """A masks-stage folder for the ``train`` split: rows ``rows`` of ``images`` with a green box drawn on them."""
    masked = np.stack([images[r].copy() for r in rows])
    masks = np.zeros(masked.shape[:3], np.uint8)
    masked[:, 30:50, 20:44] = (0, 255, 0)
    masks[:, 30:50, 20:44] = 1
    folder = tmp_path / "masks"
    folder.mkdir()
    np.save(folder / "train_masked.npy", masked)
    np.save(folder / "train_masks.npy", masks)
    np.save(folder / "train_source_index.npy", np.asarray(rows, np.int64))
    np.save(folder / "train_landmarks.npy", np.full((len(rows), 68, 2), np.nan, np.float32))
    return folder


def test_masked_photo_augmentation_substitutes_the_masked_copy_and_keeps_the_label(tiny_cache):
    from stages.core.data.cache_arrays import CachedSplit
    from stages.core.data.masked_arrays import MaskedPhotos
    from stages.core.models.preprocessing import normalise
    from stages.core.parsing.training import SegmentationArrays

    split = CachedSplit(tiny_cache, "train")
    masked = MaskedPhotos(_masked_copies(tiny_cache, np.asarray(split.images), [1, 3, 4]), "train")
    always = SegmentationArrays(split, None, masked, masked_photo=1.0)
    never = SegmentationArrays(split, None, masked, masked_photo=0.0)
    for row in range(len(split)):
        image, label = always[row]
        assert np.array_equal(label.numpy(), split.labels[row]), "labels stay the clean photo's"
        source = masked.masked[masked.masked_row(row)] if row in (1, 3, 4) else split.images[row]
        assert np.allclose(image.numpy(), normalise(np.asarray(source))), f"row {row}"
        assert np.allclose(never[row][0].numpy(), normalise(np.asarray(split.images[row])))
    np.random.seed(0)
    substituted = [not np.allclose(SegmentationArrays(split, None, masked, 0.5)[1][0].numpy(),
                                   normalise(np.asarray(split.images[1]))) for _ in range(40)]
    assert 8 < sum(substituted) < 32, "about half the draws use the masked copy"


def test_fit_parser_reads_the_masked_photos(tiny_cache, monkeypatch):
    from stages.core.parsing import training

    folder = _masked_copies(tiny_cache, np.load(tiny_cache / "train_images.npy"), [0, 2])
    seen = []
    original = training.SegmentationArrays.__init__

    def recording_init(self, split, augment=None, masked=None, masked_photo=0.0):
        seen.append((masked, masked_photo))
        original(self, split, augment, masked, masked_photo)

    monkeypatch.setattr(training.SegmentationArrays, "__init__", recording_init)
    cfg = {**TINY_CFG, "epochs": 1, "augment": {"masked_photo": 0.7}}
    fit_parser(cfg, "ce", tiny_cache, None, seed=0, masks_dir=folder)
    assert len(seen) == 1 and seen[0][1] == 0.7 and seen[0][0].masked_row(2) == 1
