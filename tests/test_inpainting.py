import numpy as np
import pytest
import torch
from inpainting_fixtures import write_masked_project

from stages.core.common.torch_utils import CheckpointError, load_checkpoint, save_checkpoint
from stages.core.inference.parsing import onnx_session
from stages.core.inpainting.parser_critic import FrozenParser
from stages.core.inpainting.training import (
    InpainterLossWeights,
    InpainterParams,
    InpaintingSamples,
    MaskedSplit,
    _check_resumable,
    build_pair_augmentation,
    classical_inpaint,
    discriminator_loss,
    export_inpainter_onnx,
    feature_matching,
    fit_inpainter,
    load_inpainter,
    r1_penalty,
    split_guides,
    structural_loss,
    to_uint8,
    to_unit_range,
    weighted_l1,
)
from stages.core.models.inpainter import FFC, ParseGuidedInpainter, PatchDiscriminator, one_hot_labels

TINY = {"widths": [8, 8, 16, 16], "blocks": 1, "disc_widths": [8, 16], "batch_size": 4,
        "loss": {"ssim_kind": "ssim"}, "sample_rows": 2, "parser_guide": 0.0}


def _batch(size: int = 64, n: int = 2):
    torch.manual_seed(0)
    masked = torch.rand(n, 3, size, size) * 2 - 1
    mask = torch.zeros(n, 1, size, size)
    mask[:, :, size // 3:2 * size // 3, size // 4:3 * size // 4] = 1
    labels = torch.randint(0, 11, (n, size, size))
    return masked, mask, labels


def test_inpainter_keeps_pixels_outside_the_mask_and_ignores_what_is_under_it():
    model = ParseGuidedInpainter((8, 8, 16, 16), blocks=1).eval()
    masked, mask, labels = _batch()
    out = model(masked, mask, labels)
    assert out.shape == masked.shape and out.abs().max() <= 1
    outside = mask.expand_as(out) == 0
    torch.testing.assert_close(out[outside], masked[outside])
    other = masked.clone()
    other[mask.expand_as(other) == 1] = 0.7
    torch.testing.assert_close(model(other, mask, labels), out)


def test_label_map_guides_the_fill_only_when_guided():
    masked, mask, labels = _batch()
    other_labels = (labels + 1) % 11
    guided = ParseGuidedInpainter((8, 8, 16, 16), blocks=1, guided=True).eval()
    assert not torch.allclose(guided(masked, mask, labels), guided(masked, mask, other_labels))
    unguided = ParseGuidedInpainter((8, 8, 16, 16), blocks=1, guided=False).eval()
    torch.testing.assert_close(unguided(masked, mask, labels), unguided(masked, mask, other_labels))


def test_one_hot_labels():
    labels = torch.tensor([[[0, 3], [10, 3]]])
    hot = one_hot_labels(labels)
    assert hot.shape == (1, 11, 2, 2)
    torch.testing.assert_close(hot.argmax(1), labels)
    torch.testing.assert_close(hot.sum(1), torch.ones(1, 2, 2))


def test_ffc_global_branch_sees_the_whole_image():
    torch.manual_seed(0)
    ffc = FFC(16, 0.75).eval()
    x = torch.randn(1, 16, 32, 32, requires_grad=True)
    ffc(x)[0, :, 0, 0].sum().backward()
    # one 3x3 layer reaches 1 pixel; the spectral branch reaches the opposite corner
    assert x.grad[0, :, 31, 31].abs().sum() > 0


def test_losses_are_finite_and_have_gradients():
    masked, mask, labels = _batch()
    model, disc = ParseGuidedInpainter((8, 8, 16, 16), blocks=1), PatchDiscriminator((8, 16))
    clean = torch.rand_like(masked) * 2 - 1
    fake = model(masked, mask, labels)
    loss = (weighted_l1(fake, clean, mask, 6.0) + structural_loss(fake, clean, "ssim")
            + feature_matching(disc(fake, mask), disc(clean, mask)) + r1_penalty(disc, clean, mask))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def _trained_discriminator_hinge(weights: InpainterLossWeights, steps: int = 80, size: int = 48) -> float:
    """Train a PatchGAN with the trainer's loss to tell textured photos from ones with a flat fill in the lower half;
    the hinge part of its loss over the last 20 steps (2 = it cannot tell them apart)."""
    torch.manual_seed(0)
    disc = PatchDiscriminator((16, 32, 64, 64))
    opt = torch.optim.Adam(disc.parameters(), lr=4e-4, betas=(0.5, 0.999))
    mask = torch.zeros(8, 1, size, size)
    mask[..., size // 2:, :] = 1
    hinge, no_r1 = [], InpainterLossWeights(r1_gamma=0)
    for step in range(steps):
        clean = torch.nn.functional.avg_pool2d(torch.rand(8, 3, size, size) * 2 - 1, 5, 1, 2) * 3
        fake = clean * (1 - mask) + mask * clean.mean(dim=(2, 3), keepdim=True)
        loss = discriminator_loss(disc, clean, fake, mask, weights, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            hinge.append(float(discriminator_loss(disc, clean, fake, mask, no_r1, step)))
    return float(np.mean(hinge[-20:]))


def test_the_default_r1_weight_lets_the_discriminator_learn():
    # R1 on the summed patch logits with weight 1 (the old default) held D at zero logits, so the adversarial and
    # feature-matching terms taught the generator nothing; the default must leave D free to spot a flat fill.
    assert _trained_discriminator_hinge(InpainterLossWeights()) < 1.0
    assert _trained_discriminator_hinge(InpainterLossWeights(r1_gamma=1.0)) > 1.8


def test_ms_ssim_refuses_small_photos_with_a_clear_message():
    x = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ValueError, match="ssim_kind: ssim"):
        structural_loss(x, x, "ms_ssim")


def test_weighted_l1_counts_the_hole_more():
    pred, target = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert float(weighted_l1(pred, target, mask, 6.0)) == pytest.approx((3 * 6 + 9) / 12)


def test_unit_range_round_trip():
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = to_unit_range(images)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(to_uint8(x), images)


@pytest.mark.parametrize("method", ["telea", "navier_stokes"])
def test_classical_baselines_change_only_the_hole(method):
    image = np.full((32, 32, 3), 120, np.uint8)
    image[:, 16:] = 200
    mask = np.zeros((32, 32), np.uint8)
    mask[10:20, 10:20] = 1
    damaged = image.copy()
    damaged[mask.astype(bool)] = 0
    out = classical_inpaint(damaged, mask, method)
    np.testing.assert_array_equal(out[mask == 0], damaged[mask == 0])
    assert out[mask == 1].min() >= 100


def test_onnx_export_matches_torch(tmp_path):
    model = ParseGuidedInpainter((8, 8, 16, 16), blocks=1).eval()
    path = tmp_path / "inpainter.onnx"
    export_inpainter_onnx(model, path, 64)
    masked, mask, labels = _batch(n=1)
    session = onnx_session(path, 1)
    out = session.run(None, {"masked": masked.numpy(), "mask": mask.numpy(), "labels": labels.numpy()})[0]
    np.testing.assert_allclose(out, model(masked, mask, labels).detach().numpy(), atol=1e-4)


def test_params_reject_unknown_keys():
    from stages.core.common.params import ParamsError

    with pytest.raises(ParamsError, match="hole_wieght"):
        InpainterParams.from_params({"loss": {"hole_wieght": 3}})


@pytest.fixture(scope="module")
def masks_project(tmp_path_factory):
    """A masks stage and cache of 64-px faces with a square hole; the clean photos are smooth gradients."""
    return write_masked_project(tmp_path_factory.mktemp("masked"))


def test_training_lowers_the_hole_error_and_resume_matches(masks_project, tmp_path):
    masks_dir, cache_dir = masks_project
    cfg = InpainterParams.from_params({**TINY, "epochs": 3, "lr": 0.01})
    run = fit_inpainter(cfg, masks_dir, cache_dir, checkpoint_path=tmp_path / "last.pt")
    first, last = run.history[0]["val_hole_l1"], min(r["val_hole_l1"] for r in run.history)
    assert last < first
    assert run.sample_grids[-1].shape == (2 * 64, 3 * 64, 3)
    lrs = [r["lr"] for r in run.history]  # cosine, per batch: falls every epoch and reaches zero at the last batch
    assert lrs[0] < 0.01 and lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(0, abs=1e-12)
    # stop after one epoch, resume for the rest: the same generator as the uninterrupted run
    fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 3, "lr": 0.01, "max_minutes": 1e-9}), masks_dir,
                  cache_dir, checkpoint_path=tmp_path / "part.pt")
    resumed = fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 3, "lr": 0.01, "resume": str(tmp_path / "part.pt")}),
                            masks_dir, cache_dir)
    for key, value in run.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, msg=key)
    save_checkpoint(tmp_path / "inpainter.pt", {"state_dict": run.model.state_dict(), "config": cfg.as_dict()})
    assert isinstance(load_inpainter(tmp_path / "inpainter.pt"), ParseGuidedInpainter)


