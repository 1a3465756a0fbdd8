"""Parsing a user's photo: detect faces, align each into the training framing, parse, paste the probabilities back.

The parser runs on ONNX Runtime (``models/parser.onnx``, the deployable graph that takes uint8 photos and
normalises them itself; see :mod:`stages.core.parsing.sessions`) or, given a ``.pt`` checkpoint, on torch with
:func:`stages.core.models.preprocessing.normalise`, the normalisation training used. Float-input ONNX exports
of earlier versions still load (they get ``normalise``'s output).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stages.core.common.classes import BACKGROUND, CLASS_NAMES, NUM_CLASSES
from stages.core.common.threads import thread_budget
from stages.core.inference.alignment import Framing, alignment_matrix, paste_back, warp_into_framing
from stages.core.inference.faces import Face, find_faces
from stages.core.models.preprocessing import normalise
from stages.core.parsing.sessions import INPUT_NAME, LABELS_OUTPUT, LOGITS_OUTPUT, input_size, is_deployable, ort_session

COVERED = 0.5  # a face's crop covers a photo pixel when at least half of the pixel's interpolation falls inside


def onnx_session(path: str | Path, threads: int):
    """An ONNX Runtime CPU session (:func:`stages.core.parsing.sessions.ort_session`: one inter-op thread,
    ``ORT_ENABLE_ALL``) with ``threads`` intra-op threads; ``FACEPARSE_THREADS`` overrides them (see
    :mod:`stages.core.common.threads`)."""
    return ort_session(path, thread_budget(threads))


def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


class ParserModel:
    """A trained parser: ``probabilities(crops)`` maps ``(N, S, S, 3)`` uint8 RGB to ``(N, S, S, 11)`` float32,
    ``labels(crops)`` to ``(N, S, S)`` uint8 class ids.

    ``path`` is an ONNX export (``models/parser.onnx``, ``models/faceparse.onnx``, an int8 copy) or a checkpoint
    (``models/parser.pt``).
    """

    def __init__(self, path: str | Path, threads: int = 2):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: parser model not found (train one with `dvc repro`, or pass --model)")
        if self.path.suffix == ".onnx":
            self.session = onnx_session(self.path, threads)
            self.deployable = is_deployable(self.session)
            self.size = input_size(self.session)
            self.model = None
        elif self.path.suffix == ".pt":
            import torch

            from stages.core.models.registry import load_parser  # torch and smp only when a checkpoint is used

            torch.set_num_threads(thread_budget(threads))
            self.model, payload = load_parser(self.path)
            self.size = int(payload.get("input_size", 0)) or None
            self.session, self.deployable = None, False
        else:
            raise ValueError(f"{self.path}: a parser model is an .onnx export or a .pt checkpoint")
        if self.size is None:
            raise ValueError(f"{self.path}: the model does not record its input size")

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 -> ``(N, 11, S, S)`` logits."""
        if self.deployable:
            return self.session.run([LOGITS_OUTPUT], {INPUT_NAME: np.ascontiguousarray(crops, np.uint8)})[0]
        if self.session is not None:
            return self.session.run(None, {self.session.get_inputs()[0].name: normalise(crops)})[0]
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(normalise(crops))).numpy()

    def labels(self, crops: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 -> ``(N, S, S)`` uint8 class ids; the deployable graph computes them itself."""
        if self.deployable:
            return self.session.run([LABELS_OUTPUT], {INPUT_NAME: np.ascontiguousarray(crops, np.uint8)})[0]
        return self.logits(crops).argmax(1).astype(np.uint8)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        return np.moveaxis(softmax(self.logits(crops).astype(np.float32), axis=1), 1, -1)

    def mirror_averaged_labels(self, crops: np.ndarray, batch: int = 16, progress: str | None = None) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 -> ``(N, S, S)`` class ids from the mean probabilities of each crop and its mirror
        image (the 11 classes have no left/right, so the mirror's map flips back as it is); twice the cost."""
        return self.labels_and_mirror_averaged(crops, batch, progress)[1]

    def labels_and_mirror_averaged(self, crops: np.ndarray, batch: int = 16,
                                   progress: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(N, S, S, 3)`` uint8 (an array or a memory map) -> the ``(N, S, S)`` class ids of the crops alone and
        the mirror-averaged ones, from one pass over the crops and one over their mirror images, ``batch`` crops
        at a time (so that only one batch's float probabilities are held). ``progress`` names a progress bar."""
        plain, averaged = [np.zeros((0, self.size, self.size), np.uint8)], [np.zeros((0, self.size, self.size), np.uint8)]
        for start in tqdm(range(0, len(crops), batch), desc=progress, leave=False, disable=progress is None):
            chunk = np.asarray(crops[start:start + batch])
            probabilities = self.probabilities(chunk)
            mirrored = self.probabilities(np.ascontiguousarray(chunk[:, :, ::-1]))[:, :, ::-1]
            plain.append(probabilities.argmax(-1).astype(np.uint8))
            averaged.append((probabilities + mirrored).argmax(-1).astype(np.uint8))
        return np.concatenate(plain), np.concatenate(averaged)


@dataclass
class ParsedFace:
    """One parsed face: the detection, its ``(2, 3)`` alignment matrix, and the photo pixels it won per class."""

    face: Face
    matrix: np.ndarray
    class_pixels: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"box": list(self.face.box), "detector": self.face.detector,
                "landmarks": np.round(self.face.landmarks, 1).tolist(), "class_pixels": self.class_pixels}


@dataclass
class ParsedPhoto:
    """``probabilities`` (H, W, 11) float32 and ``labels`` (H, W) uint8 for the whole photo, and its faces."""

    probabilities: np.ndarray
    labels: np.ndarray
    faces: list[ParsedFace]
    rejected: list[str]


def combine_faces(pasted: list[tuple[np.ndarray, np.ndarray]], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-face ``(probabilities (H, W, C), coverage (H, W))`` from :func:`paste_back` into one map.

    Where crops overlap, the face whose most likely class is the more probable wins. Outside every crop the
    photo is background. Returns ``(H, W, C)`` probabilities and the ``(H, W)`` int index of the winning face
    (-1 where none covers the pixel).
    """
    height, width = shape
    merged = np.zeros((height, width, NUM_CLASSES), np.float32)
    merged[:, :, BACKGROUND] = 1.0
    winner = np.full((height, width), -1, np.int32)
    if not pasted:
        return merged, winner
    confidence = np.stack([np.where(cov >= COVERED, probs.max(-1) / np.maximum(cov, 1e-6), -1.0)
                           for probs, cov in pasted])
    best = confidence.argmax(0)
    covered = confidence.max(0) >= 0
    for index, (probs, coverage) in enumerate(pasted):
        mine = covered & (best == index)
        # Inside the crop the pasted values are probabilities scaled by the coverage; undo that at the edge.
        merged[mine] = probs[mine] / np.maximum(coverage[mine], 1e-6)[:, None]
        winner[mine] = index
    return merged, winner


def parse_photo(image: np.ndarray, model: ParserModel, framing: Framing, min_face_size: int = 40,
                detector: str = "hog+cnn", upsample: int = 1) -> ParsedPhoto:
    """Detect, align, parse and paste back every face of ``image`` (H, W, 3) uint8 RGB."""
    framing = framing if framing.size == model.size else framing.scaled_to(model.size)
    detection = find_faces(image, min_face_size, detector, upsample)
    faces = [ParsedFace(face, alignment_matrix(face.landmarks, framing)) for face in detection.faces]
    pasted = []
    if faces:
        crops = np.stack([warp_into_framing(image, f.matrix, model.size) for f in faces])
        probabilities = model.probabilities(crops)
        pasted = [paste_back(probs, f.matrix, image.shape[:2]) for probs, f in zip(probabilities, faces)]
    merged, winner = combine_faces(pasted, image.shape[:2])
    labels = merged.argmax(-1).astype(np.uint8)
    for index, parsed in enumerate(faces):
        counts = np.bincount(labels[winner == index], minlength=NUM_CLASSES)
        parsed.class_pixels = {name: int(n) for name, n in zip(CLASS_NAMES, counts)}
    return ParsedPhoto(merged, labels, faces, detection.rejected)
