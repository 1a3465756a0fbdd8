import numpy as np
import pytest

from stages.core.common import classes as C


def test_scheme_ids_and_names_match_the_spec():
    assert C.CLASS_NAMES == ("background", "lips", "eyes", "nose", "hair", "eyebrows", "teeth", "face", "ears",
                             "glasses", "beard")
    assert C.NUM_CLASSES == 11
    assert (C.BACKGROUND, C.LIPS, C.EYES, C.NOSE, C.HAIR, C.EYEBROWS, C.TEETH, C.FACE, C.EARS, C.GLASSES,
            C.BEARD) == tuple(range(11))
    assert C.FOREGROUND_IDS == tuple(range(1, 11))


def test_colours_are_distinct_and_follow_the_mut1ny_code():
    assert len({tuple(c) for c in C.CLASS_COLOURS}) == C.NUM_CLASSES
    assert tuple(C.CLASS_COLOURS[C.FACE]) == (128, 128, 128)
    assert tuple(C.CLASS_COLOURS[C.BEARD]) == (255, 192, 192)
    assert tuple(C.CLASS_COLOURS[C.GLASSES]) == (0, 128, 128)


def test_colour_round_trip():
    rng = np.random.default_rng(0)
    label = rng.integers(0, C.NUM_CLASSES, (17, 23)).astype(np.uint8)
    colour = C.index_to_colour(label)
    assert colour.shape == (17, 23, 3)
    np.testing.assert_array_equal(C.colour_to_index(colour), label)


def test_colour_to_index_rejects_off_palette_colours():
    colour = C.index_to_colour(np.zeros((4, 4), np.uint8))
    colour[1, 2] = (10, 20, 30)
    with pytest.raises(ValueError, match=r"\(10, 20, 30\)"):
        C.colour_to_index(colour)


def test_index_to_colour_rejects_unknown_ids():
    with pytest.raises(ValueError, match="11"):
        C.index_to_colour(np.array([[11]], np.uint8))


def test_class_id_names_the_valid_classes():
    assert C.class_id("beard") == 10
    with pytest.raises(KeyError, match="background"):
        C.class_id("moustache")


def test_overlay_keeps_background_pixels():
    image = np.full((2, 2, 3), 100, np.uint8)
    label = np.array([[0, C.LIPS], [0, 0]], np.uint8)
    out = C.overlay(image, label, alpha=0.5)
    assert (out[0, 0] == 100).all()
    assert tuple(out[0, 1]) == (178, 50, 50)