def test_constant_lr_schedule_keeps_the_rate(masks_project):
    masks_dir, cache_dir = masks_project
    run = fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 2, "lr": 0.01, "lr_schedule": "constant",
                                                     "train_limit": 8}), masks_dir, cache_dir)
    assert [r["lr"] for r in run.history] == [0.01, 0.01]


def test_cpu_training_loads_in_the_main_process_whatever_loader_workers_says(masks_project):
    masks_dir, cache_dir = masks_project
    runs = [fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 1, "train_limit": 8, "loader_workers": workers}),
                          masks_dir, cache_dir) for workers in (0, 2)]
    assert runs[0].history == runs[1].history  # worker processes would draw the flips from other random streams


def test_pair_augmentation_moves_photos_region_and_labels_together(masks_project):
    masks_dir, cache_dir = masks_project
    split = MaskedSplit(masks_dir, cache_dir, "train")
    assert build_pair_augmentation(0, 0) is None
    augment = build_pair_augmentation(1.0, 1.0)
    augment.set_random_seed(0)
    plain, moved = InpaintingSamples(split), InpaintingSamples(split, augment=augment)
    for i in range(6):
        masked, mask, labels, clean, _ = moved[i]
        outside = mask.expand_as(masked) == 0
        torch.testing.assert_close(masked[outside], clean[outside])  # outside the region the photos still agree
        assert not torch.equal(masked, plain[i][0]) and not torch.equal(labels, plain[i][2])
        # the labels went with the photo: the region is where the square hole moved to, and it stays a hole
        original = split.true_labels(i)
        assert 0.7 < mask.mean() / split.masks[i].mean() < 1.5 and set(labels.unique().tolist()) <= set(np.unique(original))


