import numpy as np
import pytest
import torch

from stages.core.inpainting import telea_baseline, to_uint8, to_unit_range, weighted_l1
from stages.core.models.inpainter import MaskInpainter


def test_inpainter_keeps_pixels_outside_the_mask_and_fills_the_hole():
    torch.manual_seed(0)
    model = MaskInpainter((8, 16, 16, 24)).eval()
    masked = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 20:40, 16:48] = 1
    out = model(masked, mask)
    assert out.shape == (2, 3, 64, 64)
    outside = mask.expand_as(out) == 0
    torch.testing.assert_close(out[outside], masked[outside])
    assert out.abs().max() <= 1
    # what lies under the hole in the input must not leak into the output
    other = masked.clone()
    other[mask.expand_as(other) == 1] = 0.7
    torch.testing.assert_close(model(other, mask), out)


def test_inpainter_trains_one_step():
    model = MaskInpainter((8, 16, 16, 24))
    masked, clean = torch.zeros(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = torch.ones(2, 1, 32, 32)
    loss = weighted_l1(model(masked, mask), clean, mask, 6.0)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_weighted_l1_counts_the_hole_more():
    pred, target = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # per-pixel error 1; the hole pixel weighs 6, the three others 1: mean over 12 values = (3*6 + 9) / 12
    assert float(weighted_l1(pred, target, mask, 6.0)) == pytest.approx((3 * 6 + 9) / 12)


def test_unit_range_round_trip():
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = to_unit_range(images)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(to_uint8(x), images)


def test_telea_baseline_changes_only_the_hole():
    image = np.full((32, 32, 3), 120, np.uint8)
    image[:, 16:] = 200
    mask = np.zeros((32, 32), np.uint8)
    mask[10:20, 10:20] = 1
    damaged = image.copy()
    damaged[mask.astype(bool)] = 0
    out = telea_baseline(damaged, mask)
    np.testing.assert_array_equal(out[mask == 0], damaged[mask == 0])
    assert out[mask == 1].min() >= 100  # filled from the surroundings, not left black
