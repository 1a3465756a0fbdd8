"""Drawing each mask type in its own template frame, with the anchor points the fit maps onto the face.

Every template is drawn procedurally with OpenCV (no template image is copied from anywhere) on a
``TEMPLATE_HEIGHT x TEMPLATE_WIDTH`` canvas. All types share the anchor layout :data:`ANCHORS`, in the
order of :data:`ANCHOR_NAMES`; ``fitting.face_targets`` computes the matching points on a face.

Variants: ``"front"``; ``"left"`` when the face is turned towards the image's left (its image-left
side is then the far side: foreshortened, darker, its ear loop hidden); ``"right"`` mirrors that.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

TEMPLATE_WIDTH = 480
TEMPLATE_HEIGHT = 420
ANCHOR_NAMES = ("nose_bridge", "cheek_image_left", "cheek_image_right", "jaw_image_left", "jaw_image_right", "chin")
ANCHORS = np.array([[240, 65], [50, 76], [430, 76], [82, 227], [398, 227], [240, 363]], dtype=np.float32)
VARIANTS = ("front", "left", "right")

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


@dataclass
class Template:
    """A drawn mask at ``scale`` x the frame size: ``rgb`` ``(h, w, 3)`` float32 in 0..255, ``alpha`` ``(h, w)`` in 0..1.

    Drawing calls take frame coordinates (the ``TEMPLATE_WIDTH x TEMPLATE_HEIGHT`` frame of
    :data:`ANCHORS`); ``scale`` only sets the pixel resolution, chosen to match the face's size in the photo.
    Coverage maps are ``(h, w)`` uint8 (255 = fully covered), anti-aliased.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    scale: float = 1.0

    @classmethod
    def blank(cls, scale: float = 1.0) -> Template:
        height, width = int(round(TEMPLATE_HEIGHT * scale)), int(round(TEMPLATE_WIDTH * scale))
        return cls(np.zeros((height, width, 3), np.float32), np.zeros((height, width), np.float32), float(scale))

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape

    def paint(self, coverage: np.ndarray, colour) -> None:
        """Lay ``colour`` (RGB triple or ``(h, w, 3)`` image) over the canvas where ``coverage`` (uint8) says.

        Works on the coverage's bounding box only: most strokes are small.
        """
        x, y, w, h = cv2.boundingRect(coverage)
        if w == 0 or h == 0:
            return
        box = np.s_[y:y + h, x:x + w]
        c = coverage[box].astype(np.float32) * (1 / 255)
        paint = np.asarray(colour, np.float32)
        paint = paint[box] if paint.ndim == 3 else paint
        self.rgb[box] += (paint - self.rgb[box]) * c[..., None]
        self.alpha[box] += c * (1 - self.alpha[box])

    def shade(self, factor: np.ndarray) -> None:
        """Multiply the colours by an ``(h, w)`` factor (folds, curvature)."""
        self.rgb *= factor[..., None]

    # -- coverage maps, in frame coordinates
    def _fixed(self, points) -> np.ndarray:
        return np.round(np.asarray(points, np.float64) * (self.scale * _ONE)).astype(np.int32).reshape(-1, 1, 2)

    def _thickness(self, thickness: float) -> int:
        return -1 if thickness < 0 else max(int(round(thickness * self.scale)), 1)

    def polygon(self, points) -> np.ndarray:
        canvas = np.zeros(self.shape, np.uint8)
        cv2.fillPoly(canvas, [self._fixed(points)], 255, cv2.LINE_AA, _SHIFT)
        return canvas

    def polyline(self, points, thickness: float, closed: bool = False) -> np.ndarray:
        canvas = np.zeros(self.shape, np.uint8)
        cv2.polylines(canvas, [self._fixed(points)], closed, 255, self._thickness(thickness), cv2.LINE_AA, _SHIFT)
        return canvas

    def discs(self, centres, radii, thickness: float = -1) -> np.ndarray:
        canvas = np.zeros(self.shape, np.uint8)
        for centre, radius in zip(centres, radii):
            cx, cy = (int(round(v * self.scale * _ONE)) for v in centre)
            cv2.circle(canvas, (cx, cy), int(round(radius * self.scale * _ONE)), 255, self._thickness(thickness),
                       cv2.LINE_AA, _SHIFT)
        return canvas

    def disc(self, centre, radius: float, thickness: float = -1) -> np.ndarray:
        return self.discs([centre], [radius], thickness)

    def ellipse(self, centre, axes, thickness: float = -1) -> np.ndarray:
        canvas = np.zeros(self.shape, np.uint8)
        centre_fx = tuple(int(round(v * self.scale * _ONE)) for v in centre)
        axes_fx = tuple(int(round(v * self.scale * _ONE)) for v in axes)
        cv2.ellipse(canvas, centre_fx, axes_fx, 0, 0, 360, 255, self._thickness(thickness), cv2.LINE_AA, _SHIFT)
        return canvas

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Frame coordinates ``(xs, ys)`` of every canvas pixel, each ``(h, w)`` float32."""
        return _grid(self.shape, self.scale)


@functools.lru_cache(maxsize=8)
def _grid(shape: tuple[int, int], scale: float) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32) / np.float32(scale)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def within(coverage: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``coverage`` clipped to ``region`` (both uint8 coverage maps)."""
    return cv2.multiply(coverage, region, scale=1 / 255)


