"""What ``faceparse parse`` and ``faceparse enhance`` do to each photo, and the files they write.

``parse`` writes, per photo, ``<stem>.labels.png`` (the 11 class ids at full size, shown in class colours),
``<stem>.overlay.png`` and ``<stem>.json`` (each face's box, detector, landmarks and pixels per class).
``enhance`` writes ``<stem>.enhanced.png`` (and ``<stem>.compare.png``, before | after, with ``compare``)
and the same JSON. ``unmask`` writes ``<stem>.unmasked.png`` (the photo with every found mask removed; faces
without a mask are left as they are and the JSON says why), ``<stem>.json`` and, with ``compare``, before | after;
a grayscale photo's ``<stem>.unmasked.png`` is grayscale (one channel).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stages.core.common.classes import overlay
from stages.core.common.io import BadInputError, read_image, write_json_atomic, write_png
from stages.core.inference.alignment import Framing
from stages.core.inference.batch import PhotoResult, write_label_png
from stages.core.inference.enhance import EnhanceParams, enhance, side_by_side
from stages.core.inference.parsing import ParsedPhoto, ParserModel, parse_photo
from stages.core.inference.unmask import InpainterModel, unmask_photo
from stages.core.mask_finding.finder import MaskFinder


@dataclass(frozen=True)
class PhotoSettings:
    """How faces are found: the smallest face side in pixels, the dlib detector(s) and HOG's upsampling."""

    min_face_size: int = 40
    detector: str = "hog+cnn"
    upsample: int = 1


def _parse(path: Path, model: ParserModel, framing: Framing, settings: PhotoSettings):
    image = read_image(path)
    parsed = parse_photo(image, model, framing, settings.min_face_size, settings.detector, settings.upsample)
    if not parsed.faces:
        reasons = "; ".join(parsed.rejected) or "the detectors found none"
        raise BadInputError(path, f"no usable face ({reasons})")
    return image, parsed


def _summary(path: Path, image, parsed: ParsedPhoto, outputs: list[Path]) -> dict:
    return {"photo": str(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
            "faces": [face.summary() for face in parsed.faces], "set_aside": parsed.rejected,
            "outputs": [str(p) for p in outputs]}


def parse_one(path: Path, stem: str, out_dir: Path, model: ParserModel, framing: Framing,
              settings: PhotoSettings) -> PhotoResult:
    image, parsed = _parse(path, model, framing, settings)
    outputs = [out_dir / f"{stem}.labels.png", out_dir / f"{stem}.overlay.png", out_dir / f"{stem}.json"]
    write_label_png(outputs[0], parsed.labels)
    write_png(outputs[1], overlay(image, parsed.labels))
    summary = _summary(path, image, parsed, outputs)
    write_json_atomic(outputs[2], summary)
    return PhotoResult(path, outputs, summary=summary)


def enhance_one(path: Path, stem: str, out_dir: Path, model: ParserModel, framing: Framing,
                settings: PhotoSettings, edits: EnhanceParams, compare: bool = False) -> PhotoResult:
    image, parsed = _parse(path, model, framing, settings)
    after = enhance(image, parsed.probabilities, edits, labels=parsed.labels)
    outputs = [out_dir / f"{stem}.enhanced.png", out_dir / f"{stem}.json"]
    write_png(outputs[0], after)
    if compare:
        outputs.insert(1, out_dir / f"{stem}.compare.png")
        write_png(outputs[1], side_by_side(image, after))
    summary = {**_summary(path, image, parsed, outputs), "edits": edits.as_dict()}
    write_json_atomic(outputs[-1], summary)
    return PhotoResult(path, outputs, summary=summary)


def is_grayscale(image: np.ndarray) -> bool:
    """Whether the three channels of ``image`` (H, W, 3) are equal everywhere (how :func:`read_image` gives a
    grayscale file); checked a band of rows at a time, so a panorama needs no full-size temporary."""
    return all(np.array_equal(band[..., 0], band[..., 1]) and np.array_equal(band[..., 1], band[..., 2])
               for band in (image[row:row + 256] for row in range(0, image.shape[0], 256)))


def unmask_one(path: Path, stem: str, out_dir: Path, parser: ParserModel, finder: MaskFinder,
               inpainter: InpainterModel, framing: Framing, settings: PhotoSettings, compare: bool = False) -> PhotoResult:
    image = read_image(path)
    result = unmask_photo(image, finder, parser, inpainter, framing, settings.min_face_size, settings.detector,
                          settings.upsample)
    if not result.faces:
        reasons = "; ".join(result.rejected) or "the detectors found none"
        raise BadInputError(path, f"no usable face ({reasons})")
    # a grayscale photo (a scan) stays grayscale: the inpainter paints in colour, which a gray photo never has
    grayscale = is_grayscale(image)
    if grayscale:
        result.restored = cv2.cvtColor(cv2.cvtColor(result.restored, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    outputs = [out_dir / f"{stem}.unmasked.png", out_dir / f"{stem}.json"]
    write_png(outputs[0], result.restored[..., 0] if grayscale else result.restored)
    if compare:
        outputs.insert(1, out_dir / f"{stem}.compare.png")
        write_png(outputs[1], side_by_side(image, result.restored))
    summary = {"photo": str(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
               "grayscale": grayscale, "faces": result.faces, "restored_faces": result.restored_faces,
               "set_aside": result.rejected, "outputs": [str(p) for p in outputs]}
    write_json_atomic(outputs[-1], summary)
    return PhotoResult(path, outputs, summary=summary)
