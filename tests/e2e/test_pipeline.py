"""The whole pipeline in a temporary git repository with tiny params, then one experiment.

It checks what a user relies on: `dvc repro` builds every output, and `dvc exp run -S loss=focal`
re-runs exactly train_parser and benchmark.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e

TINY = {
    "data": {"synthetic": {"count": 48, "size": 64}},
    "remap": {"val_fraction": 0.15, "test_fraction": 0.2},
    "cache": {"size": 64},
    "masks": {"min_face_size": 8},
    "parser": {"epochs": 1, "batch_size": 8},
    "inpainter": {"epochs": 1, "batch_size": 8},
    "benchmark": {"latency_runs": 3},
}


def _merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        base[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def _run(args: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO_ROOT / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, root / name)
    params = _merge(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()), TINY)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(root), "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    _run(["git", "init", "-q"], root, env)
    _run(["dvc", "init", "-q"], root, env)
    _run(["git", "add", "-A"], root, env)
    _run(["git", "commit", "-qm", "a fresh clone"], root, env)  # dvclive, like a user's clone, needs a commit
    _run(["dvc", "repro"], root, env)
    _run(["git", "add", "-A"], root, env)
    _run(["git", "commit", "-qm", "baseline"], root, env)
    return root, env


def test_repro_builds_every_output(project):
    root, _ = project
    for path in ("data/raw/synthetic/landmarks.json", "data/unified/manifest.csv", "data/cache/train_images.npy",
                 "data/masks/train_masks.npy", "models/parser.pt", "models/parser.onnx", "models/inpainter.pt",
                 "metrics/parser.json", "metrics/inpainter.json", "metrics/plots/parser_confusion.png",
                 "metrics/plots/parser_samples.png", "metrics/plots/parser_reframed.png", "metrics/plots/inpainter_samples.png",
                 "metrics/train_parser/plots/metrics/train_loss.tsv", "metrics/plots/parser_training.png",
                 "metrics/plots/inpainter_training.png"):
        assert (root / path).exists(), path
    parser = json.loads((root / "metrics/parser.json").read_text())
    assert set(parser["per_class"]) >= {"background", "lips", "beard"}
    assert parser["onnx_latency_ms"]["median"] > 0
    assert {"images", "faces_found", "whole_photo", "parse_path"} <= set(parser["reframed"])
    inpainter = json.loads((root / "metrics/inpainter.json").read_text())
    assert {"inpainter", "telea"} <= set(inpainter)


def test_noop_repro_runs_nothing(project):
    root, env = project
    out = _run(["dvc", "repro"], root, env)
    assert "Running stage" not in out


def test_loss_experiment_reruns_only_training_and_benchmark(project):
    root, env = project
    out = _run(["dvc", "exp", "run", "-S", "loss=focal"], root, env)
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == {"train_parser", "benchmark"}, out[-3000:]
    show = _run(["dvc", "exp", "show", "--no-pager", "--md"], root, env)
    assert "focal" in show
    diff = _run(["dvc", "metrics", "diff", "--md"], root, env)
    assert "mean_f1_fg" in diff


def test_queued_architecture_sweep_runs_and_compares(project):
    root, env = project
    _run(["dvc", "exp", "run", "--queue", "-S", "parser.arch=Unet,DeepLabV3Plus,regseg"], root, env)
    _run(["dvc", "queue", "start", "-j", "1"], root, env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = _run(["dvc", "queue", "status"], root, env)
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(3)
    assert "Failed" not in status, status + _run(["dvc", "queue", "logs", status.split()[-1]], root, env)
    assert status.count("Success") == 3, status
    show = _run(["dvc", "exp", "show", "--no-pager", "--csv"], root, env)
    for arch in ("Unet", "DeepLabV3Plus", "regseg"):
        assert arch in show, show
