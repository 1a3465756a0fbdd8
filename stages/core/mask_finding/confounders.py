"""Confounders: things on unmasked faces that a mask finder mistakes for a mask, painted on clean photos.

Trained only on masked photos and plain clean ones, the finder marks false regions on real unmasked faces where
the lower face looks unlike bare skin: strongly red or dark lips, a beard or stubble, dark or tanned skin below
the nose, a scarf or turtleneck over the neck and chin. :func:`paint_confounders` paints one or two of them on a
clean aligned face, placed by its label map (the cache's unified ids; real datasets have no landmarks), so that
the finder learns that these are no mask: the target of such a photo stays empty. The mouth and the nose are
left visible by every kind but ``lips`` (which recolours only the lips), because a visible mouth is what tells a
confounder from a mask.

Kinds (:data:`KINDS`):

- ``lips``: the lip pixels recoloured red, crimson, plum or near black, keeping their shading;
- ``beard``: a hair texture (stubble, full beard, goatee, moustache and chin) on the skin between the nose and
  the chin line and along the jaw, the mouth kept clear;
- ``tan``: the skin below the nose darkened and warmed (or a grey-blue shadow), fading in over the upper lip;
- ``scarf``: a fabric (plain, ribbed, striped, knit noise) from a curved edge between the mouth and the chin line
  down to the bottom of the crop, across the neck and often the shoulders.

Every draw comes from the ``rng`` passed in, so a seeded dataset item is reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from stages.core.common.classes import BEARD, EYEBROWS, EYES, FACE, LIPS, NOSE, TEETH

KINDS = ("lips", "beard", "tan", "scarf")


@dataclass(frozen=True)
class FaceLayout:
    """Where the parts of an aligned face are, from its label map (pixels; y grows downwards).

    ``skin``: face skin (neck included by the unified mappings) and beard; ``lips``, ``mouth`` (lips and inner
    mouth), ``nose``: bool maps; ``cx``: the mouth's column; ``eye_y``, ``nose_y`` (the nose's lowest rows),
    ``mouth_top``, ``mouth_y``, ``mouth_bottom``; ``mouth_half``: half the mouth's width; ``span``: eyes to
    mouth, the face's vertical scale."""

    skin: np.ndarray
    lips: np.ndarray
    mouth: np.ndarray
    nose: np.ndarray
    cx: float
    eye_y: float
    nose_y: float
    mouth_top: float
    mouth_y: float
    mouth_bottom: float
    mouth_half: float
    span: float

    def chin_y(self, rng: np.random.Generator) -> float:
        """The chin line, about 0.6 to 0.85 of the eyes-to-mouth span below the mouth (faces vary)."""
        return self.mouth_y + rng.uniform(0.6, 0.85) * self.span


def face_layout(labels: np.ndarray, min_pixels: int = 4) -> FaceLayout | None:
    """The :class:`FaceLayout` of a ``(S, S)`` label map, or None when the mouth, the nose or the eyes (or
    brows) are missing from it: without them nothing can be placed."""
    labels = np.asarray(labels)
    lips, nose = labels == LIPS, labels == NOSE
    mouth = lips | (labels == TEETH)
    eyes = labels == EYES
    if eyes.sum() < min_pixels:
        eyes = labels == EYEBROWS
    if mouth.sum() < min_pixels or nose.sum() < min_pixels or eyes.sum() < min_pixels:
        return None
    mys, mxs = np.nonzero(mouth)
    nys = np.nonzero(nose)[0]
    eye_y = float(np.nonzero(eyes)[0].mean())
    mouth_y = float(mys.mean())
    span = mouth_y - eye_y
    if span < 2:
        return None
    return FaceLayout(skin=(labels == FACE) | (labels == BEARD), lips=lips, mouth=mouth, nose=nose,
                      cx=float(mxs.mean()), eye_y=eye_y, nose_y=float(np.percentile(nys, 90)),
                      mouth_top=float(mys.min()), mouth_y=mouth_y, mouth_bottom=float(mys.max()),
                      mouth_half=max(float(mxs.max() - mxs.min()) / 2, 1.0), span=span)


def _soft(region: np.ndarray, sigma: float) -> np.ndarray:
    """``region`` (bool) as a float weight with edges blurred by ``sigma`` pixels."""
    weight = region.astype(np.float32)
    if sigma <= 0.3:
        return weight
    k = 2 * int(np.ceil(2 * sigma)) + 1
    return cv2.GaussianBlur(weight, (k, k), sigma)


