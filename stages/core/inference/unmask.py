"""Removing face masks from a user's photo: find each face's mask, parse the face, inpaint, paste back.

Per face (:func:`unmask_photo`):
1. detect and align the face into the training framing (:func:`stages.core.inference.photo_masks.find_photo_masks`);
2. find the mask with the mask finder; a face without one is left unchanged, and the reason is reported;
3. parse the masked face (the parser learnt to see through masks) and inpaint it at the model's size;
4. warp the restored face back and blend it into the photo at full resolution with a feathered edge that lies
   wholly outside the found region, so no pixel of the mask shows through.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from stages.core.inference.alignment import UPPER_FACE, Framing
from stages.core.inference.parsing import ParserModel, onnx_session
from stages.core.inference.photo_masks import find_photo_masks
from stages.core.mask_finding.finder import MaskFinder, resize_image


class InpainterModel:
    """A trained inpainter: ``restore(crops, holes, labels)`` maps ``(N, S, S, 3)`` uint8 RGB, ``(N, S, S)`` bool
    holes and ``(N, S, S)`` class ids to ``(N, S, S, 3)`` uint8 with the holes filled.
    ``path``: ``models/inpainter.onnx`` or the ``.pt`` checkpoint."""

    def __init__(self, path: str | Path, threads: int = 2):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: inpainter not found (train one with `dvc repro train_inpainter`)")
        if self.path.suffix == ".onnx":
            self.session, self.model = onnx_session(self.path, threads), None
            self.size = int(self.session.get_inputs()[0].shape[2])
        elif self.path.suffix == ".pt":
            import torch

            from stages.core.common.torch_utils import load_checkpoint
            from stages.core.inpainting.training import load_inpainter

            torch.set_num_threads(threads)
            self.session, self.model = None, load_inpainter(self.path)
            self.size = int(load_checkpoint(self.path).get("input_size", 256))
        else:
            raise ValueError(f"{self.path}: an inpainter is an .onnx export or a .pt checkpoint")

    def restore(self, crops: np.ndarray, holes: np.ndarray, labels: np.ndarray) -> np.ndarray:
        masked = np.moveaxis(np.asarray(crops, np.float32) / 127.5 - 1, -1, 1)
        hole = np.asarray(holes, np.float32)[:, None]
        ids = np.asarray(labels, np.int64)
        if self.session is not None:
            out = np.concatenate([self.session.run(None, {"masked": masked[i:i + 1], "mask": hole[i:i + 1],
                                                          "labels": ids[i:i + 1]})[0] for i in range(len(masked))])
        else:
            import torch

            with torch.no_grad():
                out = self.model(torch.from_numpy(masked), torch.from_numpy(hole), torch.from_numpy(ids)).numpy()
        return np.clip(np.round((np.moveaxis(out, 1, -1) + 1) * 127.5), 0, 255).astype(np.uint8)


@dataclass
class UnmaskedPhoto:
    """The photo with every found mask removed, one summary per face, and the faces the detector set aside."""

    restored: np.ndarray
    faces: list[dict] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def restored_faces(self) -> int:
        return sum(face["status"] == "restored" for face in self.faces)


def blend_back(image: np.ndarray, restored_crop: np.ndarray, hole: np.ndarray, matrix: np.ndarray,
               feather: float = 2.0, out: np.ndarray | None = None) -> np.ndarray:
    """Paste ``restored_crop`` (S, S, 3) uint8 into ``image`` (H, W, 3) through the inverse of ``matrix`` (2, 3).

    The weight is 1 on the warped ``hole`` (S, S) bool and falls to 0 outside it over twice ``2 * feather`` crop
    pixels (scaled to photo pixels), never reaching further; the restored crop equals the photo there, so the
    feather only hides the resampling seam, and no pixel of the hole keeps any of the mask.

    Only the hole's neighbourhood is computed (:func:`blend_window`), so a face costs the same memory and time in a
    panorama as in a small photo. ``out``: where to write (it may be ``image`` itself); by default a copy of ``image``.
    """
    out = np.array(image, copy=True) if out is None else out
    window = blend_window(image.shape, hole, matrix, feather)
    if window is not None:
        top, bottom, left, right = window
        shifted = np.array(matrix, np.float64, copy=True)
        shifted[:, 2] += shifted[:, :2] @ (left, top)  # crop pixels of the window's pixels
        out[top:bottom, left:right] = _blend(image[top:bottom, left:right], restored_crop, hole, shifted, feather)
    return out


def _feather(matrix: np.ndarray, feather: float) -> tuple[float, int]:
    """The feather's sigma and its kernel's radius, in photo pixels."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # crop pixels per photo pixel
    sigma = max(feather / scale, 0.5)
    return sigma, int(np.ceil(2 * sigma))