def curve(start, control, end, n: int = 24) -> np.ndarray:
    """``(n, 2)`` points of the quadratic Bezier curve from ``start`` to ``end``."""
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (start, control, end))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def outline(*segments: np.ndarray) -> np.ndarray:
    """Join curve segments (each ``(n, 2)``, end of one = start of the next) into one closed outline."""
    return np.concatenate([s[:-1] for s in segments])


def tone(colour, factor: float) -> np.ndarray:
    """``colour`` scaled by ``factor`` (darker < 1 < lighter), clipped to 0..255."""
    return np.clip(np.asarray(colour, np.float32) * factor, 0, 255)


def curvature(t: Template, variant: str, strength: float = 0.25) -> np.ndarray:
    """``(H, W)`` shading of a surface curving round the face: bright at its front, darker at the sides.

    A turned face shows its near side frontally, so the bright band moves towards it.
    """
    xs, _ = t.grid()
    centre = {"front": 240.0, "left": 300.0, "right": 180.0}[variant]
    return 1 - strength * np.clip(np.abs(xs - centre) / 230, 0, 1.3) ** 2


def ear_loop(side: str, top, bottom, ear_x: float) -> np.ndarray:
    """``(n, 2)`` path of an ear loop from the mask's ``top`` corner back to the ear and down to ``bottom``."""
    ear = (ear_x, top[1] + 40)
    sign = -1 if side == "image_left" else 1
    upper = curve(top, (top[0] + sign * 25, top[1] - 15), ear, 12)
    lower = curve(ear, (ear_x - sign * 4, bottom[1] - 30), bottom, 16)
    return np.concatenate([upper, lower[1:]])


def visible_sides(variant: str) -> tuple[str, ...]:
    """Sides whose ear loop / strap shows: the far side of a turned head hides it."""
    return {"front": ("image_left", "image_right"), "left": ("image_right",), "right": ("image_left",)}[variant]


def _draw_loops(t: Template, variant: str, corners: dict[str, tuple], colour, thickness: int = 4) -> None:
    for side in visible_sides(variant):
        top, bottom = corners[side]
        ear_x = 8.0 if side == "image_left" else TEMPLATE_WIDTH - 8.0
        path = ear_loop(side, top, bottom, ear_x)
        t.paint(t.polyline(path, thickness + 2), tone(colour, 0.6))  # the loop's shadow on the skin
        t.paint(t.polyline(path, thickness), colour)


def _far_side_darkening(t: Template, variant: str) -> np.ndarray:
    xs, _ = t.grid()
    if variant == "front":
        return np.ones_like(xs)
    far = (240 - xs) / 240 if variant == "left" else (xs - 240) / 240
    return 1 - 0.18 * np.clip(far, 0, 1)


