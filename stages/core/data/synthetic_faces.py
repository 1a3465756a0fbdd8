"""A deterministic procedural face generator: photos, exact 11-class labels and iBUG 68-point landmarks.

It is the pipeline's embedded default source, so a fresh clone trains and benchmarks without any
downloaded data. No library draws labelled faces with landmarks, so it is written here with OpenCV.

How a face is made: landmarks and part outlines are laid out in a canonical frame (x right, y down,
the jaw spans x in [-1, 1]; each point also has a depth z). The points are turned by the head's yaw,
then rotated, scaled and moved into the image. Each part is filled twice at the same sub-pixel
coordinates: hard-edged into the label map (the exact truth) and anti-aliased and textured into the
photo. Parts are painted back to front, so a later part covers an earlier one, as in CelebAMask-HQ.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from stages.core.common import classes as C
from stages.core.common.io import atomic_path, write_bytes_atomic, write_png

_SHIFT = 4  # fixed-point bits for cv2 polygon coordinates: sub-pixel accuracy in label and photo alike
_ONE = 1 << _SHIFT

SKIN_TONES = np.array(
    [(255, 224, 196), (241, 194, 167), (224, 172, 135), (198, 134, 99), (161, 102, 70), (120, 74, 50), (88, 56, 40)],
    dtype=np.float32,
)
HAIR_COLOURS = np.array(
    [(20, 16, 14), (60, 40, 25), (110, 75, 40), (170, 130, 80), (220, 190, 130), (150, 60, 30), (120, 120, 120),
     (230, 230, 225)],
    dtype=np.float32,
)
HAIR_STYLES = ("bald", "short", "medium", "long", "bun")


@dataclass(frozen=True)
class SyntheticFace:
    """One generated sample: ``image`` (H, W, 3) uint8 RGB, ``label`` (H, W) uint8 ids, ``landmarks`` (68, 2) x, y."""

    image: np.ndarray
    label: np.ndarray
    landmarks: np.ndarray
    attributes: dict


def _arc(cx, cy, rx, ry, t0, t1, n, z=0.0):
    t = np.linspace(t0, t1, n)
    pts = np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t), np.full(n, z)], axis=1)
    return pts


def _depth(x: np.ndarray, bulge: float = 0.8) -> np.ndarray:
    return bulge * np.sqrt(np.clip(1 - x**2, 0, 1))


def canonical_landmarks(rng: np.random.Generator, mouth_open: float) -> np.ndarray:
    """iBUG-68 landmarks in the canonical face frame, ``(68, 3)`` (x, y, z)."""
    jaw_drop = 1.12 + rng.uniform(-0.08, 0.12)
    chin_narrow = rng.uniform(0.05, 0.3)
    t = np.linspace(0, np.pi, 17)
    jaw_x = -np.cos(t) * (1 - chin_narrow * np.sin(t) ** 4)
    jaw_y = -0.2 + np.sin(t) * (jaw_drop + 0.2)
    jaw = np.stack([jaw_x, jaw_y, _depth(jaw_x, 0.5)], axis=1)

    brow_y = -0.55 + rng.uniform(-0.06, 0.04)
    brow_arch = rng.uniform(0.03, 0.1)
    bx = np.linspace(-0.82, -0.18, 5)
    by = brow_y - brow_arch * np.sin(np.linspace(0.2, np.pi - 0.6, 5))
    brow_l = np.stack([bx, by, _depth(bx)], axis=1)
    brow_r = brow_l[::-1].copy()
    brow_r[:, 0] *= -1

    nose_len = rng.uniform(0.55, 0.7)
    bridge_y = np.linspace(-0.42, -0.42 + nose_len, 4)
    bridge = np.stack([np.zeros(4), bridge_y, 0.8 + np.linspace(0.05, 0.35, 4)], axis=1)
    nose_w = rng.uniform(0.17, 0.26)
    nx = np.linspace(-nose_w, nose_w, 5)
    ny = bridge_y[-1] + 0.1 + np.array([0, 0.03, 0.05, 0.03, 0])
    nostrils = np.stack([nx, ny, 0.8 + 0.15 * (1 - np.abs(nx) / nose_w)], axis=1)

    eye_y = -0.3 + rng.uniform(-0.03, 0.03)
    eye_w = rng.uniform(0.22, 0.28)
    eye_h = rng.uniform(0.07, 0.11)
    eye_cx = -rng.uniform(0.4, 0.47)

    def eye(cx: float) -> np.ndarray:
        # iBUG order, clockwise in the image: left corner, upper lid (2), right corner, lower lid (2)
        xs = np.array([cx - eye_w, cx - eye_w / 3, cx + eye_w / 3, cx + eye_w, cx + eye_w / 3, cx - eye_w / 3])
        ys = np.array([eye_y, eye_y - eye_h, eye_y - eye_h, eye_y, eye_y + eye_h * 0.8, eye_y + eye_h * 0.8])
        return np.stack([xs, ys, _depth(xs)], axis=1)

    eye_l = eye(eye_cx)
    eye_r = eye(-eye_cx)

    mouth_y = bridge_y[-1] + rng.uniform(0.3, 0.38)
    mouth_w = rng.uniform(0.3, 0.42)
    upper_h = rng.uniform(0.06, 0.1)
    lower_h = rng.uniform(0.07, 0.12)
    gap = mouth_open
    ox = np.array([-1, -0.6, -0.25, 0, 0.25, 0.6, 1]) * mouth_w
    upper_outer_y = mouth_y - upper_h * np.array([0, 0.8, 1.1, 0.9, 1.1, 0.8, 0]) - gap / 2 * np.array([0, 1, 1, 1, 1, 1, 0])
    lower_x = np.array([0.6, 0.25, 0, -0.25, -0.6]) * mouth_w
    lower_outer_y = mouth_y + gap / 2 + lower_h * np.array([0.8, 1.0, 1.05, 1.0, 0.8])
    outer_x = np.concatenate([ox, lower_x])
    outer_y = np.concatenate([upper_outer_y, lower_outer_y])
    ix = np.array([-0.85, -0.3, 0, 0.3, 0.85, 0.3, 0, -0.3]) * mouth_w
    iy = mouth_y + np.array([0, -1, -1, -1, 0, 1, 1, 1]) * (gap / 2) * np.array([0, 0.9, 1, 0.9, 0, 0.9, 1, 0.9])
    mouth = np.stack([np.concatenate([outer_x, ix]), np.concatenate([outer_y, iy]), np.zeros(20)], axis=1)
    mouth[:, 2] = _depth(mouth[:, 0]) + 0.1

    pts = np.concatenate([jaw, brow_l, brow_r, bridge, nostrils, eye_l, eye_r, mouth])
    assert pts.shape == (68, 3)
    return pts


class _Canvas:
    """The photo (float32 RGB) and the label map, painted together."""

    def __init__(self, size: int, background: np.ndarray):
        self.size = size
        self.image = background.astype(np.float32)
        self.label = np.zeros((size, size), np.uint8)

    def region(self, polys: list[np.ndarray], thickness: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Hard mask for the label and anti-aliased alpha for the photo of polygons (or polylines if thickness)."""
        hard = np.zeros((self.size, self.size), np.uint8)
        soft = np.zeros((self.size, self.size), np.uint8)
        fixed = [np.round(p * _ONE).astype(np.int32).reshape(-1, 1, 2) for p in polys]
        if thickness:
            cv2.polylines(hard, fixed, False, 1, thickness, cv2.LINE_8, _SHIFT)
            cv2.polylines(soft, fixed, False, 255, thickness, cv2.LINE_AA, _SHIFT)
        else:
            cv2.fillPoly(hard, fixed, 1, cv2.LINE_8, shift=_SHIFT)
            cv2.fillPoly(soft, fixed, 255, cv2.LINE_AA, shift=_SHIFT)
        return hard.astype(bool), soft.astype(np.float32)[..., None] / 255.0

    def paint(self, polys, class_id: int | None, texture: np.ndarray, opacity: float = 1.0, thickness: int = 0):
        hard, alpha = self.region(polys, thickness)
        alpha = alpha * opacity
        self.image = self.image * (1 - alpha) + texture * alpha
        if class_id is not None:
            self.label[hard] = class_id
        return hard


