"""The whole pipeline in a temporary git repository with tiny params, then one experiment.

It checks what a user relies on: `dvc repro` builds every output, and `dvc exp run -S loss=focal`
re-runs exactly train_parser, distill (the student learns from the re-trained parser, and the loss is its loss
too), deploy (new int8 copies and default), train_inpainter (its training guide is the parser's labels on the
masked photos) and benchmark (the mask finder never reads the parser).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from pipeline_project import make_project, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("project")
    env = make_project(root)
    run(["dvc", "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline"], root, env)
    return root, env


def test_repro_builds_every_output(project):
    root, _ = project
    for path in ("data/raw/synthetic/landmarks.json", "data/unified/manifest.csv", "data/cache/train_images.npy",
                 "data/masks/train_masks.npy", "models/parser.pt", "models/parser.onnx", "models/inpainter.pt",
                 "models/inpainter.onnx",
                 "metrics/parser.json", "metrics/inpainter.json", "metrics/plots/parser_confusion.png",
                 "metrics/plots/parser_samples.png", "metrics/plots/parser_reframed.png", "metrics/plots/inpainter_samples.png",
                 "metrics/train_parser/plots/metrics/train_loss.tsv", "metrics/plots/parser_training.png",
                 "metrics/plots/inpainter_training.png", "models/mask_finder.pt", "models/mask_finder.onnx",
                 "metrics/mask_finder.json", "metrics/train_mask_finder/plots/metrics/train_loss.tsv",
                 "models/student.pt", "models/student.onnx",
                 "models/parser_int8.onnx", "models/student_int8.onnx", "models/faceparse.onnx", "models/deploy.json",
                 "metrics/latency.json", "metrics/plots/latency_pareto.png", "metrics/distill/metrics.json"):
        assert (root / path).exists(), path
    parser = json.loads((root / "metrics/parser.json").read_text())
    assert set(parser["per_class"]) >= {"background", "lips", "beard"}
    assert parser["onnx_latency_ms"]["median"] > 0
    assert {"images", "faces_found", "whole_photo", "parse_path"} <= set(parser["reframed"])
    assert {"masked_photo_f1_fg", "clean_photo_f1_fg", "masked_photo", "clean_photo"} <= set(parser["masked"])
    assert parser["masked"]["images"] > 0 and parser["masked"]["pixels"] > 0
    finder = json.loads((root / "metrics/mask_finder.json").read_text())
    assert finder["masked_photos"] == parser["masked"]["images"] and 0 <= finder["iou"] <= 1
    inpainter = json.loads((root / "metrics/inpainter.json").read_text())
    assert {"inpainter", "telea", "navier_stokes", "parse_consistency", "identity_distance"} <= set(inpainter)
    assert list((root / "metrics/train_inpainter/plots/images/val_samples").glob("epoch_*.png"))
    latency = json.loads((root / "metrics/latency.json").read_text())
    for model in ("parser", "student"):
        for variant in ("torch_fp32", "ort_fp32", "ort_int8"):
            stats = latency[model]["variants"][variant]
            assert stats["threads_1"]["median_ms"] > 0 and stats["threads_2"]["p90_ms"] > 0
            assert 0 <= stats["test_f1_fg"] <= 1
    assert latency["default"] in ("student", "student_int8", "parser", "parser_int8")


def test_noop_repro_runs_nothing(project):
    root, env = project
    out = run(["dvc", "repro"], root, env)
    assert "Running stage" not in out


def test_loss_experiment_reruns_only_training_distillation_deploy_inpainter_and_benchmark(project):
    root, env = project
    out = run(["dvc", "exp", "run", "-S", "loss=focal"], root, env)
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    # the inpainter trains under the parser's labels on the masked photos (inpainter.parser_guide)
    assert ran == {"train_parser", "distill", "deploy", "train_inpainter", "benchmark"}, out[-3000:]
    show = run(["dvc", "exp", "show", "--no-pager", "--md"], root, env)
    assert "focal" in show
    diff = run(["dvc", "metrics", "diff", "--md"], root, env)
    assert "mean_f1_fg" in diff
    assert "student.variants.ort_fp32.threads_2.median_ms" in diff, diff


def test_queued_architecture_sweep_runs_and_compares(project):
    # two archs keep the queue's point (each run in its own copy, then compared) at half the training: regseg is the
    # baseline's own parser (restored from the run cache), and Unet runs through every unit test already
    root, env = project
    run(["dvc", "exp", "run", "--queue", "-S", "parser.arch=DeepLabV3Plus,regseg"], root, env)
    run(["dvc", "queue", "start", "-j", "1"], root, env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], root, env)
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(3)
    assert "Failed" not in status, status + run(["dvc", "queue", "logs", status.split()[-1]], root, env)
    assert status.count("Success") == 2, status
    show = run(["dvc", "exp", "show", "--no-pager", "--csv"], root, env)
    for arch in ("DeepLabV3Plus", "regseg"):
        assert arch in show, show