def _disc(pixels: float) -> np.ndarray:
    r = max(int(round(pixels)), 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _blend(image: np.ndarray, painted: np.ndarray, weight: np.ndarray) -> np.ndarray:
    out = image.astype(np.float32) * (1 - weight[..., None]) + painted * weight[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def paint_lips(image: np.ndarray, layout: FaceLayout, rng: np.random.Generator) -> np.ndarray:
    """Lipstick: the lips recoloured strongly red, crimson, plum, brown or near black, their shading kept."""
    shades = np.array([[200, 20, 35], [150, 10, 40], [110, 20, 60], [90, 35, 30], [40, 15, 20], [230, 40, 90]],
                      np.float32)
    colour = shades[rng.integers(len(shades))] * rng.uniform(0.8, 1.15, 3)
    luma = _luma(image)
    shading = np.clip(luma / max(float(luma[layout.lips].mean()), 1.0), 0.5, 1.5)
    painted = np.clip(colour[None, None] * shading[..., None], 0, 255)
    region = layout.lips
    if rng.random() < 0.4:  # overdrawn a little
        region = cv2.dilate(region.astype(np.uint8), _disc(1)) > 0
        region &= ~layout.mouth | layout.lips
    return _blend(image, painted, _soft(region, 0.6) * rng.uniform(0.75, 0.95))


def _hair_texture(shape: tuple[int, int], rng: np.random.Generator, strand: float, density: float) -> np.ndarray:
    """``(H, W)`` float in [0, 1]: hair strands (noise smeared along a mostly vertical direction)."""
    noise = rng.random(shape).astype(np.float32)
    length = max(int(round(strand)), 1)
    kernel = np.zeros((2 * length + 1, 2 * length + 1), np.float32)
    angle = rng.uniform(-0.5, 0.5) + np.pi / 2
    for t in np.linspace(-length, length, 2 * length + 1):
        kernel[int(round(length + t * np.sin(angle))), int(round(length + t * np.cos(angle)))] = 1
    smeared = cv2.filter2D(noise, -1, kernel / kernel.sum())
    smeared = (smeared - smeared.mean()) / max(float(smeared.std()), 1e-6)
    return np.clip(0.5 + 0.35 * smeared + (density - 0.5), 0, 1)


def paint_beard(image: np.ndarray, layout: FaceLayout, rng: np.random.Generator) -> np.ndarray:
    """A beard: stubble, a full beard, a goatee or a moustache with chin, on the skin below the nose and along
    the jaw up to the chin line; the mouth stays clear."""
    h, w = layout.skin.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    style = rng.choice(["stubble", "full", "goatee", "moustache+chin"])
    chin = layout.chin_y(rng) + rng.uniform(0.0, 0.15) * layout.span
    lower_face = layout.skin & (ys > layout.nose_y + 0.02 * layout.span) & (ys < chin)
    if style in ("stubble", "full"):
        # the jaw: skin from about the middle of the cheeks down, wider than the mouth
        cheeks = layout.skin & (ys > layout.eye_y + rng.uniform(0.45, 0.75) * layout.span) & (ys < chin)
        region = lower_face | (cheeks & (np.abs(xs - layout.cx) > layout.mouth_half * rng.uniform(1.2, 2.0)))
    elif style == "goatee":
        region = lower_face & (ys > layout.mouth_y) & (np.abs(xs - layout.cx) < layout.mouth_half * rng.uniform(0.9, 1.4))
    else:
        moustache = lower_face & (ys < layout.mouth_top + 1) & (np.abs(xs - layout.cx) < layout.mouth_half * 1.3)
        region = moustache | (lower_face & (ys > layout.mouth_bottom) & (np.abs(xs - layout.cx) < layout.mouth_half * 1.2))
    keep_clear = cv2.dilate(layout.mouth.astype(np.uint8), _disc(rng.uniform(0.5, 0.12 * layout.span + 1))) > 0
    region &= ~keep_clear & ~layout.nose
    if not region.any():
        return image
    # a ragged edge: the region eroded by a blurred noise field
    edge = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), max(0.05 * layout.span, 0.8))
    weight = _soft(region, max(0.04 * layout.span, 0.6)) * (0.75 + 0.5 * (edge - edge.mean()) / max(edge.std(), 1e-6) * 0.3)
    colours = np.array([[25, 20, 18], [55, 38, 28], [85, 60, 40], [120, 80, 45], [140, 135, 130], [70, 70, 70]],
                       np.float32)
    colour = colours[rng.integers(len(colours))] * rng.uniform(0.8, 1.2)
    strand = max(0.04 * layout.span, 1.0) * rng.uniform(0.6, 1.8)
    if style == "stubble":
        texture, opacity = _hair_texture((h, w), rng, strand * 0.5, rng.uniform(0.3, 0.55)), rng.uniform(0.35, 0.7)
    else:
        texture, opacity = _hair_texture((h, w), rng, strand, rng.uniform(0.55, 0.85)), rng.uniform(0.7, 0.95)
    painted = colour[None, None] * (0.7 + 0.6 * texture[..., None])
    weight = np.clip(weight * texture * opacity * 1.4, 0, 1) * ~(layout.mouth | layout.nose)  # no blur onto them
    return _blend(image, np.clip(painted, 0, 255), weight)


