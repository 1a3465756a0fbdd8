import numpy as np
import pytest
import torch
from inpainting_fixtures import write_face_project, write_masked_project

from stages.core.common.classes import NUM_CLASSES
from stages.core.common.torch_utils import save_checkpoint
from stages.core.inpainting.evaluation import benchmark_inpainter, paired_mean_difference
from stages.core.inpainting.training import InpainterParams, export_inpainter_onnx, fit_inpainter
from stages.core.models.registry import build_parser

TINY = {"widths": [8, 8, 16, 16], "blocks": 1, "disc_widths": [8, 16], "batch_size": 4, "epochs": 2, "lr": 0.01,
        "loss": {"ssim_kind": "ssim"}, "sample_rows": 2, "parser_guide": 0.0}
PARSER = {"arch": "Unet", "encoder": "tu-mobilenetv3_small_050", "encoder_weights": None,
          "decoder_channels": [16, 16, 8, 8, 8]}


def _benchmark(root, masks_dir, cache_dir, size: int):
    cfg = InpainterParams.from_params(TINY)
    run = fit_inpainter(cfg, masks_dir, cache_dir)
    save_checkpoint(root / "inpainter.pt", {"state_dict": run.model.state_dict(), "config": cfg.as_dict()})
    export_inpainter_onnx(run.model, root / "inpainter.onnx", size)
    torch.manual_seed(0)
    save_checkpoint(root / "parser.pt", {"state_dict": build_parser(PARSER, NUM_CLASSES).state_dict(), "config": PARSER,
                                          "input_size": size})
    return benchmark_inpainter(root / "inpainter.pt", root / "inpainter.onnx", root / "parser.pt", masks_dir, cache_dir,
                               threads=1, latency_runs=3, sample_count=2)


@pytest.fixture(scope="module")
def benchmarked(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    return _benchmark(root, *write_masked_project(root), 64)


@pytest.fixture(scope="module")
def benchmarked_faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    return _benchmark(root, *write_face_project(root), 96)[0]


def test_identity_and_the_parser_s_perceptual_score_for_every_method(benchmarked_faces):
    metrics = benchmarked_faces
    methods = {"masked", "inpainter", "inpainter_true_labels", "telea", "navier_stokes"}
    assert metrics["identity_faces"] == metrics["test_images"] == 4  # placed by the masks stage's landmarks
    assert set(metrics["identity_distance"]) == methods and all(v > 0 for v in metrics["identity_distance"].values())
    for key in ("identity_inpainter_minus_telea", "identity_inpainter_minus_masked"):
        interval = metrics[key]
        assert interval["faces"] == 4 and interval["ci95_low"] <= interval["mean_difference"] <= interval["ci95_high"]
    expected = metrics["identity_distance"]["inpainter"] - metrics["identity_distance"]["masked"]
    assert metrics["identity_inpainter_minus_masked"]["mean_difference"] == pytest.approx(expected, abs=1e-6)
    distances = metrics["parser_feature_distance"]
    assert set(distances) == methods and all(0 < d < 2 for d in distances.values())
    assert metrics["parser_feature_inpainter_minus_telea"]["faces"] == 4


def test_every_method_is_scored_inside_the_mask_and_over_the_whole_photo(benchmarked):
    metrics, rows = benchmarked
    for method in ("inpainter", "inpainter_true_labels", "telea", "navier_stokes"):
        scores = metrics[method]
        assert set(scores) == {"psnr", "ssim", "l1", "psnr_whole", "ssim_whole"}
        # outside the mask every method keeps the photo, so the whole photo scores higher than the hole
        assert scores["psnr_whole"] > scores["psnr"]
    assert metrics["test_images"] == 6 and metrics["params"] > 0
    assert metrics["onnx_latency_ms"]["median"] > 0
    assert len(rows) == 2 and len(rows[0]) == 5


def test_parse_consistency_has_its_floor_and_ceiling(benchmarked):
    metrics, _ = benchmarked
    f1 = metrics["parse_consistency"]["f1_fg_in_mask"]
    assert set(f1) == {"clean", "masked", "guide", "inpainter", "inpainter_true_labels", "telea", "navier_stokes"}
    assert all(v is None or 0 <= v <= 1 for v in f1.values())


def test_identity_is_skipped_and_counted_without_landmarks(benchmarked):
    metrics, _ = benchmarked
    # the fixture's photos have no landmarks: no descriptor can be cut, and the count says so
    assert metrics["identity_faces"] == 0
    assert all(v is None for v in metrics["identity_distance"].values())
    assert metrics["identity_inpainter_minus_telea"] is None


def test_paired_difference_is_clearly_below_zero_only_when_its_interval_is():
    rng = np.random.default_rng(1)
    telea = rng.uniform(0.4, 0.6, 200)
    better = paired_mean_difference(telea - 0.02 + rng.normal(0, 0.05, 200), telea)
    assert better["ci95_low"] < better["mean_difference"] < better["ci95_high"] < 0 and better["clearly_below"]
    assert better["mean_difference"] == pytest.approx(-0.02, abs=0.01) and better["faces"] == 200
    same = paired_mean_difference(telea + rng.normal(0, 0.05, 200), telea)
    assert same["ci95_low"] < 0 < same["ci95_high"] and not same["clearly_below"]
    assert paired_mean_difference(telea - 0.02, telea) == paired_mean_difference(telea - 0.02, telea)  # seeded
    assert paired_mean_difference([0.5], [0.6]) is None


def test_face_descriptor_is_repeatable_and_moves_when_the_mouth_is_hidden():
    from masks_fixtures import astronaut_face

    from stages.core.inpainting.identity import descriptor_distance, face_descriptor

    image, landmarks = astronaut_face()
    reference = face_descriptor(image, landmarks)
    assert reference.shape == (128,)
    assert descriptor_distance(face_descriptor(image, landmarks), reference) == pytest.approx(0, abs=1e-5)
    damaged = image.copy()
    lower = landmarks[48:68]
    x0, y0 = lower.min(0).astype(int) - 10
    x1, y1 = lower.max(0).astype(int) + 10
    damaged[y0:y1, x0:x1] = 128
    assert descriptor_distance(face_descriptor(damaged, landmarks), reference) > 0.05
    assert np.isfinite(reference).all()


def test_identity_distances_leave_out_the_same_faces_for_every_method():
    from masks_fixtures import astronaut_face

    from stages.core.inpainting.evaluation import identity_distances

    image, landmarks = astronaut_face()
    clean = np.stack([image, image, image])
    hidden = clean.copy()
    x0, y0 = landmarks[48:68].min(0).astype(int) - 10
    x1, y1 = landmarks[48:68].max(0).astype(int) + 10
    hidden[:, y0:y1, x0:x1] = 128
    points = np.stack([landmarks, np.full_like(landmarks, np.nan), landmarks])
    distances = identity_distances({"clean": clean, "hidden": hidden}, clean, points)
    assert len(distances["clean"]) == len(distances["hidden"]) == 2  # the face without landmarks is left out of both
    assert distances["clean"] == pytest.approx([0, 0], abs=1e-5)
    assert min(distances["hidden"]) > 0.05
