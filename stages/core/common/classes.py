"""The unified 11-class face-parsing scheme: the one source of truth for ids, names and colours.

Every dataset adapter maps its own labels onto these ids, and every model predicts them.
Label maps are ``uint8`` arrays of shape ``(H, W)`` holding class ids; colour images are
``uint8`` RGB arrays of shape ``(H, W, 3)``.
"""
from __future__ import annotations

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "background",
    "lips",
    "eyes",
    "nose",
    "hair",
    "eyebrows",
    "teeth",  # the inner mouth: teeth, tongue and the dark gap between the lips
    "face",  # face skin, neck included by the default mappings
    "ears",
    "glasses",
    "beard",
)
NUM_CLASSES = len(CLASS_NAMES)
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
FOREGROUND_IDS: tuple[int, ...] = tuple(range(1, NUM_CLASSES))

BACKGROUND = CLASS_IDS["background"]
LIPS = CLASS_IDS["lips"]
EYES = CLASS_IDS["eyes"]
NOSE = CLASS_IDS["nose"]
HAIR = CLASS_IDS["hair"]
EYEBROWS = CLASS_IDS["eyebrows"]
TEETH = CLASS_IDS["teeth"]
FACE = CLASS_IDS["face"]
EARS = CLASS_IDS["ears"]
GLASSES = CLASS_IDS["glasses"]
BEARD = CLASS_IDS["beard"]

# Display colours (RGB). They are the mut1ny colour code, so a unified colour label is a valid mut1ny label.
CLASS_COLOURS: np.ndarray = np.array(
    [
        (0, 0, 0),  # background
        (255, 0, 0),  # lips
        (0, 255, 0),  # eyes
        (0, 0, 255),  # nose
        (255, 255, 0),  # hair
        (255, 0, 255),  # eyebrows
        (255, 255, 255),  # teeth
        (128, 128, 128),  # face
        (0, 255, 255),  # ears
        (0, 128, 128),  # glasses
        (255, 192, 192),  # beard
    ],
    dtype=np.uint8,
)


def class_id(name: str) -> int:
    """Id of a class by name; raises ``KeyError`` naming the valid classes."""
    try:
        return CLASS_IDS[name]
    except KeyError:
        raise KeyError(f"unknown class {name!r}; the classes are {', '.join(CLASS_NAMES)}") from None


def index_to_colour(label: np.ndarray) -> np.ndarray:
    """``(H, W)`` class ids -> ``(H, W, 3)`` RGB colours. Raises ``ValueError`` on ids >= NUM_CLASSES."""
    label = np.asarray(label)
    if label.size and int(label.max()) >= NUM_CLASSES:
        raise ValueError(f"label holds id {int(label.max())}, but there are only {NUM_CLASSES} classes")
    return CLASS_COLOURS[label]


def _colour_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def colour_to_index(colour: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB colour label with exact palette colours -> ``(H, W)`` uint8 ids.

    Raises ``ValueError`` naming the first colour that is not in the palette; anti-aliased labels
    need snapping first (see ``stages.core.data.datasets``).
    """
    colour = np.asarray(colour)
    if colour.ndim != 3 or colour.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) colour label, got shape {colour.shape}")
    keys = _colour_keys(colour)
    palette = _colour_keys(CLASS_COLOURS)
    order = np.argsort(palette)
    pos = np.searchsorted(palette[order], keys)
    pos = np.clip(pos, 0, len(palette) - 1)
    found = palette[order][pos] == keys
    if not found.all():
        bad = colour[~found][0]
        raise ValueError(f"colour {tuple(int(v) for v in bad)} is not a class colour ({int((~found).sum())} pixels)")
    return order[pos].astype(np.uint8)


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the class colours of ``label`` over an RGB ``image``; background pixels stay as they are."""
    colours = index_to_colour(label).astype(np.float32)
    out = image.astype(np.float32)
    fg = label > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
