"""A throwaway copy of the project, as a user's fresh clone: git + dvc, the stages, tiny params.

Shared by the e2e tests. They drive the pipeline only through ``dvc``, ``python -m stages.<name>`` and the
files the stages write, so they keep working while the stages' code changes.
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

# 48 synthetic faces at 64 px: every stage runs in seconds on two CPU cores.
TINY = {
    "data": {"synthetic": {"count": 48, "size": 64}},
    "remap": {"val_fraction": 0.15, "test_fraction": 0.2},
    "cache": {"size": 64},
    "masks": {"min_face_size": 8},
    "parser": {"epochs": 1, "batch_size": 8},
    "inpainter": {"epochs": 1, "batch_size": 8, "loss": {"ssim_kind": "ssim"}},
    "mask_finder": {"epochs": 1, "batch_size": 8, "widths": [8, 16], "input_size": 32, "dilation": 1},
    "benchmark": {"latency_runs": 3},
    "deploy": {"calibration_images": 4},
}


def merge(base: dict, override: dict) -> dict:
    """``override`` merged into ``base`` (in place), nested mappings key by key."""
    for key, value in override.items():
        base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def tiny_params(*overrides: dict) -> dict:
    """The repository's params.yaml with :data:`TINY` and then each of ``overrides`` merged in."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    for override in (TINY, *overrides):
        merge(params, copy.deepcopy(override))
    return params


def project_env(root: Path) -> dict:
    """The environment the stages and dvc run in: this interpreter's bin first, offline, no analytics."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(root), "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def run(args: list[str], cwd: Path, env: dict, timeout: float = 900) -> str:
    """Run a command to completion; fail with its output's tail unless it exits 0. Returns stdout + stderr."""
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed (exit status {proc.returncode}):\n{output[-4000:]}"
    return output


def write_params(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def make_project(root: Path, *overrides: dict, git: bool = True) -> dict:
    """Copy the stages, dvc.yaml and .dvcignore into ``root`` with tiny params; ``git``: also git and dvc init
    and commit (dvclive, like a user's clone, needs a commit). Returns the environment to run commands in."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO_ROOT / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, root / name)
    write_params(root, tiny_params(*overrides))
    env = project_env(root)
    if git:
        run(["git", "init", "-q"], root, env)
        run(["dvc", "init", "-q"], root, env)
        run(["git", "add", "-A"], root, env)
        run(["git", "commit", "-qm", "a fresh clone"], root, env)
    return env