def paint_tan(image: np.ndarray, layout: FaceLayout, rng: np.random.Generator) -> np.ndarray:
    """The skin below the nose (lips included, neck too) darkened and warmed, or given a grey-blue shadow; the
    change fades in over a band from the nose tip."""
    h, w = layout.skin.shape
    ys = np.mgrid[0:h, 0:w][0].astype(np.float32)
    start = layout.nose_y + rng.uniform(-0.15, 0.1) * layout.span
    fade = max(rng.uniform(0.08, 0.35) * layout.span, 1.0)
    ramp = np.clip((ys - start) / fade, 0, 1)
    region = layout.skin | layout.lips
    if rng.random() < 0.5:  # the dark area often stops at the chin line
        ramp *= np.clip((layout.chin_y(rng) + 0.2 * layout.span - ys) / fade, 0, 1)
    weight = _soft(region, max(0.03 * layout.span, 0.6)) * ramp
    out = image.astype(np.float32)
    if rng.random() < 0.7:
        tint = np.array([1.0, rng.uniform(0.75, 0.95), rng.uniform(0.55, 0.85)], np.float32)  # warm, tanned
    else:
        tint = np.array([rng.uniform(0.8, 0.95), rng.uniform(0.85, 1.0), 1.0], np.float32)  # a shaved shadow
    painted = out * tint * rng.uniform(0.35, 0.75)
    return _blend(image, painted, weight * rng.uniform(0.8, 1.0))


def fabric_texture(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """``(H, W, 3)`` float RGB: a plain, ribbed, striped or knit-noise fabric with folds; ``scale`` sets the
    size of its features in pixels."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(0, 255, 3).astype(np.float32)
    if rng.random() < 0.35:
        base = np.full(3, rng.choice([rng.uniform(15, 60), rng.uniform(90, 170), rng.uniform(190, 245)]), np.float32)
    kind = rng.choice(["plain", "ribbed", "stripes", "knit"])
    period = max(scale * rng.uniform(0.15, 0.6), 2.0)
    if kind == "ribbed":
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * xs / period)
        texture = base * (0.8 + 0.25 * mix[..., None])
    elif kind == "stripes":
        second = rng.uniform(0, 255, 3).astype(np.float32)
        angle = rng.uniform(0, np.pi)
        mix = (np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / (2 * period)) > 0).astype(np.float32)
        texture = base * (1 - mix[..., None]) + second * mix[..., None]
    elif kind == "knit":
        grain = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), max(period / 4, 0.6))
        grain = (grain - grain.mean()) / max(float(grain.std()), 1e-6)
        texture = base * np.clip(1 + 0.15 * grain, 0.5, 1.5)[..., None]
    else:
        texture = np.broadcast_to(base, (h, w, 3)).copy()
    folds = 1 + rng.uniform(0.05, 0.25) * np.sin(2 * np.pi * (xs * rng.uniform(-0.5, 0.5) + ys) /
                                                  max(scale * rng.uniform(0.6, 2.0), 3.0) + rng.uniform(0, 6.3))
    return np.clip(texture * folds[..., None], 0, 255)


def paint_scarf(image: np.ndarray, layout: FaceLayout, rng: np.random.Generator) -> np.ndarray:
    """A scarf or turtleneck: fabric from a curved top edge between the mouth and the chin line down to the
    crop's bottom edge, over the neck and chin line; the mouth and the nose stay visible."""
    h, w = layout.skin.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    clear = layout.mouth_bottom + rng.uniform(0.12, 0.3) * layout.span  # never above this (the mouth stays free)
    top = layout.mouth_y + rng.uniform(0.3, 0.8) * layout.span  # at or above the chin line
    half = layout.span * rng.uniform(1.0, 2.5)  # half width; wide ones reach the shoulders
    curve = rng.uniform(-0.4, 0.3) * layout.span * ((xs - layout.cx) / half) ** 2  # < 0: rises over the jaw
    edge = np.maximum(top + curve, clear) + rng.normal(0, 0.01 * layout.span + 0.3, (1, w)).astype(np.float32)
    region = (ys >= edge) & (np.abs(xs - layout.cx) <= half)
    if rng.random() < 0.5:  # a turtleneck: the whole width of the crop below the edge
        region = ys >= edge
    region &= ~layout.mouth & ~layout.nose
    if not region.any():
        return image
    fabric = fabric_texture((h, w), rng, layout.span)
    shading = np.clip(1 - rng.uniform(0, 0.4) * np.clip((ys - edge) / (2 * layout.span), 0, 1), 0.4, 1.2)
    weight = _soft(region, 0.5) * rng.uniform(0.92, 1.0) * ~(layout.mouth | layout.nose)
    return _blend(image, fabric * shading[..., None], weight)


PAINTERS = {"lips": paint_lips, "beard": paint_beard, "tan": paint_tan, "scarf": paint_scarf}


def paint_confounders(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                      kinds: tuple[str, ...] | None = None) -> tuple[np.ndarray, list[str]]:
    """``image`` (S, S, 3) uint8 with confounders painted, placed by ``labels`` (S, S) unified ids, and their
    kinds in painting order. ``kinds``: paint exactly these; None draws one (two a third of the time) from
    :data:`KINDS`. A face whose layout cannot be read (:func:`face_layout`) comes back unchanged, with ``[]``."""
    layout = face_layout(labels)
    if layout is None:
        return image, []
    if kinds is None:
        count = 2 if rng.random() < 1 / 3 else 1
        kinds = tuple(rng.choice(KINDS, count, replace=False))
    out = np.asarray(image)
    for kind in kinds:
        out = PAINTERS[kind](out, layout, rng)
    return out, list(kinds)