def blend_window(shape: tuple[int, ...], hole: np.ndarray, matrix: np.ndarray, feather: float = 2.0
                 ) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)``: the part of a photo of ``shape`` that :func:`blend_back` can change, the
    ``hole``'s box (one crop pixel wider, for the interpolation) mapped into the photo and grown by the dilation and
    the blur (each ``2 * sigma``) plus 2 pixels; None when that lies outside the photo or the hole is empty."""
    rows, cols = np.nonzero(hole)
    if not len(rows):
        return None
    corners = np.array([(x, y) for x in (cols.min() - 1, cols.max() + 1) for y in (rows.min() - 1, rows.max() + 1)],
                       np.float64)
    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    photo = corners @ inverse[:, :2].T + inverse[:, 2]
    margin = 2 * _feather(matrix, feather)[1] + 2
    height, width = shape[:2]
    left, top = (max(0, int(np.floor(v)) - margin) for v in photo.min(0))
    right, bottom = (int(np.ceil(v)) + margin + 1 for v in photo.max(0))
    right, bottom = min(width, right), min(height, bottom)
    return (top, bottom, left, right) if left < right and top < bottom else None


def _blend(image: np.ndarray, restored_crop: np.ndarray, hole: np.ndarray, matrix: np.ndarray,
           feather: float) -> np.ndarray:
    """:func:`blend_back` over the whole of ``image`` (the window it was given)."""
    height, width = image.shape[:2]
    sigma, reach = _feather(matrix, feather)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    covered = (cv2.warpAffine(hole.astype(np.float32), matrix, (width, height), flags=flags, borderValue=0) > 0)
    grown = cv2.dilate(covered.astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    weight = np.maximum(cv2.GaussianBlur(grown, (2 * reach + 1,) * 2, sigma), covered.astype(np.float32))
    pasted = cv2.warpAffine(restored_crop, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    out = image.astype(np.float32) * (1 - weight[..., None]) + pasted.astype(np.float32) * weight[..., None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def unmask_photo(image: np.ndarray, finder: MaskFinder, parser: ParserModel, inpainter: InpainterModel,
                 framing: Framing, min_face_size: int = 40, detector: str = "centerface", upsample: int = 1,
                 feather: float = 2.0) -> UnmaskedPhoto:
    """Every masked face of ``image`` (H, W, 3) uint8 RGB restored; unmasked faces are left as they are."""
    # aligned by the points a mask leaves visible: on the masks stage's real test faces the crop's corners land
    # 4.3 % of its side from the clean photo's alignment, against 6.2 % with all 68 (bench_masked_alignment.py)
    found = find_photo_masks(image, finder, framing, inpainter.size, min_face_size, detector, upsample, UPPER_FACE)
    result = UnmaskedPhoto(np.array(image, copy=True), rejected=list(found.rejected))
    for face in found.faces:
        summary = {"box": list(face.face.box), "detector": face.face.detector,
                   "mask_fraction": round(face.mask.fraction, 4)}
        if not face.mask.found:
            summary["status"] = (f"left unchanged: no mask found (region {100 * face.mask.fraction:.1f}% of the face, "
                                 f"below {100 * finder.settings.min_region:.0f}%)")
            result.faces.append(summary)
            continue
        crop = face.crop if parser.size == len(face.crop) else resize_image(face.crop, parser.size)
        labels = parser.mirror_averaged_labels(crop[None])  # the benchmark's guide (inpainter_evaluation)
        if labels.shape[1:] != face.mask.region.shape:
            labels = np.stack([cv2.resize(lab.astype(np.uint8), face.mask.region.shape[::-1],
                                          interpolation=cv2.INTER_NEAREST) for lab in labels])
        restored = inpainter.restore(face.crop[None], face.mask.region[None], labels)[0]
        blend_back(result.restored, restored, face.mask.region, face.matrix, feather, out=result.restored)
        result.faces.append({**summary, "status": "restored"})
    return result
