"""Finding the face mask on an aligned face: the trained mask finder, thresholded, checked for size and dilated.

The finder (``models/mask_finder.onnx``, or the ``.pt`` checkpoint) marks mask pixels on a face aligned into the
training framing, the crop :func:`stages.core.inference.alignment.warp_into_framing` cuts for the parser. The
crop is shrunk to the finder's input side, its probabilities are scaled back up to the crop, and then:

- ``threshold``: a pixel whose probability reaches it is mask;
- ``min_region``: a region smaller than this fraction of the face is no mask at all (the face is left alone).
  The face is the convex hull of the framing's 68 template landmarks in the crop (:func:`face_pixels`): every
  aligned face is fitted onto that template, so the hull is where its face lies. Without a framing the whole
  crop counts as the face. The default, :data:`NO_MASK_FRACTION` (20 %), lies far below any drawn mask: the
  masks stage's regions cover 42 % to 106 % of the template hull (1st to 95th percentile on the synthetic
  default, 65 % to 106 % on CelebAMask-HQ; ear loops reach past the hull), and a real mask covers the nose, mouth
  and chin, at least a third of the face. It was chosen on val (``benchmarks/bench_mask_finder.py``): from 2 %
  to 20 % no masked val face is lost on CelebAMask-HQ but one of 308, while the false regions of red lips,
  beards, dark skin below the nose and scarves, which stay below a fifth of the face, fall by two thirds;
- ``dilation``: the region found grows by this many crop pixels, so that no edge of the mask is left for an
  inpainter to copy into the restored face;
- ``contrast_percentile``: before the network, each shrunk crop's brightness is stretched so that this
  percentile of its luma and the one as far from the top become black and white (:func:`stretch_contrast`;
  0: off, as for finders trained before it). Washed-out photos (selfie filters with lifted blacks, haze)
  otherwise hid a white mask from the finder.

Settings are read from the model (ONNX metadata, or the checkpoint's config); each can be overridden.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from stages.core.models.preprocessing import normalise

NO_MASK_FRACTION = 0.2


@dataclass(frozen=True)
class FinderSettings:
    """``input_size``: the network's side; ``threshold``: probability; ``min_region``: fraction of the face;
    ``dilation``: pixels of the aligned crop; ``contrast_percentile``: :func:`stretch_contrast`'s (0: off)."""

    input_size: int = 96
    threshold: float = 0.5
    min_region: float = NO_MASK_FRACTION
    dilation: int = 6
    contrast_percentile: float = 0.0

    def metadata(self) -> dict[str, str]:
        """The settings as ONNX metadata (string values)."""
        return {"mask_finder": json.dumps(self.__dict__)}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], path: str | Path) -> FinderSettings:
        if "mask_finder" not in metadata:
            raise ValueError(f"{path}: not a mask finder export (no mask_finder metadata)")
        values = json.loads(metadata["mask_finder"])
        return cls(int(values["input_size"]), float(values["threshold"]), float(values["min_region"]),
                   int(values["dilation"]), float(values.get("contrast_percentile", 0.0)))


@dataclass(frozen=True)
class FoundMask:
    """``region`` (S, S) bool: the mask found and dilated (all False when none was found); ``fraction``: the
    undilated region's pixels over the face's pixels; ``found``: ``fraction >= min_region``."""

    region: np.ndarray
    fraction: float
    found: bool


