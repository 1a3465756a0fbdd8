"""Each loss against a value computed by hand on a 2-class, 2-pixel batch, and its gradient.

The batch: pixel 0 has logits (0, 0), so p = (1/2, 1/2), and class 0; pixel 1 has logits (ln 3, 0), so
p = (3/4, 1/4), and class 1.
"""
import math

import pytest
import torch

from stages.core.parsing.losses import LOSSES, build_loss

LN2 = math.log(2)


@pytest.fixture
def tiny():
    logits = torch.tensor([[0.0, math.log(3)], [0.0, 0.0]]).view(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    return logits, target


def value(spec, logits, target, weights=None, **options):
    return float(build_loss(spec, None if weights is None else torch.tensor(weights), options)(logits, target))


def test_ce(tiny):
    assert value("ce", *tiny) == pytest.approx((LN2 + 2 * LN2) / 2, rel=1e-5)
    assert value("ce", *tiny, weights=[1.0, 3.0]) == pytest.approx((LN2 + 3 * 2 * LN2) / 4, rel=1e-5)


def test_weighted_bce(tiny):
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4; class-0 channel: ln2 + ln4, class-1 channel: ln2 + ln2.
    assert value("weighted_bce", *tiny) == pytest.approx((3 * LN2 + 2 * LN2) / 4, rel=1e-5)
    assert value("weighted_bce", *tiny, weights=[1.0, 3.0]) == pytest.approx((3 * LN2 + 3 * 2 * LN2) / 4, rel=1e-5)


def test_focal(tiny):
    expected = ((1 / 2) ** 2 * LN2 + (3 / 4) ** 2 * 2 * LN2) / 2
    assert value("focal", *tiny, focal_gamma=2.0) == pytest.approx(expected, rel=1e-5)
    assert value("focal", *tiny, focal_gamma=0.0, focal_alpha=0.5) == pytest.approx(0.5 * 1.5 * LN2, rel=1e-5)


def test_dice(tiny):
    dice0 = 2 * 0.5 / (1.25 + 1)    # TP 1/2, sum p 5/4, sum t 1
    dice1 = 2 * 0.25 / (0.75 + 1)   # TP 1/4, sum p 3/4, sum t 1
    assert value("dice", *tiny) == pytest.approx(((1 - dice0) + (1 - dice1)) / 2, rel=1e-5)
    assert value("dice", *tiny, weights=[1.0, 3.0]) == pytest.approx(((1 - dice0) + 3 * (1 - dice1)) / 4, rel=1e-5)


def test_tversky(tiny):
    t0 = 0.5 / (0.5 + 0.3 * 0.75 + 0.7 * 0.5)    # TP 1/2, FP 3/4, FN 1/2
    t1 = 0.25 / (0.25 + 0.3 * 0.5 + 0.7 * 0.75)  # TP 1/4, FP 1/2, FN 3/4
    assert value("tversky", *tiny, tversky_alpha=0.3, tversky_beta=0.7) == pytest.approx(((1 - t0) + (1 - t1)) / 2,
                                                                                          rel=1e-5)


def test_bias(tiny):
    # Logit variances over classes: 0 and (ln3 / 2)^2 -> scaled to 0 and 1.
    expected = ((1 - 0.3) * LN2 + (math.exp(0.3) - 0.3) * 2 * LN2) / 2
    assert value("bias", *tiny, bias_alpha=0.3, bias_beta=0.3) == pytest.approx(expected, rel=1e-5)


def test_bias_with_equal_variances_is_scaled_ce():
    logits, target = torch.zeros(1, 3, 2, 2), torch.tensor([[[0, 1], [2, 0]]])
    assert value("bias", logits, target) == pytest.approx(0.7 * math.log(3), rel=1e-5)


def test_lovasz(tiny):
    # class 0: errors (1/2, 3/4); sorted: pixel 1 (background, J = 1 - 1/2), pixel 0 (J = 1) -> 3/4*1/2 + 1/2*1/2
    # class 1: sorted: pixel 1 (its own pixel, J = 1), pixel 0 (J stays 1) -> 3/4 * 1
    assert value("lovasz", *tiny) == pytest.approx((0.625 + 0.75) / 2, rel=1e-5)


def test_sum_adds_terms(tiny):
    assert value("ce+dice", *tiny) == pytest.approx(value("ce", *tiny) + value("dice", *tiny), rel=1e-6)
    assert value(" CE + focal ", *tiny) == pytest.approx(value("ce", *tiny) + value("focal", *tiny), rel=1e-6)


def test_unknown_loss_names_the_known_ones():
    with pytest.raises(KeyError, match="lovasz"):
        build_loss("ce+nope")


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_is_finite_and_nonzero(name, weighted):
    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(2, 11, 8, 8, generator=gen)).requires_grad_()
    target = torch.randint(0, 11, (2, 8, 8), generator=gen)
    target[0, :4] = 0  # a dominant class, like background
    weights = torch.linspace(0.5, 2.0, 11) if weighted else None
    loss = build_loss(name, weights, {})(logits, target)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
