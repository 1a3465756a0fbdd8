"""The inpainter's second round: a new mask per face and epoch, free-form holes, and the frozen parser as critic."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from inpainting_fixtures import face_mask_params, write_face_project

from stages.core.inpainting.parser_critic import FrozenParser, hole_parse_loss, parser_feature_distance
from stages.core.inpainting.training import InpainterParams, InpaintingSamples, MaskedSplit, fit_inpainter
from stages.core.masks.free_form import free_form_hole, lower_face_box
from stages.core.masks.landmarks import EYES, MOUTH, NOSE_LOWER
from stages.core.models.registry import build_parser

TINY = {"widths": [8, 8, 16, 16], "blocks": 1, "disc_widths": [8, 16], "batch_size": 4,
        "loss": {"ssim_kind": "ssim"}, "sample_rows": 2, "parser_guide": 0.0}


@pytest.fixture(scope="module")
def faces_project(tmp_path_factory):
    return write_face_project(tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="module")
def train_split(faces_project):
    return MaskedSplit(*faces_project, "train")


def _samples(split, **options) -> InpaintingSamples:
    return InpaintingSamples(split, mask_params=face_mask_params(), seed=3, **options)


def test_the_masks_stage_stores_each_masked_face_s_landmarks(faces_project, train_split):
    cached = np.load(faces_project[1] / "train_landmarks.npy")
    np.testing.assert_array_equal(np.asarray(train_split.landmarks), cached[train_split.source_index])


def test_a_fresh_mask_each_epoch_repeatable_from_the_seed(train_split):
    samples = _samples(train_split, fresh_masks=1.0)
    drawn = {}
    for epoch in (0, 1, 0):
        samples.set_epoch(epoch)
        drawn.setdefault(epoch, []).append([samples.sample(i) for i in range(4)])
    assert samples.kept_stage_masks == 0
    for i in range(4):
        first, second, again = drawn[0][0][i], drawn[1][0][i], drawn[0][1][i]
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)  # the same (seed, epoch, index): the same mask
        assert not np.array_equal(first[1], second[1])  # another epoch: another mask
        assert not np.array_equal(first[1], train_split.masks[i])  # and not the masks stage's
        masked, mask, clean = first
        np.testing.assert_array_equal(masked[mask == 0], clean[mask == 0])  # the region holds every changed pixel
        points = np.round(np.asarray(train_split.landmarks[i])).astype(int)
        assert mask[points[MOUTH, 1], points[MOUTH, 0]].all() and mask[points[NOSE_LOWER, 1], points[NOSE_LOWER, 0]].all()
        assert not mask[points[EYES, 1], points[EYES, 0]].any()


def test_no_fresh_masks_keeps_the_masks_stage_s(train_split):
    samples = _samples(train_split, fresh_masks=0.0)
    samples.set_epoch(4)
    for i in range(3):
        for a, b in zip(samples.sample(i), train_split.pair(i)):
            np.testing.assert_array_equal(a, b)


def test_free_form_holes_lie_on_the_lower_face_and_add_to_the_mask(train_split):
    landmarks = np.asarray(train_split.landmarks[0])
    shape = train_split.masks.shape[1:]
    x0, y0, x1, y1 = lower_face_box(landmarks, shape)
    holes = [free_form_hole(landmarks, shape, np.random.default_rng(seed)) for seed in range(20)]
    assert all(h.any() for h in holes) and len({h.tobytes() for h in holes}) == 20
    union = np.maximum.reduce(holes)
    ys, xs = np.nonzero(union)
    assert ys.min() >= y0 and ys.max() < y1 and xs.min() >= x0 and xs.max() < x1
    assert ys.min() > landmarks[EYES, 1].mean()  # below the eyes
    samples = _samples(train_split, free_form=1.0)
    samples.set_epoch(0)
    for i in range(4):
        _, mask, _ = samples.sample(i)
        stage = np.asarray(train_split.masks[i])
        assert (mask >= stage).all() and mask.sum() > stage.sum()


@pytest.mark.parametrize("arch", ["regseg_slim", "ddrnet23_slim", "Unet"])
def test_frozen_parser_gives_encoder_levels_and_passes_gradients_to_the_photo_only(arch):
    parser = FrozenParser(build_parser({"arch": arch, "encoder": "resnet18", "encoder_weights": None}, 11))
    parser.train()
    assert not parser.parser.training  # stays in eval mode
    images = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    levels, logits = parser(images)
    assert logits.shape == (2, 11, 64, 64) and len(levels) >= 3
    assert all(level.shape[0] == 2 and level.shape[-1] < 64 for level in levels)
    other = parser(images.detach() * 0.5)[0]
    distance = parser_feature_distance(levels, other)
    assert distance.shape == (2,) and (distance > 0).all()
    assert torch.allclose(parser_feature_distance(levels, levels), torch.zeros(2))
    distance.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in parser.parameters())


def test_hole_parse_loss_counts_only_the_hole():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    logits = torch.zeros(1, 11, 8, 8)
    logits[:, 0] = 10.0  # right everywhere...
    logits[:, :, :4] = 0
    logits[:, 3, :4] = 10.0  # ...except the top half, read as class 3
    top, bottom = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    top[..., :4, :] = 1
    bottom[..., 4:, :] = 1
    assert hole_parse_loss(logits, labels, bottom) < 1e-3 < 9 < hole_parse_loss(logits, labels, top)


def test_training_with_fresh_masks_and_parser_terms_logs_the_gap_and_is_deterministic(faces_project):
    masks_dir, cache_dir = faces_project
    parser = FrozenParser(build_parser({"arch": "regseg_slim"}, 11))
    cfg = {**TINY, "epochs": 2, "fresh_masks": 1.0, "free_form": 0.5, "parser_guide": 1.0,
           "loss": {"ssim_kind": "ssim", "parser_perceptual": 1.0, "parse": 0.1}}
    runs = [fit_inpainter(InpainterParams.from_params(c), masks_dir, cache_dir, parser=parser,
                          mask_params=face_mask_params()).history
            for c in (cfg, cfg, {**cfg, "fresh_masks": 0.0})]
    assert runs[0] == runs[1] != runs[2]
    row = runs[0][-1]
    assert {"parser_perceptual", "parse", "val_hole_psnr", "train_hole_psnr", "train_minus_val_psnr"} <= set(row)
    assert row["train_minus_val_psnr"] == pytest.approx(row["train_hole_psnr"] - row["val_hole_psnr"])
    assert 5 < row["val_hole_psnr"] < 60


def test_the_train_faces_scored_each_epoch_are_faces_it_trains_on(faces_project, monkeypatch):
    from stages.core.inpainting import training

    scored = []
    original = training.ScoredPhotos.of.__func__

    def recording(cls, split, rows, parser, device):
        scored.append(list(rows))
        return original(cls, split, rows, parser, device)

    monkeypatch.setattr(training.ScoredPhotos, "of", classmethod(recording))
    fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 1, "train_limit": 5}), *faces_project,
                  mask_params=face_mask_params())
    val_rows, train_rows = scored
    assert val_rows == [0, 1, 2, 3] and len(train_rows) == 4 and max(train_rows) <= 4