def test_augmented_training_is_deterministic(masks_project):
    masks_dir, cache_dir = masks_project
    cfg = {**TINY, "epochs": 2, "train_limit": 8, "affine": 1.0, "photometric": 1.0}
    runs = [fit_inpainter(InpainterParams.from_params(c), masks_dir, cache_dir)
            for c in (cfg, cfg, {**cfg, "affine": 0, "photometric": 0})]
    assert runs[0].history == runs[1].history != runs[2].history


class ConstantParser(torch.nn.Module):
    """A stand-in parser that reads every pixel as ``label``, with one encoder level."""

    feature_modules = ("stem",)

    def __init__(self, label: int = 10):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.label = label

    def forward(self, x):
        level = self.stem(x)
        logits = torch.zeros(x.shape[0], 11, *x.shape[-2:]) + 0 * level.mean()
        logits[:, self.label] = 5.0
        return logits


def test_parser_guide_replaces_the_true_labels_in_training_and_validation(masks_project):
    masks_dir, cache_dir = masks_project
    parser = FrozenParser(ConstantParser(10))
    split = MaskedSplit(masks_dir, cache_dir, "val")
    assert (split_guides(parser, np.asarray(split.masked), torch.device("cpu")) == 10).all()
    cfg = {**TINY, "epochs": 2, "train_limit": 8}
    plain = fit_inpainter(InpainterParams.from_params(cfg), masks_dir, cache_dir).history
    again = fit_inpainter(InpainterParams.from_params(cfg), masks_dir, cache_dir, parser=parser).history
    guided = fit_inpainter(InpainterParams.from_params({**cfg, "parser_guide": 1.0}), masks_dir, cache_dir,
                           parser=parser).history
    assert plain == again != guided  # a parser given but not asked for changes nothing; its guide changes the run


