"""The reframed test set (zoomed, shifted, rotated test photos) and its two scores, whole photo and parse path."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from inference_fixtures import tiny_onnx_parser

from stages.core.common.classes import BACKGROUND, CLASS_COLOURS, FACE, index_to_colour, overlay
from stages.core.common.params import ParamsError
from stages.core.data.reframing import (
    ReframedParams,
    ReframedSet,
    decompose,
    footprint,
    image_rng,
    random_transform,
    reframe,
    reframed_set,
)
from stages.core.data.synthetic_faces import face_rng, render_face
from stages.core.inference.alignment import measure_framing
from stages.core.inference.parsing import ParserModel
from stages.core.parsing.evaluation import BenchmarkParams, score_reframed

SIZE = 128


@pytest.fixture(scope="module")
def faces():
    return [render_face(face_rng(7, i), SIZE) for i in range(6)]


def _uniform(label: np.ndarray, radius: int) -> np.ndarray:
    """Where every pixel within ``radius`` (a square) has the same class as the centre."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(label, kernel) == cv2.erode(label, kernel)


def test_the_same_seed_gives_the_same_set_and_each_photo_its_own_draw(faces):
    images, labels = np.stack([f.image for f in faces]), np.stack([f.label for f in faces])
    settings = ReframedParams(seed=3)
    first, again = reframed_set(images, labels, settings), reframed_set(images, labels, settings)
    assert len(first) == len(faces) and first.images.shape == images.shape and first.labels.shape == labels.shape
    assert np.array_equal(first.images, again.images) and np.array_equal(first.labels, again.labels)
    assert np.array_equal(first.matrices, again.matrices)
    fewer = reframed_set(images, labels, settings.model_copy(update={"images": 2}))
    assert len(fewer) == 2 and np.array_equal(fewer.images, first.images[:2])  # photo i depends on (seed, i) only
    other = reframed_set(images, labels, ReframedParams(seed=4))
    assert not np.allclose(other.matrices, first.matrices)
    assert np.array_equal(random_transform(image_rng(3, 5), SIZE, settings), first.matrices[5])


def test_transforms_stay_in_the_configured_ranges():
    settings = ReframedParams(scale_min=0.4, scale_max=1.5, max_shift=0.15, max_rotation=30)
    drawn = np.array([(*decompose(random_transform(image_rng(0, i), SIZE, settings), SIZE)[:2],
                       *decompose(random_transform(image_rng(0, i), SIZE, settings), SIZE)[2]) for i in range(300)])
    scale, angle, shift = drawn[:, 0], drawn[:, 1], drawn[:, 2:]
    assert scale.min() >= 0.4 - 1e-9 and scale.max() <= 1.5 + 1e-9
    assert scale.min() < 0.45 and scale.max() > 1.35 and 0.3 < (scale < 1).mean() < 0.8  # zooms out and in
    assert np.abs(angle).max() <= 30 + 1e-9 and np.abs(angle).max() > 27
    assert np.abs(shift).max() <= 0.15 * SIZE + 1e-9 and np.abs(shift).max() > 0.13 * SIZE
    matrix = random_transform(image_rng(0, 0), SIZE, settings)
    s, a, t = decompose(matrix, SIZE)  # the decomposition rebuilds the matrix
    rebuilt = cv2.getRotationMatrix2D(((SIZE - 1) / 2, (SIZE - 1) / 2), a, s)
    rebuilt[:, 2] += t
    assert np.allclose(rebuilt, matrix)


def test_params_nest_under_benchmark_and_refuse_bad_values():
    assert BenchmarkParams.from_params({"reframed": {"seed": 5}}).reframed.seed == 5
    with pytest.raises(ParamsError, match=r"benchmark\.reframed\.scael_min: unknown key"):
        BenchmarkParams.from_params({"reframed": {"scael_min": 0.5}})
    with pytest.raises(ParamsError, match=r"scale_min 2.0 is above scale_max 1.5"):
        BenchmarkParams.from_params({"reframed": {"scale_min": 2.0}})
    with pytest.raises(ParamsError, match=r"benchmark\.reframed\.detector"):
        BenchmarkParams.from_params({"reframed": {"detector": "mtcnn"}})


