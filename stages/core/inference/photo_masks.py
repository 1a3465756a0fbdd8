"""Finding the face masks in a user's photo: detect the faces, align each into the framing, run the mask finder.

This is the photo-level path ``faceparse unmask`` takes before inpainting: per face, the aligned crop, its
alignment matrix (to paste results back) and the :class:`~stages.core.mask_finding.finder.FoundMask`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.core.inference.alignment import Framing, alignment_matrix, warp_into_framing
from stages.core.inference.faces import Face, find_faces
from stages.core.mask_finding.finder import FoundMask, MaskFinder, face_pixels, regions_from_probabilities


@dataclass
class FaceMask:
    """One face: the detection, its ``(2, 3)`` photo-to-crop ``matrix``, the ``(S, S, 3)`` uint8 ``crop`` and
    the mask found on it."""

    face: Face
    matrix: np.ndarray
    crop: np.ndarray
    mask: FoundMask


@dataclass
class PhotoMasks:
    faces: list[FaceMask]
    rejected: list[str]

    @property
    def any_found(self) -> bool:
        return any(f.mask.found for f in self.faces)


def find_photo_masks(image: np.ndarray, finder: MaskFinder, framing: Framing, crop_size: int | None = None,
                     min_face_size: int = 40, detector: str = "hog+cnn", upsample: int = 1,
                     points: np.ndarray | None = None) -> PhotoMasks:
    """Every face of ``image`` (H, W, 3) uint8 RGB, aligned to ``framing`` at ``crop_size`` (default: the
    framing's size) and searched for a mask; "the face" of the minimum region is the framing's template hull.
    ``points``: the landmark indices the alignment is fitted to (all 68 by default; see ``alignment_matrix``)."""
    size = crop_size or framing.size
    framing = framing if framing.size == size else framing.scaled_to(size)
    face_area = face_pixels(framing.template, framing.size, size)
    detection = find_faces(image, min_face_size, detector, upsample)
    matrices = [alignment_matrix(face.landmarks, framing, points) for face in detection.faces]
    crops = [warp_into_framing(image, matrix, size) for matrix in matrices]
    found = regions_from_probabilities(finder.probabilities(np.stack(crops)), finder.settings, face_area) if crops else []
    faces = [FaceMask(face, matrix, crop, mask) for face, matrix, crop, mask in zip(detection.faces, matrices, crops, found)]
    return PhotoMasks(faces, detection.rejected)