# ---------------------------------------------------------------- mask types
def draw_surgical(rng: np.random.Generator, colour, variant: str, options: dict) -> Template:
    """Pleated rectangle with bound edges, a nose wire and ear loops."""
    t = Template.blank(float(options.get("scale", 1.0)))
    top = curve((45, 118), (240, 22), (435, 118))
    right = curve((435, 118), (420, 210), (398, 300))
    bottom = curve((398, 300), (240, 456), (82, 300))
    left = curve((82, 300), (60, 210), (45, 118))
    body_points = outline(top, right, bottom, left)
    body = t.polygon(body_points)
    t.paint(body, colour)
    bottom_rev = bottom[::-1]
    for frac in (0.3, 0.5, 0.7):
        pleat = (1 - frac) * top + frac * bottom_rev[np.linspace(0, len(bottom_rev) - 1, len(top)).astype(int)]
        t.paint(within(t.polyline(pleat + (0, 5), 8), body), tone(colour, 0.78))
        t.paint(within(t.polyline(pleat, 3), body), tone(colour, 1.1))
    t.paint(within(t.polyline(body_points, 12, closed=True), body), tone(colour, 0.94))  # bound edges
    t.paint(within(t.polyline(top[6:-6] + (0, 8), 3), body), tone(colour, 0.86))  # nose wire
    t.shade(curvature(t, variant) * _far_side_darkening(t, variant))
    loop_colour = tone((236, 236, 236), 1.0) if np.mean(colour) > 110 else tone(colour, 1.0)
    _draw_loops(t, variant, {"image_left": ((48, 124), (84, 294)), "image_right": ((432, 124), (396, 294))}, loop_colour)
    return t


def _superellipse(centre, half_width: float, half_height: float, power: float, n: int = 96) -> np.ndarray:
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(theta), np.sin(theta)
    x = centre[0] + half_width * np.sign(c) * np.abs(c) ** (2 / power)
    y = centre[1] + half_height * np.sign(s) * np.abs(s) ** (2 / power)
    return np.stack([x, y], 1)