def test_image_and_label_move_with_the_returned_matrix(faces):
    settings = ReframedParams()
    checked = 0
    for i, face in enumerate(faces):
        image, label, matrix = reframe(face.image, face.label, image_rng(1, i), settings)
        assert image.shape == face.image.shape and label.shape == face.label.shape and matrix.shape == (2, 3)
        points = np.concatenate([face.landmarks, [face.landmarks[36:42].mean(0), face.landmarks[42:48].mean(0)],
                                 (face.landmarks[:17] + face.landmarks[30]) / 2])  # + eye centres, cheeks
        moved = cv2.transform(points[None].astype(np.float64), matrix)[0]
        inside = (moved >= 0).all(1) & (moved <= SIZE - 1).all(1)
        src = np.round(points).astype(int)
        dst = np.round(moved).astype(int)
        # a landmark well inside one class region keeps that class in the reframed label
        steady = _uniform(face.label, 3)[src[:, 1], src[:, 0]] & inside
        assert (label[dst[steady, 1], dst[steady, 0]] == face.label[src[steady, 1], src[steady, 0]]).all()
        # and the photo there shows the same colour (bilinear interpolation of a smooth region)
        smooth = steady & (cv2.Laplacian(face.image, cv2.CV_32F).__abs__().max(-1) < 4)[src[:, 1], src[:, 0]]
        diff = np.abs(image[dst[smooth, 1], dst[smooth, 0]].astype(int) - face.image[src[smooth, 1], src[smooth, 0]])
        assert diff.size == 0 or np.median(diff) <= 12
        checked += int(steady.sum())
    assert checked > 60


def test_label_edges_are_the_image_colour_edges_also_in_the_padding(faces):
    """A photo painted in its own label's colours stays painted in the reframed label's colours, everywhere."""
    for i, face in enumerate(faces):
        painted = CLASS_COLOURS[face.label]
        image, label, matrix = reframe(painted, face.label, image_rng(2, i), ReframedParams())
        away_from_edges = _uniform(label, 2)
        away_from_edges[[0, 1, -2, -1]] = away_from_edges[:, [0, 1, -2, -1]] = False  # (the frame cuts the check)
        assert (index_to_colour(label)[away_from_edges] == image[away_from_edges]).all()
        assert away_from_edges.mean() > 0.5