class MaskFinder:
    """A trained mask finder: ``probabilities(crops)`` maps ``(N, S, S, 3)`` uint8 RGB aligned faces (any S)
    to ``(N, S, S)`` float32 mask probabilities. ``path``: ``models/mask_finder.onnx`` or ``.pt``."""

    def __init__(self, path: str | Path, threads: int = 2, **overrides):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: mask finder not found (train one with `dvc repro train_mask_finder`)")
        if self.path.suffix == ".onnx":
            import onnxruntime as ort

            # Not inference.parsing.onnx_session: that module brings dlib and the parser into the finder's stage.
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            settings = FinderSettings.from_metadata(self.session.get_modelmeta().custom_metadata_map, self.path)
            self.model = None
        elif self.path.suffix == ".pt":
            import torch

            from stages.core.common.torch_utils import load_checkpoint, require_keys
            from stages.core.models.mask_finder import MaskFinderNet

            torch.set_num_threads(threads)
            payload = load_checkpoint(self.path)
            require_keys(payload, ("state_dict", "settings", "widths"), self.path)
            self.model = MaskFinderNet(tuple(payload["widths"]))
            self.model.load_state_dict(payload["state_dict"])
            self.model.eval()
            settings = FinderSettings(**payload["settings"])
            self.session = None
        else:
            raise ValueError(f"{self.path}: a mask finder is an .onnx export or a .pt checkpoint")
        self.settings = replace(settings, **overrides)

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """``(N, s, s, 3)`` uint8 at the input side -> ``(N, s, s)`` float32 logits."""
        if self.session is not None:
            return self.session.run(None, {self.session.get_inputs()[0].name: normalise(inputs)})[0][:, 0]
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(normalise(inputs))).numpy()[:, 0]

    def probabilities(self, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2]:
            raise ValueError(f"expected (N, S, S, 3) aligned faces, got {crops.shape}")
        side, size = crops.shape[1], self.settings.input_size
        out = np.empty(crops.shape[:3], np.float32)
        percentile = self.settings.contrast_percentile
        for start in range(0, len(crops), batch_size):
            batch = np.stack([stretch_contrast(resize_image(c, size), percentile)
                              for c in crops[start:start + batch_size]])
            probs = 1 / (1 + np.exp(-self.logits(batch).astype(np.float32)))
            out[start:start + batch_size] = [cv2.resize(p, (side, side), interpolation=cv2.INTER_LINEAR) for p in probs]
        return out


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """``(S, S, 3)`` uint8 -> ``(size, size, 3)``, area interpolation when shrinking."""
    if image.shape[0] == size:
        return np.ascontiguousarray(image)
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interpolation)


def stretch_contrast(image: np.ndarray, percentile: float) -> np.ndarray:
    """``image`` (s, s, 3) uint8 with its luma's ``percentile`` and ``100 - percentile`` percentiles taken to 0
    and 255 by one gain and offset for all three channels, so that hues keep (0: unchanged). A gain above 1
    only: a photo already spanning the range is not flattened."""
    if percentile <= 0:
        return image
    pixels = image.astype(np.float32)
    low, high = np.percentile(pixels.mean(axis=2), (percentile, 100 - percentile))
    if high - low >= 255:
        return image
    return np.clip((pixels - low) * (255 / max(high - low, 1.0)) + 0.5, 0, 255).astype(np.uint8)


def dilate(region: np.ndarray, pixels: int) -> np.ndarray:
    """``region`` (H, W) bool grown by a disc of radius ``pixels`` (0: unchanged)."""
    region = np.asarray(region, bool)
    if pixels <= 0:
        return region.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(region.astype(np.uint8), kernel) > 0


def face_pixels(template: np.ndarray, template_size: int, crop_size: int) -> float:
    """Pixels of the face in an aligned ``crop_size`` crop: the convex hull of the framing's ``(68, 2)``
    template landmarks (given for a ``template_size`` crop)."""
    points = np.asarray(template, np.float32) * (crop_size / template_size)
    return float(cv2.contourArea(cv2.convexHull(points)))


def regions_from_probabilities(probabilities: np.ndarray, settings: FinderSettings,
                               face_area: float | None = None) -> list[FoundMask]:
    """One :class:`FoundMask` per ``(S, S)`` probability map of ``probabilities`` (N, S, S).

    ``face_area``: pixels of the face in the crop (:func:`face_pixels`); None counts the whole crop.
    """
    found_masks = []
    for probs in np.asarray(probabilities):
        raw = probs >= settings.threshold
        area = face_area if face_area else float(raw.size)
        fraction = float(raw.sum()) / area
        found = fraction >= settings.min_region
        region = dilate(raw, settings.dilation) if found else np.zeros_like(raw)
        found_masks.append(FoundMask(region, fraction, bool(found)))
    return found_masks


def find_mask(finder: MaskFinder, aligned_rgb: np.ndarray, face_area: float | None = None) -> FoundMask:
    """The mask on one aligned face: ``aligned_rgb`` (S, S, 3) uint8 (S = 256 for the default pipeline), cut by
    :func:`stages.core.inference.alignment.warp_into_framing`. Returns the dilated (S, S) bool region (empty when
    the region is below ``min_region`` of the face), its undilated fraction of the face and whether it counts.
    ``face_area``: pixels of the face in the crop (:func:`face_pixels` of the framing); None: the whole crop."""
    aligned = np.asarray(aligned_rgb)
    if aligned.ndim != 3 or aligned.shape[2] != 3 or aligned.dtype != np.uint8:
        raise ValueError(f"expected an (S, S, 3) uint8 aligned face, got {aligned.shape} {aligned.dtype}")
    return regions_from_probabilities(finder.probabilities(aligned[None]), finder.settings, face_area)[0]