def _dome_light(t: Template, centre, radius: float) -> np.ndarray:
    xs, ys = t.grid()
    r2 = ((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / radius**2
    return 1.08 - 0.3 * np.clip(r2, 0, 1.4)


def draw_n95(rng: np.random.Generator, colour, variant: str, options: dict) -> Template:
    """Moulded dome with a rim, two head straps and, with probability ``valve_probability``, a valve."""
    t = Template.blank(float(options.get("scale", 1.0)))
    body_points = _superellipse((240, 220), 192, 158, 2.3)
    body = t.polygon(body_points)
    t.paint(body, colour)
    t.paint(within(t.polyline(_superellipse((240, 218), 168, 136, 2.3), 4, closed=True), body), tone(colour, 0.82))  # rim
    t.paint(within(t.polyline(curve((130, 110), (240, 40), (350, 110)), 3), body), tone(colour, 0.88))  # nose clip
    t.shade(_dome_light(t, (240 + {"front": 0, "left": 40, "right": -40}[variant], 200), 210) * _far_side_darkening(t, variant))
    if rng.random() < float(options.get("valve_probability", 0.5)):
        _draw_valve(t, (320 if variant != "right" else 160, 262), colour, rng)
    strap = tuple(int(v) for v in rng.choice([(235, 235, 235), (220, 190, 60), (60, 90, 170)]))
    for side in visible_sides(variant):
        x_edge, x_out = (55, 6) if side == "image_left" else (425, TEMPLATE_WIDTH - 6)
        for y_edge, y_out in ((140, 110), (290, 250)):
            t.paint(t.polyline(curve((x_edge, y_edge), ((x_edge + x_out) / 2, y_edge - 4), (x_out, y_out), 10), 7), strap)
    return t


def _draw_valve(t: Template, centre, colour, rng: np.random.Generator) -> None:
    plastic = tone((205, 207, 210) if np.mean(colour) > 110 else (60, 62, 66), 1.0)
    t.paint(t.disc(centre, 42), tone(plastic, 0.7))
    t.paint(t.disc(centre, 38), plastic)
    t.paint(t.disc(centre, 26, 3), tone(plastic, 0.78))
    for dy in (-14, -5, 4, 13):
        slot = np.array([(centre[0] - 16, centre[1] + dy), (centre[0] + 16, centre[1] + dy)])
        t.paint(t.polyline(slot, 3), tone(plastic, 0.55))


def draw_kn95(rng: np.random.Generator, colour, variant: str, options: dict) -> Template:
    """Folded flat mask: pointed over the nose and the chin, a centre seam, welded edges, ear loops."""
    t = Template.blank(float(options.get("scale", 1.0)))
    nose, chin = (240, 58), (240, 392)
    points = np.array([nose, (435, 122), (410, 290), chin, (70, 290), (45, 122)], np.float32)
    body = t.polygon(points)
    t.paint(body, colour)
    xs, _ = t.grid()
    fold = np.where(xs < 240, 0.9 if variant != "right" else 1.0, 1.0 if variant != "right" else 0.9)
    t.shade(np.where(body > 0, fold, 1.0).astype(np.float32))
    t.paint(within(t.polyline(points * 0.94 + np.array([240, 225]) * 0.06, 3, closed=True), body), tone(colour, 0.8))  # weld line
    for offset in (-7, 7):
        dashes = np.linspace(nose[1] + 14, chin[1] - 14, 24)
        for y0, y1 in zip(dashes[::2], dashes[1::2]):
            t.paint(within(t.polyline(np.array([(240 + offset, y0), (240 + offset, y1)]), 2), body), tone(colour, 0.82))
    t.paint(within(t.polyline(np.array([nose, chin]), 4), body), tone(colour, 0.7))  # the centre seam
    t.paint(within(t.polyline(curve((150, 98), (240, 52), (330, 98)), 3), body), tone(colour, 0.86))  # nose wire
    t.shade(curvature(t, variant, 0.18) * _far_side_darkening(t, variant))
    loop_colour = (236, 236, 236) if np.mean(colour) > 110 else tone(colour, 1.2)
    _draw_loops(t, variant, {"image_left": ((50, 126), (74, 286)), "image_right": ((430, 126), (406, 286))}, loop_colour)
    return t


def cloth_texture(t: Template, rng: np.random.Generator, colour, pattern: str) -> np.ndarray:
    """``(h, w, 3)`` float32 fabric: ``solid``, ``check`` (gingham), ``stripes`` or ``floral`` (noise blobs and flowers)."""
    xs, ys = t.grid()
    height, width = t.shape
    base = np.asarray(colour, np.float32)
    second = tone(rng.integers(30, 240, 3), 1.0)
    if pattern == "solid":
        fabric = np.broadcast_to(base, (height, width, 3)).copy()
    elif pattern == "check":
        period = float(rng.uniform(16, 34))
        mix = (((xs // period) % 2 + (ys // period) % 2) / 2)[..., None]
        fabric = (1 - mix) * tone(base, 1.15) + mix * second * 0.8
    elif pattern == "stripes":
        period = float(rng.uniform(10, 26))
        angle = float(rng.choice([0.0, np.pi / 4, np.pi / 2]))
        phase = (xs * np.sin(angle) + ys * np.cos(angle)) // period % 2
        fabric = np.where(phase[..., None] > 0, second, base)
    elif pattern == "floral":
        noise = cv2.resize(rng.random((7, 8)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        blobs = np.clip((noise - 0.55) * 8, 0, 1)[..., None]
        fabric = (1 - blobs) * base + blobs * second
        count = int(rng.integers(25, 45))
        centres = rng.uniform((0, 0), (TEMPLATE_WIDTH, TEMPLATE_HEIGHT), (count, 2))
        radii = rng.uniform(6, 13, count)
        angles = 2 * np.pi * np.arange(5) / 5
        petals = (centres[:, None] + radii[:, None, None] * np.stack([np.cos(angles), np.sin(angles)], 1)).reshape(-1, 2)
        for cover, paint in ((t.discs(petals, np.repeat(radii * 0.6, 5)), rng.integers(60, 255, 3)),
                             (t.discs(centres, radii * 0.4), rng.integers(150, 255, 3))):
            c = cover.astype(np.float32)[..., None] / 255
            fabric = fabric * (1 - c) + tone(paint, 1.0) * c
    else:
        raise ValueError(f"unknown cloth pattern {pattern!r}")
    weave = rng.normal(0, 5, (height, width, 1)).astype(np.float32)  # fabric grain
    return np.clip(fabric + weave, 0, 255).astype(np.float32)


def draw_cloth(rng: np.random.Generator, colour, variant: str, options: dict) -> Template:
    """Rounded fabric mask with a pattern (``options['pattern']``), a centre seam and fabric ear loops."""
    t = Template.blank(float(options.get("scale", 1.0)))
    top = curve((45, 116), (240, 20), (435, 116))
    right = curve((435, 116), (428, 230), (392, 300))
    bottom = curve((392, 300), (240, 450), (88, 300))
    left = curve((88, 300), (52, 230), (45, 116))
    body_points = outline(top, right, bottom, left)
    body = t.polygon(body_points)
    t.paint(body, cloth_texture(t, rng, colour, options.get("pattern", "solid")))
    t.paint(within(t.polyline(curve((240, 68), (252, 220), (240, 380)), 4), body), tone(colour, 0.7))  # centre seam
    t.paint(within(t.polyline(body_points, 8, closed=True), body), tone(colour, 0.85))  # hem
    t.shade(curvature(t, variant, 0.3) * _far_side_darkening(t, variant))
    _draw_loops(t, variant, {"image_left": ((48, 122), (90, 294)), "image_right": ((432, 122), (390, 294))}, tone(colour, 0.9), 6)
    return t


def draw_gas(rng: np.random.Generator, colour, variant: str, options: dict) -> Template:
    """Half-face respirator: a rubber face piece, two round filter cartridges, an exhalation valve, straps."""
    t = Template.blank(float(options.get("scale", 1.0)))
    top = curve((70, 130), (240, 10), (410, 130))
    right = curve((410, 130), (425, 240), (380, 310))
    bottom = curve((380, 310), (240, 440), (100, 310))
    left = curve((100, 310), (55, 240), (70, 130))
    body_points = outline(top, right, bottom, left)
    body = t.polygon(body_points)
    t.paint(body, colour)
    t.paint(within(t.polyline(body_points, 10, closed=True), body), tone(colour, 1.35))  # soft seal rim
    t.shade(_dome_light(t, (240, 230), 220) * _far_side_darkening(t, variant))
    strap = tone(colour, 0.7)
    for side in visible_sides(variant):
        x_edge, x_out = (80, 4) if side == "image_left" else (400, TEMPLATE_WIDTH - 4)
        for y_edge, y_out in ((150, 120), (300, 270)):
            t.paint(t.polyline(np.array([(x_edge, y_edge), (x_out, y_out)]), 12), strap)
    filter_colour = tone(rng.choice([(190, 60, 120), (200, 180, 70), (120, 124, 128), (60, 64, 70)]), 1.0)
    for side, x in (("image_left", 112), ("image_right", 368)):
        far = (variant == "left" and side == "image_left") or (variant == "right" and side == "image_right")
        _draw_cartridge(t, (x + (18 if far and side == "image_left" else -18 if far else 0), 282), 0.8 if far else 1.0,
                        filter_colour, 0.82 if far else 1.0)
    valve = np.array([(205, 275), (275, 275), (268, 345), (212, 345)], np.float32)
    t.paint(t.polygon(valve), tone(colour, 0.8))
    for y in range(288, 340, 10):
        t.paint(t.polyline(np.array([(218, y), (262, y)]), 4), tone(colour, 0.45))
    return t


def _draw_cartridge(t: Template, centre, scale: float, colour, light: float) -> None:
    t.paint(t.ellipse(centre, (74 * scale, 74)), tone(colour, 0.55 * light))
    t.paint(t.ellipse(centre, (66 * scale, 66)), tone(colour, 1.0 * light))
    t.paint(t.ellipse(centre, (48 * scale, 48), 4), tone(colour, 0.7 * light))
    t.paint(t.ellipse(centre, (26 * scale, 26)), tone(colour, 0.8 * light))
    for k in range(8):
        angle = 2 * np.pi * k / 8
        t.paint(t.disc((centre[0] + 37 * scale * np.cos(angle), centre[1] + 37 * np.sin(angle)), 4), tone(colour, 0.4 * light))


DRAWERS: dict[str, Callable[[np.random.Generator, object, str, dict], Template]] = {
    "surgical": draw_surgical,
    "n95": draw_n95,
    "kn95": draw_kn95,
    "cloth": draw_cloth,
    "gas": draw_gas,
}


def draw_mask(mask_type: str, rng: np.random.Generator, colour, variant: str = "front", options: dict | None = None) -> Template:
    """Draw ``mask_type`` (a key of :data:`DRAWERS`) in ``colour`` (RGB) for ``variant`` in :data:`VARIANTS`."""
    if mask_type not in DRAWERS:
        raise ValueError(f"unknown mask type {mask_type!r}; the types are {', '.join(DRAWERS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; the variants are {', '.join(VARIANTS)}")
    template = DRAWERS[mask_type](rng, colour, variant, dict(options or {}))
    np.clip(template.rgb, 0, 255, out=template.rgb)
    return template
