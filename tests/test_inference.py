"""The photo path of `faceparse`: framing measured from landmarks, alignment, paste-back, faces, the batch and the CLI."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from inference_fixtures import tiny_onnx_parser
from masks_fixtures import astronaut_face
from PIL import Image

from stages import cli
from stages.core.common.classes import NUM_CLASSES
from stages.core.data.synthetic_faces import face_rng, render_face
from stages.core.inference.alignment import (
    UPPER_FACE,
    Framing,
    alignment_matrix,
    measure_framing,
    paste_back,
    warp_into_framing,
)
from stages.core.inference.batch import expand_inputs, output_stems
from stages.core.inference.faces import find_faces
from stages.core.inference.parsing import ParserModel, combine_faces

SIZE = 128


@pytest.fixture(scope="module")
def faces():
    return [render_face(face_rng(3, i), SIZE) for i in range(12)]


@pytest.fixture(scope="module")
def framing(faces):
    return measure_framing(np.stack([f.landmarks for f in faces]), SIZE)


def one_hot(label: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[label]


def place(image: np.ndarray, angle: float, scale: float, shift: tuple[float, float], shape=(300, 400)):
    """The face ``image`` rotated, scaled and moved into a bigger photo; returns the photo and the (2, 3) matrix."""
    matrix = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), angle, scale)
    matrix[:, 2] += shift
    photo = cv2.warpAffine(image, matrix, (shape[1], shape[0]), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    return photo, matrix


def test_framing_is_measured_from_the_landmarks_not_assumed(faces, framing):
    points = np.stack([f.landmarks for f in faces])
    assert framing.faces == len(faces) and framing.template.shape == (68, 2)
    assert np.allclose(framing.template.mean(0), np.median(points.mean(1), 0), atol=1.0)
    moved = measure_framing(points * 0.5 + 10, SIZE)  # smaller faces further up-left give a smaller template
    assert np.allclose(moved.template, framing.template * 0.5 + 10, atol=0.5)
    with pytest.raises(ValueError, match="no training face has landmarks"):
        measure_framing(np.full((3, 68, 2), np.nan), SIZE)


def test_framing_round_trips_and_scales(tmp_path, framing):
    framing.save(tmp_path / "framing.json")
    loaded = Framing.load(tmp_path / "framing.json")
    assert np.allclose(loaded.template, framing.template, atol=1e-3) and loaded.size == SIZE
    assert np.allclose(loaded.scaled_to(256).template, framing.template * 2, atol=1e-2)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json: not a framing file"):
        Framing.load(tmp_path / "bad.json")


@pytest.mark.parametrize(("angle", "scale", "shift"), [(0, 1.0, (40, 30)), (25, 1.6, (150, 10)), (-30, 0.7, (200, 120))])
def test_alignment_undoes_the_photo_transform(faces, framing, angle, scale, shift):
    face = faces[0]
    _, matrix = place(face.image, angle, scale, shift)
    moved = cv2.transform(face.landmarks[None].astype(np.float64), matrix)[0]
    aligned = cv2.transform(moved[None], alignment_matrix(moved, framing))[0]
    straight = cv2.transform(face.landmarks[None].astype(np.float64), alignment_matrix(face.landmarks, framing))[0]
    assert np.abs(aligned - straight).max() < 0.05  # the framing does not depend on where the face was


def test_the_upper_face_fit_ignores_guessed_jaw_and_mouth_points(faces, framing):
    """Under a mask dlib guesses the jaw, lower nose and mouth: the fit to the visible points is not moved by them."""
    face = faces[0]
    _, matrix = place(face.image, 15, 1.3, (60, 40))
    moved = cv2.transform(face.landmarks[None].astype(np.float64), matrix)[0]
    guessed = moved.copy()
    lower = np.setdiff1d(np.arange(68), UPPER_FACE)
    guessed[lower] += np.array([0.0, 25.0])  # the whole lower face guessed 25 px too low
    upper = alignment_matrix(guessed, framing, UPPER_FACE)
    assert np.abs(upper - alignment_matrix(moved, framing, UPPER_FACE)).max() < 1e-3
    # all 68 points inherit the guess: the crop moves by pixels
    assert np.abs(alignment_matrix(guessed, framing) - alignment_matrix(moved, framing))[:, 2].max() > 1.0


@pytest.mark.parametrize(("angle", "scale", "shift"), [(0, 1.0, (40, 30)), (20, 1.5, (150, 10)), (-30, 0.8, (200, 120))])
def test_paste_back_returns_the_label_warped_forward_and_back(faces, framing, angle, scale, shift):
    face = faces[1]
    photo_label, matrix = place(face.label, angle, scale, shift)
    landmarks = cv2.transform(face.landmarks[None].astype(np.float64), matrix)[0]
    align = alignment_matrix(landmarks, framing)
    crop = warp_into_framing(np.repeat(photo_label[..., None], 3, -1), align, SIZE)[..., 0]
    probs, coverage = paste_back(one_hot(crop), align, photo_label.shape)
    merged, winner = combine_faces([(probs, coverage)], photo_label.shape)
    assert np.allclose(merged.sum(-1), 1, atol=1e-4)
    inside = coverage >= 0.999
    back = merged.argmax(-1)
    # Two resamplings move class borders by up to about a pixel of the coarser grid; away from borders, nothing.
    borders = cv2.morphologyEx(photo_label, cv2.MORPH_GRADIENT, np.ones((3, 3))) > 0
    reach = int(np.ceil(max(1.0, 1 / scale))) * 2 + 1
    near = cv2.dilate(borders.astype(np.uint8), np.ones((reach, reach))) > 0
    assert (back[inside & ~near] == photo_label[inside & ~near]).mean() > 0.999
    assert (back[inside] == photo_label[inside]).mean() > 0.9
    assert (winner[~(coverage > 0)] == -1).all() and (back[coverage == 0] == 0).all()


def test_overlapping_faces_go_to_the_more_confident():
    sure, unsure = np.zeros((4, 4, NUM_CLASSES), np.float32), np.zeros((4, 4, NUM_CLASSES), np.float32)
    sure[..., 4], unsure[..., 7] = 0.9, 0.6
    sure[..., 0], unsure[..., 0] = 0.1, 0.4
    full, half = np.ones((4, 4), np.float32), np.zeros((4, 4), np.float32)
    half[:, :2] = 1
    merged, winner = combine_faces([(unsure * full[..., None], full), (sure * half[..., None], half)], (4, 4))
    assert (winner[:, :2] == 1).all() and (winner[:, 2:] == 0).all()
    assert (merged.argmax(-1)[:, :2] == 4).all() and (merged.argmax(-1)[:, 2:] == 7).all()


def test_dlib_finds_the_astronaut_and_sets_small_faces_aside():
    image, _ = astronaut_face()
    found = find_faces(image, min_face_size=40, detector="hog")
    assert len(found.faces) == 1 and found.faces[0].landmarks.shape == (68, 2)
    small = cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA)
    padded = cv2.copyMakeBorder(small, 100, 100, 100, 100, cv2.BORDER_REPLICATE)
    assert find_faces(padded, min_face_size=200, detector="hog+cnn").faces == []


def test_inputs_expand_folders_globs_and_name_what_is_missing(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.jpg", "a/y.png", "a/.hidden", "b.jpg", "c/x.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    paths, missing = expand_inputs([str(tmp_path / "a"), str(tmp_path / "*.jpg"), str(tmp_path / "c/x.jpg"),
                                    str(tmp_path / "a/x.jpg"), str(tmp_path / "nothing*.png")])
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["a/x.jpg", "a/y.png", "b.jpg", "c/x.jpg"]
    assert len(missing) == 1 and "nothing*.png: no such file" in missing[0].error
    assert output_stems(paths) == ["x", "y", "b", "x-2"]


# ------------------------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, framing):
    """An untrained tiny parser exported to ONNX at 128 px, and a framing measured on synthetic faces."""
    root = tmp_path_factory.mktemp("models")
    tiny_onnx_parser(root / "parser.onnx", SIZE)
    framing.save(root / "framing.json")
    return root


def test_onnx_parser_gives_probabilities(tiny_models):
    model = ParserModel(tiny_models / "parser.onnx", threads=1)
    probs = model.probabilities(np.zeros((2, SIZE, SIZE, 3), np.uint8))
    assert model.size == SIZE and probs.shape == (2, SIZE, SIZE, NUM_CLASSES)
    assert np.allclose(probs.sum(-1), 1, atol=1e-5)


def test_mirror_averaged_labels_follow_the_photo_when_it_is_mirrored(tiny_models):
    model = ParserModel(tiny_models / "parser.onnx", threads=1)
    crops = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    labels = model.mirror_averaged_labels(crops)
    assert labels.shape == (2, SIZE, SIZE) and labels.dtype == np.uint8
    assert np.array_equal(model.mirror_averaged_labels(crops[:, :, ::-1])[:, :, ::-1], labels)
    plain = model.labels(crops)  # the untrained parser alone is not mirror-equivariant, so the check above can fail
    assert not np.array_equal(model.labels(np.ascontiguousarray(crops[:, :, ::-1]))[:, :, ::-1], plain)


def test_cli_goes_on_past_bad_photos_and_reports_each(tmp_path, tiny_models, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    image, _ = astronaut_face()
    Image.fromarray(image).save(photos / "astronaut.png")
    Image.fromarray(image[:, :, ::-1]).convert("RGBA").save(photos / "astronaut_rgba.webp")
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    (photos / "notes.txt").write_text("not a photo")
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(photos / "wall.jpg")
    out = tmp_path / "out"
    code = cli.main(["parse", str(photos), "-o", str(out), "--model", str(tiny_models / "parser.onnx"),
                     "--framing", str(tiny_models / "framing.json"), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_SOME_FAILED
    for name in ("corrupt.jpg", "notes.txt", "wall.jpg"):
        assert sum(name in line for line in err.splitlines()) == 1, err
    assert "wall.jpg: no usable face" in err
    for stem in ("astronaut", "astronaut_rgba"):
        labels = np.asarray(Image.open(out / f"{stem}.labels.png"))
        assert labels.shape == image.shape[:2] and labels.max() < NUM_CLASSES
        summary = json.loads((out / f"{stem}.json").read_text())
        assert len(summary["faces"]) == 1 and sum(summary["faces"][0]["class_pixels"].values()) > 0
        assert Image.open(out / f"{stem}.overlay.png").size == image.shape[1::-1]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(("corrupt", "notes", "wall"))) == []


def test_cli_enhance_writes_the_edit_and_the_comparison(tmp_path, tiny_models):
    image, _ = astronaut_face()
    Image.fromarray(image).save(tmp_path / "face.png")
    out = tmp_path / "out"
    args = ["enhance", str(tmp_path / "face.png"), "-o", str(out), "--model", str(tiny_models / "parser.onnx"),
            "--framing", str(tiny_models / "framing.json"), "--params", str(tmp_path / "absent.yaml"), "--compare"]
    assert cli.main(args) == cli.EXIT_OK
    assert np.asarray(Image.open(out / "face.enhanced.png")).shape == image.shape
    assert np.asarray(Image.open(out / "face.compare.png")).shape[1] > 2 * image.shape[1]
    off = ["--" + name.replace("_", "-") for name in ("skin_smoothing", "hair_recolour", "eyebrow_darkening",
                                                       "eye_brightening", "lip_tint", "teeth_whitening")]
    assert cli.main([*args[:3], str(tmp_path / "same"), *args[4:], *[a for o in off for a in (o, "0")]]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "same" / "face.enhanced.png")), image)


def test_cli_names_a_missing_model_and_exits_2(tmp_path, capsys):
    assert cli.main(["parse", str(tmp_path), "--model", str(tmp_path / "nope.onnx")]) == cli.EXIT_USAGE
    assert "nope.onnx: parser model not found" in capsys.readouterr().err


def test_cli_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    assert "parse" in capsys.readouterr().out


def test_one_pass_gives_the_plain_and_the_mirror_averaged_labels(tiny_models):
    model = ParserModel(tiny_models / "parser.onnx", threads=1)
    crops = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    plain, mirror_averaged = model.labels_and_mirror_averaged(crops)
    assert np.array_equal(plain, model.labels(crops))
    assert np.array_equal(mirror_averaged, model.mirror_averaged_labels(crops))
    assert not np.array_equal(plain, mirror_averaged)


def test_mirror_averaged_labels_are_the_same_in_any_batching_and_read_a_memory_map(tiny_models, tmp_path):
    model = ParserModel(tiny_models / "parser.onnx", threads=1)
    crops = np.random.default_rng(2).integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    np.save(tmp_path / "crops.npy", crops)
    one_call = model.labels_and_mirror_averaged(crops, batch=5)
    for batch in (1, 2):
        batched = model.labels_and_mirror_averaged(np.load(tmp_path / "crops.npy", mmap_mode="r"), batch=batch)
        assert all(np.array_equal(a, b) for a, b in zip(batched, one_call))
    assert np.array_equal(one_call[0], np.concatenate([model.labels(crops[i:i + 1]) for i in range(5)]))
    empty = model.mirror_averaged_labels(crops[:0])
    assert empty.shape == (0, SIZE, SIZE) and empty.dtype == np.uint8