def _noise_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1], ``(size, size)``: random values on a coarse grid, upsampled bicubically."""
    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _texture(rng, size, rgb, smooth=0.08, grain=0.03, cells=6) -> np.ndarray:
    base = np.asarray(rgb, np.float32)
    shade = 1 + smooth * _noise_field(rng, size, cells)[..., None] + grain * rng.standard_normal((size, size, 1))
    return np.clip(base * shade.astype(np.float32), 0, 255)


def _random_colour(rng) -> np.ndarray:
    return rng.uniform(20, 235, 3).astype(np.float32)


def _background(rng, size) -> np.ndarray:
    """A cluttered background: a gradient plus random rectangles, circles, lines and stripes."""
    c0, c1 = _random_colour(rng), _random_colour(rng)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    direction = rng.uniform(0, 1)
    grad = direction * ramp[None, :, None] + (1 - direction) * ramp[:, None, None]
    img = c0 * (1 - grad) + c1 * grad
    img = np.ascontiguousarray(img.astype(np.float32))
    for _ in range(rng.integers(3, 12)):
        colour = tuple(float(v) for v in _random_colour(rng))
        kind = rng.integers(0, 4)
        p = rng.uniform(-0.1, 1.1, 4) * size
        if kind == 0:
            cv2.rectangle(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.circle(img, (int(p[0]), int(p[1])), int(abs(p[2] - p[0]) / 3) + 2, colour, -1, cv2.LINE_AA)
        elif kind == 2:
            cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), colour, int(rng.integers(1, 6)), cv2.LINE_AA)
        else:
            period = int(rng.integers(6, 24))
            stripes = ((np.arange(size) // period) % 2).astype(np.float32)[None, :, None]
            img = img * (1 - 0.25 * stripes) + np.asarray(colour, np.float32) * 0.25 * stripes
    return img


class _Pose:
    """Canonical (x, y, z) -> image (x, y): yaw about the vertical axis, then rotation, scale and shift."""

    def __init__(self, yaw: float, roll: float, scale: float, centre: np.ndarray):
        self.yaw, self.scale, self.centre = yaw, scale, centre
        self.rot = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, np.float64)
        z = pts[:, 2] if pts.shape[1] == 3 else np.zeros(len(pts))
        x = pts[:, 0] * np.cos(self.yaw) + z * np.sin(self.yaw)
        xy = np.stack([x, pts[:, 1]], axis=1) @ self.rot.T
        return xy * self.scale + self.centre


def _ellipse(cx, cy, rx, ry, z=0.0, n=40) -> np.ndarray:
    return _arc(cx, cy, rx, ry, 0, 2 * np.pi, n, z)


def _with_depth(xy: np.ndarray, bulge: float = 0.8) -> np.ndarray:
    xy = np.asarray(xy, np.float64)
    return np.concatenate([xy, _depth(xy[:, :1], bulge)], axis=1)


def _thick_curve(points: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """A closed outline around a polyline ``(N, 3)`` with per-point half-widths (vertical offset)."""
    top = points.copy()
    bottom = points.copy()
    top[:, 1] -= widths
    bottom[:, 1] += widths
    return np.concatenate([top, bottom[::-1]])


def render_face(rng: np.random.Generator, size: int) -> SyntheticFace:
    """Draw one random face at ``size`` x ``size``."""
    attrs = {
        "skin": int(rng.integers(len(SKIN_TONES))),
        "hair_style": str(rng.choice(HAIR_STYLES, p=[0.08, 0.3, 0.24, 0.28, 0.1])),
        "hair_colour": int(rng.integers(len(HAIR_COLOURS))),
        "mouth_open": bool(rng.random() < 0.4),
        "glasses": bool(rng.random() < 0.25),
        "beard": str(rng.choice(["none", "full", "goatee", "stubble"], p=[0.65, 0.15, 0.1, 0.1])),
        "occluders": int(rng.choice([0, 1, 2], p=[0.65, 0.25, 0.1])),
    }
    scale = size * rng.uniform(0.17, 0.27)
    centre = size * (0.5 + rng.uniform(-0.08, 0.08, 2)) + np.array([0, scale * 0.15])
    pose = _Pose(np.deg2rad(rng.uniform(-25, 25)), np.deg2rad(rng.uniform(-20, 20)), scale, centre)
    attrs["yaw_deg"] = round(float(np.rad2deg(pose.yaw)), 2)

    mouth_gap = rng.uniform(0.08, 0.2) if attrs["mouth_open"] else 0.0
    lm3 = canonical_landmarks(rng, mouth_gap)
    lm = pose(lm3)

    canvas = _Canvas(size, _background(rng, size))
    skin = SKIN_TONES[attrs["skin"]] * rng.uniform(0.9, 1.05)
    skin_tex = _texture(rng, size, skin, smooth=0.06, grain=0.02)
    hair_rgb = HAIR_COLOURS[attrs["hair_colour"]] * rng.uniform(0.85, 1.15)
    hair_tex = _texture(rng, size, hair_rgb, smooth=0.25, grain=0.12, cells=24)
    style = attrs["hair_style"]
    long_sides = style in ("long", "medium") and rng.random() < 0.75
    attrs["ears_hidden"] = bool(long_sides)

    # hair that falls behind the head and shoulders
    if style == "long":
        back = np.concatenate([_arc(0, -0.3, 1.3, 1.2, np.pi, 2 * np.pi, 30, -0.6),
                               np.array([[1.45, 2.4, -0.6], [-1.45, 2.4, -0.6]])])
        canvas.paint([pose(back)], C.HAIR, hair_tex)
    # clothes and neck
    clothes = np.array([[-3, 1.75], [3, 1.75], [3.2, 6], [-3.2, 6]])
    canvas.paint([pose(_with_depth(clothes, 0))], C.BACKGROUND, _texture(rng, size, _random_colour(rng), 0.15, 0.04))
    neck = np.array([[-0.5, 0.4], [0.5, 0.4], [0.55, 2.0], [-0.55, 2.0]])
    canvas.paint([pose(_with_depth(neck, 0.2))], C.FACE, skin_tex * 0.88)
    # ears, behind the face outline
    ear_y = lm3[2, 1] - 0.05
    for side in (-1, 1):
        canvas.paint([pose(_ellipse(side * 1.02, ear_y, 0.14, 0.26, 0.0))], C.EARS, skin_tex * 0.93)
    # face: the jaw, closed over the forehead
    forehead = _arc(0, -0.2, 1.0, 1.15, 0, -np.pi, 25, 0.0)
    forehead[:, 2] = _depth(forehead[:, 0], 0.6)
    face_outline = np.concatenate([lm3[:17], forehead[1:-1]])
    canvas.paint([pose(face_outline)], C.FACE, skin_tex)
    # beard
    if attrs["beard"] != "none":
        mouth_top = lm3[51, 1]
        if attrs["beard"] == "goatee":
            outline = np.concatenate([lm3[5:12], _with_depth(np.array([[0.3, mouth_top - 0.05], [-0.3, mouth_top - 0.05]]))])
        else:
            upper = np.array([[0.85, lm3[31, 1] + 0.05], [0.35, lm3[33, 1] + 0.06], [-0.35, lm3[33, 1] + 0.06],
                              [-0.85, lm3[31, 1] + 0.05]])
            outline = np.concatenate([lm3[2:15], _with_depth(upper)])
        beard_tex = _texture(rng, size, hair_rgb * 0.9, smooth=0.3, grain=0.2, cells=40)
        canvas.paint([pose(outline)], C.BEARD, beard_tex, opacity=0.65 if attrs["beard"] == "stubble" else 0.95)
    # nose
    nose_outline = np.concatenate([
        lm3[27:28] + [-0.07, 0, 0], lm3[31:36], lm3[27:28] + [0.07, 0, 0]])
    nose_outline[1:6, 1] += 0.03
    nose_outline[1, 0] -= 0.05
    nose_outline[5, 0] += 0.05
    canvas.paint([pose(nose_outline)], C.NOSE, skin_tex * 0.86)
    for i in (32, 34):  # nostrils: drawn into the photo only, they are part of the nose class
        canvas.paint([pose(_ellipse(lm3[i, 0], lm3[i, 1] + 0.01, 0.045, 0.025, lm3[i, 2], 16))], None,
                     skin_tex * 0.45)
    # glasses: frame and lenses (covered by the eyes, as in CelebAMask-HQ's painting order)
    if attrs["glasses"]:
        frame_rgb = rng.uniform(0, 120, 3).astype(np.float32)
        lens_tint = rng.uniform(120, 255, 3).astype(np.float32)
        rx, ry = rng.uniform(0.26, 0.33), rng.uniform(0.17, 0.24)
        thick = max(1, int(round(scale * rng.uniform(0.035, 0.06))))
        lenses = []
        for eye_idx in (slice(36, 42), slice(42, 48)):
            c = lm3[eye_idx].mean(axis=0)
            lenses.append(pose(_ellipse(c[0], c[1] + 0.02, rx, ry, c[2] + 0.1, 40)))
        canvas.paint(lenses, C.GLASSES, np.broadcast_to(lens_tint, (size, size, 3)), opacity=0.25)
        frame = lenses + [pose(np.array([[lm3[39, 0] + 0.03, lm3[39, 1] - 0.02, 0.95], [lm3[42, 0] - 0.03,
                                                                                           lm3[42, 1] - 0.02, 0.95]]))]
        frame += [pose(np.array([[lm3[36, 0] - rx + 0.05, lm3[36, 1] - 0.05, 0.4], [-1.0, ear_y - 0.1, 0.0]])),
                  pose(np.array([[lm3[45, 0] + rx - 0.05, lm3[45, 1] - 0.05, 0.4], [1.0, ear_y - 0.1, 0.0]]))]
        closed = [np.concatenate([f, f[:1]]) for f in frame]
        canvas.paint(closed, C.GLASSES, np.broadcast_to(frame_rgb, (size, size, 3)), thickness=thick)
    # eyes: sclera, iris, then the outline
    iris_rgb = rng.uniform(20, 140, 3).astype(np.float32)
    gaze = rng.uniform(-0.06, 0.06)
    for eye_idx in (slice(36, 42), slice(42, 48)):
        hard = canvas.paint([pose(lm3[eye_idx])], C.EYES, np.full((size, size, 3), 235, np.float32))
        c = lm3[eye_idx].mean(axis=0)
        _, iris_alpha = canvas.region([pose(_ellipse(c[0] + gaze, c[1], 0.085, 0.085, c[2], 24))])
        iris_alpha = iris_alpha * hard[..., None]
        canvas.image = canvas.image * (1 - iris_alpha) + iris_rgb * iris_alpha
        canvas.paint([pose(np.concatenate([lm3[eye_idx], lm3[eye_idx][:1]]))], None,
                     np.full((size, size, 3), 30, np.float32), thickness=1)
    # eyebrows
    brow_rgb = hair_rgb * 0.8
    for brow_idx in (slice(17, 22), slice(22, 27)):
        pts = lm3[brow_idx]
        width = rng.uniform(0.03, 0.055) * np.array([0.7, 1.0, 1.0, 0.9, 0.6])
        canvas.paint([pose(_thick_curve(pts, width))], C.EYEBROWS,
                     _texture(rng, size, brow_rgb, smooth=0.2, grain=0.15, cells=30))
    # mouth: lips, then the inner mouth with teeth
    lip_rgb = skin * np.array([0.85, 0.55, 0.55]) * rng.uniform(0.8, 1.05)
    canvas.paint([pose(lm3[48:60])], C.LIPS, _texture(rng, size, lip_rgb, 0.05, 0.02))
    if attrs["mouth_open"]:
        inner = pose(lm3[60:68])
        hard = canvas.paint([inner], C.TEETH, np.full((size, size, 3), (70, 20, 25), np.float32))
        teeth_band = lm3[60:68].copy()
        teeth_band[5:8, 1] = teeth_band[1:4, 1] + (teeth_band[5:8, 1] - teeth_band[1:4, 1]) * 0.45
        _, alpha = canvas.region([pose(teeth_band)])
        alpha = alpha * hard[..., None]
        canvas.image = canvas.image * (1 - alpha) + np.float32(240) * alpha
    # hair over the head (and over the ears when it is long)
    if style != "bald":
        fringe_y = rng.uniform(-0.95, -0.6) if style != "short" else rng.uniform(-1.05, -0.85)
        top = _arc(0, -0.25, 1.12, 1.2, 0, -np.pi, 30, -0.2)
        side_drop = rng.uniform(0.25, 0.7) if long_sides else -0.15
        inner_w = 0.93
        hairline = np.array([[-inner_w, side_drop], [-inner_w, -0.35], [-0.6, fringe_y + 0.05],
                             [0, fringe_y], [0.6, fringe_y + 0.05], [inner_w, -0.35], [inner_w, side_drop]])
        outer_side = 1.28 if long_sides else 1.1
        outline = np.concatenate([_with_depth(np.array([[outer_side, side_drop]]), 0.3), top,
                                  _with_depth(np.array([[-outer_side, side_drop]]), 0.3), _with_depth(hairline, 0.6)])
        canvas.paint([pose(outline)], C.HAIR, hair_tex)
        if style == "bun":
            canvas.paint([pose(_ellipse(0, -1.45, 0.45, 0.35, -0.2))], C.HAIR, hair_tex)
    # occluders (a hand, a cup, a sign...) count as background
    for _ in range(attrs["occluders"]):
        c = rng.uniform(0.2, 0.8, 2) * size
        r = size * rng.uniform(0.06, 0.16)
        k = int(rng.integers(5, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = r * rng.uniform(0.6, 1.2, k)
        blob = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], axis=1)
        canvas.paint([blob], C.BACKGROUND, _texture(rng, size, _random_colour(rng), 0.2, 0.05))

    image = _photographic_finish(rng, canvas.image)
    return SyntheticFace(image, canvas.label, lm.astype(np.float32), attrs)


def _photographic_finish(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Lighting gradient, blur and sensor noise; returns uint8 RGB (JPEG artefacts come when it is saved)."""
    size = image.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0.1, 0.45) * ((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle))
    image = image * light[..., None] * rng.uniform(0.75, 1.15)
    sigma = rng.uniform(0, 1.2)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image + rng.normal(0, rng.uniform(1, 7), image.shape).astype(np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def face_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of face ``index``: independent of how many faces are made."""
    return np.random.default_rng([seed, index])


def generate_dataset(dest: str | Path, count: int, size: int = 256, seed: int = 0, progress: bool = True) -> None:
    """Write ``count`` faces into ``dest``.

    Layout: ``images/{id}.jpg`` (quality 45-95, for real JPEG artefacts), ``labels/{id}.png`` (uint8 unified
    ids), ``landmarks.json`` ({id: [[x, y] * 68]}), ``attributes.json``. Ids are zero-padded indices.
    The same (count, size, seed) gives byte-identical files.
    """
    dest = Path(dest)
    (dest / "images").mkdir(parents=True, exist_ok=True)
    (dest / "labels").mkdir(parents=True, exist_ok=True)
    landmarks, attributes = {}, {}
    width = max(5, len(str(count - 1)))
    for index in tqdm(range(count), desc="synthetic faces", disable=not progress):
        rng = face_rng(seed, index)
        face = render_face(rng, size)
        item_id = f"{index:0{width}d}"
        quality = int(rng.integers(45, 96))
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        write_bytes_atomic(dest / "images" / f"{item_id}.jpg", jpg.tobytes())
        write_png(dest / "labels" / f"{item_id}.png", face.label)
        landmarks[item_id] = np.round(face.landmarks, 3).tolist()
        attributes[item_id] = {**face.attributes, "jpeg_quality": quality}
    with atomic_path(dest / "landmarks.json") as tmp:
        tmp.write_text(json.dumps(landmarks, sort_keys=True))
    with atomic_path(dest / "attributes.json") as tmp:
        tmp.write_text(json.dumps(attributes, sort_keys=True, indent=1))