def test_padding_is_the_mirrored_photo_and_its_label_not_black(faces):
    face = faces[0]
    zoom_out = ReframedParams(scale_min=0.4, scale_max=0.4, max_shift=0, max_rotation=0)
    image, label, matrix = reframe(face.image, face.label, image_rng(0, 0), zoom_out)
    assert (face.image.max(-1) > 0).all() and (image.max(-1) > 0).all()  # nothing black was added
    black = cv2.warpAffine(face.image, matrix, (SIZE, SIZE), borderMode=cv2.BORDER_CONSTANT)
    assert (black.max(-1) == 0).mean() > 0.5  # (a constant border would have blacked out most of the photo)
    inverse = cv2.invertAffineTransform(matrix)
    for x, y in [(0, 0), (SIZE - 1, 3), (5, SIZE - 1), (SIZE // 2, 1)]:
        sx, sy = inverse @ [x, y, 1]
        assert not (0 <= sx <= SIZE - 1 and 0 <= sy <= SIZE - 1)  # the pixel comes from the padding
        rx, ry = (cv2.borderInterpolate(int(round(v)), SIZE, cv2.BORDER_REFLECT_101) for v in (sx, sy))
        assert label[y, x] == face.label[ry, rx]


def test_the_footprint_is_where_the_photo_itself_lands_and_the_set_carries_it(faces):
    face = faces[1]
    zoom_out = ReframedParams(scale_min=0.4, scale_max=0.4, max_shift=0.1, max_rotation=20)
    image, _, matrix = reframe(face.image, face.label, image_rng(0, 3), zoom_out)
    inside = footprint(matrix, SIZE)
    black = cv2.warpAffine(np.full_like(face.image, 200), matrix, (SIZE, SIZE), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT)
    assert np.array_equal(inside, black[..., 0] > 0)
    assert inside.mean() == pytest.approx(0.4**2, abs=0.02)  # the photo's square, shrunk to 0.4 of its side
    interior = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # edges blend bilinearly
    assert np.array_equal(image[interior], cv2.warpAffine(face.image, matrix, (SIZE, SIZE))[interior])
    zoom_in = ReframedParams(scale_min=1.5, scale_max=1.5, max_shift=0, max_rotation=10)
    assert footprint(reframe(face.image, face.label, image_rng(0, 0), zoom_in)[2], SIZE).all()

    images, labels = np.stack([f.image for f in faces[:4]]), np.stack([f.label for f in faces[:4]])
    reframed = reframed_set(images, labels, ReframedParams())
    assert reframed.footprints.shape == labels.shape and reframed.footprints.dtype == bool
    for matrix, inside in zip(reframed.matrices, reframed.footprints):
        assert np.array_equal(inside, footprint(matrix, SIZE))


# ------------------------------------------------------------------------------ scoring, whole photo and parse path
@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, faces):
    """An untrained tiny parser exported to ONNX at 128 px, and a framing measured on synthetic faces."""
    onnx = tiny_onnx_parser(tmp_path_factory.mktemp("models") / "parser.onnx", SIZE)
    return ParserModel(onnx, threads=1), measure_framing(np.stack([f.landmarks for f in faces]), SIZE)


def test_scores_are_full_reports_and_a_photo_without_a_face_is_all_background(faces, tiny_models):
    parser, framing = tiny_models
    settings = ReframedParams(min_face_size=24)
    images, labels = np.stack([f.image for f in faces[:3]]), np.stack([f.label for f in faces[:3]])
    reframed = reframed_set(images, labels, settings)
    scores, rows = score_reframed(reframed, parser, framing, settings, keep=2)
    assert scores["images"] == 3 and 0 <= scores["photos_with_face"] <= 3
    assert scores["faces_found"] >= scores["photos_with_face"]
    for name in ("whole_photo", "parse_path"):
        report = scores[name]
        assert {"pixel_accuracy", "mean_f1_fg", "mean_iou_fg", "mean_f1_all", "per_class"} <= set(report)
        assert sum(c["support"] for c in report["per_class"].values()) == reframed.footprints.sum()
    assert reframed.footprints.sum() < 3 * SIZE * SIZE  # the default zooms out the first of these photos
    padding = scores["padding_included"]
    assert set(padding) == {"foreground_share_in_padding", "whole_photo_f1_fg", "parse_path_f1_fg"}
    foreground = (labels := reframed.labels) > 0
    assert padding["foreground_share_in_padding"] == pytest.approx((foreground & ~reframed.footprints).sum() / foreground.sum())
    assert len(rows) == 2 and all(len(row) == 4 and all(t.shape == (SIZE, SIZE, 3) for t in row) for row in rows)

    wall = np.full((1, SIZE, SIZE, 3), 120, np.uint8)  # a wall, labelled as if a face filled its middle
    truth = np.zeros((1, SIZE, SIZE), np.uint8)
    truth[0, 32:96, 32:96] = FACE
    blank = ReframedSet(wall, truth, np.tile(np.eye(2, 3), (1, 1, 1)), np.arange(1), np.ones((1, SIZE, SIZE), bool))
    scores, rows = score_reframed(blank, parser, framing, settings, predict=lambda x: np.full(x.shape[:3], FACE), keep=1)
    assert scores["faces_found"] == 0 and scores["photos_with_face"] == 0
    path = scores["parse_path"]
    assert path["pixel_accuracy"] == pytest.approx(1 - 64 * 64 / SIZE**2)  # every pixel predicted background
    assert path["per_class"]["face"]["f1"] == 0 and path["per_class"]["background"]["support"] == SIZE**2 - 64 * 64
    assert path["mean_f1_fg"] == 0
    assert scores["whole_photo"]["pixel_accuracy"] == pytest.approx(64 * 64 / SIZE**2)  # ``predict`` is used as given
    assert np.array_equal(rows[0][3], wall[0]) and BACKGROUND == 0  # the parse-path overlay shows nothing


def test_the_padding_is_left_out_of_the_scores_and_reported_beside_them(tiny_models):
    parser, framing = tiny_models
    wall = np.full((1, SIZE, SIZE, 3), 120, np.uint8)
    truth = np.zeros((1, SIZE, SIZE), np.uint8)
    truth[0, :, :64] = FACE  # the left half shows a face (the photo itself), the right half is padding
    truth[0, 10:20, 70:80] = FACE  # with a mirrored copy of some face in it
    inside = np.zeros((1, SIZE, SIZE), bool)
    inside[0, :, :64] = True
    reframed = ReframedSet(wall, truth, np.tile(np.eye(2, 3), (1, 1, 1)), np.arange(1), inside)
    scores, rows = score_reframed(reframed, parser, framing, ReframedParams(), predict=lambda x: truth * (inside > 0),
                                  keep=1)
    assert scores["whole_photo"]["mean_f1_fg"] == 1  # the copy in the padding, missed, does not count
    assert scores["whole_photo"]["per_class"]["face"]["support"] == SIZE * 64
    padding = scores["padding_included"]
    assert padding["foreground_share_in_padding"] == pytest.approx(100 / (SIZE * 64 + 100))
    assert padding["whole_photo_f1_fg"] == pytest.approx(2 * SIZE * 64 / (2 * SIZE * 64 + 100))
    assert padding["parse_path_f1_fg"] == 0  # no face found on a wall: all background
    assert (rows[0][1][:, 64:] < wall[0, :, 64:]).all() and np.array_equal(rows[0][1][:, :64], overlay(wall[0], truth[0])[:, :64])
