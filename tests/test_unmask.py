"""`faceparse unmask`: the feathered paste-back, faces with and without a mask, and the command's outputs."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from inference_fixtures import UNMASK_SIZE as SIZE
from inference_fixtures import tiny_onnx_parser, tiny_unmask_models
from masks_fixtures import astronaut_face
from PIL import Image

from stages import cli
from stages.core.inference.alignment import UPPER_FACE, Framing
from stages.core.inference.parsing import ParserModel
from stages.core.inference.photo_masks import find_photo_masks
from stages.core.inference.unmask import InpainterModel, _blend, blend_back, blend_window, unmask_photo
from stages.core.mask_finding.finder import MaskFinder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Untrained tiny parser, inpainter and mask finder exports at 128 px, and a framing from synthetic faces.
    The finder's threshold is 0 (every pixel is mask) or 1.01 (none is): what it finds is then known."""
    return tiny_unmask_models(tmp_path_factory.mktemp("models"))


def test_blend_back_replaces_the_hole_and_keeps_the_photo_beyond_the_feather():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    matrix = np.array([[0.5, 0, -10], [0, 0.5, -5]], np.float64)  # photo -> 64-px crop, 2 photo pixels per crop pixel
    restored = np.full((64, 64, 3), 7, np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[20:40, 20:40] = 1
    out = blend_back(image, restored, hole, matrix, feather=2.0)
    # crop pixels 20..39 are photo columns 60..99 and rows 50..89
    assert (out[51:89, 61:99] == 7).all()
    # sigma = 2 crop px = 4 photo px; the weight reaches 2 * (2 sigma) = 16 photo pixels past the hole
    far = np.ones(image.shape[:2], bool)
    far[50 - 17:90 + 17, 60 - 17:100 + 17] = False
    np.testing.assert_array_equal(out[far], image[far])


def test_a_face_without_a_mask_is_left_bit_identical_and_the_reason_given(models):
    image, _ = astronaut_face()
    result = unmask_photo(image, MaskFinder(models / "finder_none.onnx", 1), ParserModel(models / "parser.onnx", 1),
                          InpainterModel(models / "inpainter.onnx", 1), Framing.load(models / "framing.json"))
    assert len(result.faces) == 1 and result.restored_faces == 0
    assert result.faces[0]["status"].startswith("left unchanged: no mask found")
    np.testing.assert_array_equal(result.restored, image)


def test_a_masked_face_is_restored_inside_the_found_region_only(models):
    face, _ = astronaut_face()
    image = cv2.copyMakeBorder(face, 160, 160, 160, 160, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    finder, framing = MaskFinder(models / "finder_all.onnx", 1), Framing.load(models / "framing.json")
    result = unmask_photo(image, finder, ParserModel(models / "parser.onnx", 1),
                          InpainterModel(models / "inpainter.onnx", 1), framing)
    assert result.restored_faces == 1 and result.faces[0]["status"] == "restored"
    changed = np.abs(result.restored.astype(int) - image.astype(int)).max(-1) > 0
    # the whole aligned crop was "mask": the change covers the crop's footprint, plus at most the feather
    matrix = find_photo_masks(image, finder, framing, detector="centerface", points=UPPER_FACE).faces[0].matrix  # as unmask
    footprint = cv2.warpAffine(np.ones((SIZE, SIZE), np.uint8), matrix, image.shape[1::-1],
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
    assert changed[footprint].mean() > 0.5
    sigma = 2.0 / np.sqrt(abs(np.linalg.det(matrix[:, :2])))  # the default feather of 2 crop pixels, in photo pixels
    margin = 2 * int(np.ceil(2 * sigma)) + 2
    reach = cv2.dilate(footprint.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)) > 0
    assert not changed[~reach].any()


def test_a_parser_of_another_input_size_than_the_inpainter_parses_the_crop_at_its_own(models, tmp_path):
    face, _ = astronaut_face()
    image = cv2.copyMakeBorder(face, 160, 160, 160, 160, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    finder, framing = MaskFinder(models / "finder_all.onnx", 1), Framing.load(models / "framing.json")
    parser = ParserModel(tiny_onnx_parser(tmp_path / "parser_64.onnx", SIZE // 2), 1)
    assert parser.size != InpainterModel(models / "inpainter.onnx", 1).size
    result = unmask_photo(image, finder, parser, InpainterModel(models / "inpainter.onnx", 1), framing)
    assert result.restored_faces == 1 and result.faces[0]["status"] == "restored"
    assert not np.array_equal(result.restored, image)


def test_cli_unmask_writes_photo_json_and_comparison_and_reports_bad_files(tmp_path, models, capsys):
    image, _ = astronaut_face()
    Image.fromarray(image).save(tmp_path / "face.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(50))
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    common = ["--model", str(models / "parser.onnx"), "--framing", str(models / "framing.json"),
              "--inpainter", str(models / "inpainter.onnx"), "--threads", "1"]
    out = tmp_path / "out"
    code = cli.main(["unmask", str(tmp_path / "face.png"), str(tmp_path / "broken.jpg"), str(tmp_path / "wall.png"),
                     "-o", str(out), "--compare", "--mask-finder", str(models / "finder_all.onnx"), *common])
    err = capsys.readouterr().err
    assert code == cli.EXIT_SOME_FAILED
    assert "broken.jpg" in err and "wall.png: no usable face" in err
    summary = json.loads((out / "face.json").read_text())
    assert summary["restored_faces"] == 1
    assert np.asarray(Image.open(out / "face.unmasked.png")).shape == image.shape
    assert np.asarray(Image.open(out / "face.compare.png")).shape[1] > 2 * image.shape[1]
    # no mask: exit 0, the photo written unchanged, the reason on stderr
    code = cli.main(["unmask", str(tmp_path / "face.png"), "-o", str(tmp_path / "same"),
                     "--mask-finder", str(models / "finder_none.onnx"), *common])
    assert code == cli.EXIT_OK and "no mask found" in capsys.readouterr().err
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "same" / "face.unmasked.png")), image)


def test_cli_unmask_names_a_missing_inpainter_and_exits_2(tmp_path, models, capsys):
    code = cli.main(["unmask", str(tmp_path), "--model", str(models / "parser.onnx"), "--framing",
                     str(models / "framing.json"), "--mask-finder", str(models / "finder_all.onnx"),
                     "--inpainter", str(tmp_path / "none.onnx")])
    assert code == cli.EXIT_USAGE and "none.onnx: inpainter not found" in capsys.readouterr().err


def test_small_face_is_set_aside_with_its_reason(tmp_path, models, capsys):
    image, _ = astronaut_face()
    small = cv2.resize(image, (60, 60), interpolation=cv2.INTER_AREA)
    Image.fromarray(small).save(tmp_path / "small.png")
    code = cli.main(["unmask", str(tmp_path / "small.png"), "-o", str(tmp_path / "o"), "--min-face-size", "80",
                     "--model", str(models / "parser.onnx"), "--framing", str(models / "framing.json"),
                     "--inpainter", str(models / "inpainter.onnx"), "--mask-finder", str(models / "finder_all.onnx")])
    assert code == cli.EXIT_SOME_FAILED
    assert "small.png: no usable face" in capsys.readouterr().err


@pytest.mark.parametrize("shift", [(-10, -5), (-150, -40), (10, 60)])
def test_blend_back_computes_only_the_holes_window_and_matches_the_whole_photo_blend(shift):
    """The window (a face in a panorama costs what it costs in a small photo) changes nothing beyond OpenCV's
    fixed-point resampling (positions in 1/32 pixel, rounded differently once shifted): the result is the blend
    computed over the whole photo, also for a hole cut by the photo's edge, and outside the window the photo."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    matrix = np.array([[0.45, 0.1, shift[0]], [-0.1, 0.45, shift[1]]], np.float64)
    restored = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[30:50, 12:40] = True
    top, bottom, left, right = blend_window(image.shape, hole, matrix)
    assert (bottom - top) * (right - left) < image.shape[0] * image.shape[1] / 2
    whole = _blend(image, restored, hole, matrix, 2.0).astype(int)
    outside = np.ones(image.shape[:2], bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(whole[outside], image[outside])  # the window holds every change
    same = image.copy()
    assert blend_back(same, restored, hole, matrix, out=same) is same
    for out in (blend_back(image, restored, hole, matrix), same):
        diff = np.abs(out.astype(int) - whole)
        # a 1/32-pixel shift moves an interpolated value by at most 255 / 32 = 8 levels on this noise, in each of
        # the two warps (the crop's and the hole's weight)
        assert diff.max() <= 16 and diff.mean() < 0.05, (diff.max(), diff.mean())
        np.testing.assert_array_equal(out[outside], image[outside])
