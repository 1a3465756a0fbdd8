"""The masks stage's parameters (the ``masks`` section of params.yaml), with defaults and validation."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

MASK_TYPES: tuple[str, ...] = ("surgical", "n95", "kn95", "cloth", "gas")
CLOTH_PATTERNS: tuple[str, ...] = ("solid", "check", "stripes", "floral")

# RGB colours each type draws from (one chosen at random per face).
DEFAULT_COLOURS: dict[str, list[list[int]]] = {
    "surgical": [[118, 166, 214], [96, 150, 200], [126, 186, 168], [232, 236, 238]],
    "n95": [[236, 236, 232], [222, 224, 226], [70, 72, 78]],
    "kn95": [[238, 238, 236], [40, 40, 44], [226, 200, 200], [120, 160, 210]],
    "cloth": [[30, 32, 40], [40, 60, 110], [150, 30, 40], [70, 110, 70], [210, 200, 180], [120, 90, 140]],
    "gas": [[52, 54, 58], [74, 78, 70], [40, 40, 42]],
}


@dataclass(frozen=True)
class MaskParams:
    """Everything that changes which mask lands where.

    ``type_probabilities``: relative weights per mask type (missing types get 0).
    ``colours``: RGB choices per type. ``jitter``: std of the random offset of each fitted anchor, as a
    fraction of the face width. ``yaw_threshold``: |yaw| (see ``landmarks.head_yaw``) above which the
    left/right variant is drawn. ``min_face_size``: smallest face (detector box side, or jaw width for
    given landmarks) that gets a mask, in pixels. ``upsample``: dlib detector upsampling.
    ``fit_attempts``: fresh jitter draws before a face whose fit fails the placement check is given up.
    """

    seed: int = 0
    type_probabilities: dict[str, float] = field(
        default_factory=lambda: {"surgical": 0.35, "n95": 0.15, "kn95": 0.2, "cloth": 0.2, "gas": 0.1}
    )
    colours: dict[str, list[list[int]]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_COLOURS.items()})
    cloth_patterns: dict[str, float] = field(
        default_factory=lambda: {"solid": 0.4, "check": 0.2, "stripes": 0.2, "floral": 0.2}
    )
    n95_valve_probability: float = 0.5
    jitter: float = 0.015
    yaw_threshold: float = 0.2
    min_face_size: int = 40
    upsample: int = 0
    fit_attempts: int = 3
    examples: int = 24

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> MaskParams:
        """Build from a params section; unknown keys or bad values raise ``ValueError`` naming them."""
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"params masks: unknown keys {unknown}; known keys are {sorted(known)}")
        if "colours" in options:
            options["colours"] = {**DEFAULT_COLOURS, **options["colours"]}
        params = cls(**options)
        params.validate()
        return params

    def validate(self) -> None:
        _check_weights("type_probabilities", self.type_probabilities, MASK_TYPES)
        _check_weights("cloth_patterns", self.cloth_patterns, CLOTH_PATTERNS)
        for name, choices in self.colours.items():
            if name not in MASK_TYPES:
                raise ValueError(f"params masks.colours: unknown mask type {name!r}; types are {MASK_TYPES}")
            if not choices or any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in choices):
                raise ValueError(f"params masks.colours.{name}: expected a list of [r, g, b] in 0..255")
        if not 0 <= self.jitter <= 0.2:
            raise ValueError(f"params masks.jitter must lie in [0, 0.2], got {self.jitter}")
        if self.fit_attempts < 1:
            raise ValueError("params masks.fit_attempts must be at least 1")

    def type_weights(self) -> tuple[tuple[str, ...], list[float]]:
        """Mask types with a positive weight, and their probabilities (summing to 1)."""
        return _normalised(self.type_probabilities)

    def pattern_weights(self) -> tuple[tuple[str, ...], list[float]]:
        return _normalised(self.cloth_patterns)


def _check_weights(name: str, weights: dict[str, float], valid: tuple[str, ...]) -> None:
    bad = sorted(set(weights) - set(valid))
    if bad:
        raise ValueError(f"params masks.{name}: unknown entries {bad}; valid entries are {valid}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"params masks.{name}: weights must be >= 0 with a positive sum, got {weights}")


def _normalised(weights: dict[str, float]) -> tuple[tuple[str, ...], list[float]]:
    names = tuple(k for k, w in weights.items() if w > 0)
    total = sum(weights[k] for k in names)
    return names, [weights[k] / total for k in names]