def test_parser_guide_share_mixes_guides_and_true_labels(masks_project):
    masks_dir, cache_dir = masks_project
    split = MaskedSplit(masks_dir, cache_dir, "train")
    torch.manual_seed(0)
    picks = [bool(InpaintingSamples(split, parser_guide=share)[i][4]) for share in (0.0, 1.0, 0.5)
             for i in range(len(split))]
    n = len(split)
    assert not any(picks[:n]) and all(picks[n:2 * n]) and 0 < sum(picks[2 * n:]) < n


@pytest.mark.parametrize("options", [{"parser_guide": 1.0}, {"loss": {"ssim_kind": "ssim", "parse": 0.5}}])
def test_parser_guide_or_loss_without_a_parser_is_refused_clearly(masks_project, options):
    masks_dir, cache_dir = masks_project
    with pytest.raises(ValueError, match="need the trained parser, and none was given"):
        fit_inpainter(InpainterParams.from_params({**TINY, **options}), masks_dir, cache_dir)


def test_warm_start_begins_from_the_given_weights(masks_project, tmp_path):
    masks_dir, cache_dir = masks_project
    fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 1, "lr": 0.01}), masks_dir, cache_dir,
                  checkpoint_path=tmp_path / "last.pt")
    state = load_checkpoint(tmp_path / "last.pt")
    still = {**TINY, "epochs": 1, "train_limit": 4, "lr": 1e-12, "disc_lr": 1e-12}
    warm = fit_inpainter(InpainterParams.from_params(still), masks_dir, cache_dir,
                         warm_start={"generator": state["best_state"], "discriminator": state["discriminator"]})
    cold = fit_inpainter(InpainterParams.from_params(still), masks_dir, cache_dir)
    for name, value in warm.model.named_parameters():  # parameters: BatchNorm's running statistics still move
        torch.testing.assert_close(value.detach(), state["best_state"][name], atol=1e-6, rtol=0, msg=name)
    assert not torch.allclose(cold.model.head.weight, state["best_state"]["head.weight"])
    with pytest.raises(CheckpointError, match="warm_start.*discriminator"):
        fit_inpainter(InpainterParams.from_params(still), masks_dir, cache_dir, warm_start={"generator": {}})


def test_resume_refuses_other_params(masks_project, tmp_path):
    masks_dir, cache_dir = masks_project
    fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 1}), masks_dir, cache_dir, checkpoint_path=tmp_path / "a.pt")
    with pytest.raises(ValueError, match=r"a.pt: cannot resume: .*inpainter\.lr: 0\.001 there, 0\.5 here"):
        fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 2, "lr": 0.5, "resume": str(tmp_path / "a.pt")}),
                      masks_dir, cache_dir)


def test_resume_reads_keys_a_checkpoint_predates_as_the_code_behaved_before_them(masks_project, tmp_path):
    masks_dir, cache_dir = masks_project
    fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 2, "max_minutes": 1e-9}), masks_dir, cache_dir,
                  checkpoint_path=tmp_path / "a.pt")  # stops after epoch 1
    state = load_checkpoint(tmp_path / "a.pt")
    for key in ("parser_guide", "affine", "photometric"):  # a checkpoint from before these keys: true labels only
        del state["config"][key]
    save_checkpoint(tmp_path / "old.pt", state)
    resumed = fit_inpainter(InpainterParams.from_params({**TINY, "epochs": 2, "resume": str(tmp_path / "old.pt")}),
                            masks_dir, cache_dir)
    assert len(resumed.history) == 2
    guided = InpainterParams.from_params({**TINY, "epochs": 2, "parser_guide": 1.0})
    with pytest.raises(ValueError, match=r"old.pt: cannot resume: .*inpainter\.parser_guide: 0\.0 there, 1\.0 here"):
        _check_resumable(state, guided, tmp_path / "old.pt")
    del state["config"]["hflip"]  # not a key added later: its old value is unknown
    with pytest.raises(ValueError, match=r"inpainter\.hflip: absent there, 0\.5 here"):
        _check_resumable(state, InpainterParams.from_params({**TINY, "epochs": 2}), tmp_path / "old.pt")
