import hashlib

import numpy as np

from stages.core.common import classes as C
from stages.core.data.datasets.synthetic import SyntheticAdapter
from stages.core.data.synthetic_faces import face_rng, generate_dataset, render_face


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_byte_identical_files(tmp_path):
    generate_dataset(tmp_path / "a", count=6, size=96, seed=3, progress=False)
    generate_dataset(tmp_path / "b", count=6, size=96, seed=3, progress=False)
    generate_dataset(tmp_path / "c", count=6, size=96, seed=4, progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_a_face_does_not_depend_on_how_many_are_made():
    a = render_face(face_rng(0, 5), 96)
    b = render_face(face_rng(0, 5), 96)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)


def test_every_class_appears_and_faces_vary():
    faces = [render_face(face_rng(0, i), 128) for i in range(60)]
    present = np.zeros(C.NUM_CLASSES, bool)
    for face in faces:
        present[np.unique(face.label)] = True
    assert present.all(), [C.CLASS_NAMES[i] for i in np.flatnonzero(~present)]
    attrs = [f.attributes for f in faces]
    assert {a["hair_style"] for a in attrs} >= {"short", "long"}
    assert any(a["mouth_open"] for a in attrs) and not all(a["mouth_open"] for a in attrs)
    assert any(a["ears_hidden"] for a in attrs) and not all(a["ears_hidden"] for a in attrs)
    assert np.ptp([a["yaw_deg"] for a in attrs]) > 20
    assert len({a["skin"] for a in attrs}) >= 4


def test_landmarks_sit_on_their_parts():
    hits = {"eyes": 0, "lips": 0, "nose": 0}
    n = 30
    for i in range(n):
        face = render_face(face_rng(1, i), 160)
        lm = face.landmarks
        assert lm.shape == (68, 2) and np.isfinite(lm).all()

        def label_at(idx, face=face):
            x, y = np.round(face.landmarks[idx]).astype(int)
            return face.label[np.clip(y, 0, 159), np.clip(x, 0, 159)]

        eye_centre = lm[36:42].mean(axis=0).round().astype(int)
        hits["eyes"] += face.label[eye_centre[1], eye_centre[0]] in (C.EYES, C.GLASSES)
        hits["lips"] += label_at(57) in (C.LIPS, C.TEETH)
        hits["nose"] += label_at(30) == C.NOSE
        # iBUG order: the jaw runs from the image's left (0) to its right (16) through the chin (8)
        assert lm[8, 1] > lm[30, 1] > lm[27, 1]
    # occluders may hide a part; most faces must be exact
    assert all(v >= 0.8 * n for v in hits.values()), hits


def test_adapter_reads_what_the_generator_wrote(tmp_path):
    generate_dataset(tmp_path, count=3, size=64, seed=0, progress=False)
    adapter = SyntheticAdapter(tmp_path)
    items = adapter.items()
    assert [i.item_id for i in items] == ["00000", "00001", "00002"]
    image, label = adapter.read_image(items[1]), adapter.read_label(items[1])
    assert image.shape == (64, 64, 3) and label.shape == (64, 64) and label.dtype == np.uint8
    np.testing.assert_array_equal(label, render_face(face_rng(0, 1), 64).label)
    np.testing.assert_allclose(adapter.read_landmarks(items[1]), render_face(face_rng(0, 1), 64).landmarks, atol=1e-3)
