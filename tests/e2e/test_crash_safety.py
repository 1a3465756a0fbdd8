"""Crash safety and repeatability: a stage killed at any point never leaves an output that passes for valid.

One tiny project is built once without interruption (the reference). Then each stage in turn is re-run with
``dvc repro --force --single-item <stage>`` and SIGKILLed, with all its processes, in the middle of its
work; ``dvc repro`` must then bring back exactly the reference's outputs (see crash_tools for what "exactly"
means where outputs embed wall-clock times). A data stage run again after its kill must also clear away
the temporary files the kill left in data/. No flag and no manual
cleanup is needed after a kill: DVC drops the dead process from ``.dvc/tmp/rwlock`` by itself (with a
warning), and the kernel releases ``.dvc/tmp/lock``. One exception, DVC's own: when the kill lands while dvc
rewrites ``.dvc/tmp/rwlock`` the file is left empty, and every dvc command refuses to run until it is
deleted (crash_tools.repair_rwlock does what the user would, and the test warns).

Also: a parser training killed after its first epoch resumes from models/parser_last.pt to the same
weights, and a second project built from scratch with the same params gives the same metrics.
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from crash_tools import (
    any_file,
    assert_same_outputs,
    assert_same_tree,
    leftovers,
    load_checkpoint,
    metrics,
    repair_rwlock,
    run_and_kill,
    signature,
    timed_content,
    without_timings,
)
from pipeline_project import make_project, run, tiny_params, write_params

pytestmark = pytest.mark.e2e

# two epochs each, so that a training stage can be caught between its first and its last epoch
CRASH = {"parser": {"epochs": 2}, "inpainter": {"epochs": 2}}

UP_TO_DATE = "Data and pipelines are up to date."


def _changed(root: Path, rel: str, before: dict) -> bool:
    sig = signature(root / rel)
    return sig is not None and sig != before[rel]


# What "in the middle of its work" means for each stage, judged from the files on disk while it is stopped.
# Data stages: part of the output is written in the temporary folder beside the final one. Training: the
# first epoch is logged (or checkpointed) and the run goes on. benchmark: the parser is scored, the
# inpainter not yet.
MID_WORK = {
    "download@synthetic": lambda root, before: any_file(root, "data/raw/.synthetic.*/**/*"),
    "remap": lambda root, before: any_file(root, "data/.unified.*/**/*"),
    "cache": lambda root, before: any_file(root, "data/.cache.*/*"),
    "masks": lambda root, before: any_file(root, "data/.masks.*/**/*", "data/masks/.*/*"),
    "train_parser": lambda root, before: _changed(root, "models/parser_last.pt", before),
    "train_inpainter": lambda root, before: _changed(root, "metrics/train_inpainter/plots/metrics/train_loss.tsv",
                                                     before),
    "benchmark": lambda root, before: (_changed(root, "metrics/parser.json", before)
                                       and not _changed(root, "metrics/inpainter.json", before)),
}
DATA_STAGES = ("download@synthetic", "remap", "cache", "masks")
WATCHED = ("models/parser_last.pt", "metrics/train_inpainter/plots/metrics/train_loss.tsv", "metrics/parser.json",
           "metrics/inpainter.json")


def kill_mid_stage(root: Path, env: dict, args: list[str], stage: str, attempts: int = 3):
    """Run ``args`` and SIGKILL it while ``stage`` is mid-work; retried when the stage slipped through."""
    module = "stages." + stage.split("@")[0]
    tries = []
    for _ in range(attempts):
        before = {rel: signature(root / rel) for rel in WATCHED}
        kill = run_and_kill(args, root, env, module, lambda before=before: MID_WORK[stage](root, before))
        if repair_rwlock(root, env):
            warnings.warn(f"killing {stage} left .dvc/tmp/rwlock unreadable; deleted it, as a user would", stacklevel=2)
        if kill.killed:
            assert kill.returncode == -9, kill.log[-3000:]
            return kill
        tries.append(f"{kill.why} (exit status {kill.returncode}):\n{kill.log[-1500:]}")
    pytest.fail(f"{stage} was never caught in the middle of its work:\n" + "\n".join(tries))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict]:
    """A tiny project built by one uninterrupted ``dvc repro``."""
    root = tmp_path_factory.mktemp("reference")
    env = make_project(root, CRASH)
    run(["dvc", "repro"], root, env)
    assert leftovers(root) == []
    return root, env


@pytest.fixture(scope="module")
def crashed(tmp_path_factory, reference) -> tuple[Path, dict]:
    """A second copy of the reference's workspace to kill stages in."""
    root = tmp_path_factory.mktemp("crashed")
    shutil.copytree(reference[0], root, dirs_exist_ok=True, symlinks=True)
    env = dict(reference[1], PYTHONPATH=str(root))
    assert UP_TO_DATE in run(["dvc", "status"], root, env)
    return root, env


@pytest.mark.parametrize("stage", list(MID_WORK))
def test_stage_killed_midway_is_rebuilt_identically(crashed, reference, stage):
    root, env = crashed
    kill_mid_stage(root, env, ["dvc", "repro", "--force", "--single-item", stage], stage)

    # whatever the kill left behind, DVC does not take it for a built stage
    status = run(["dvc", "status", stage], root, env)
    assert UP_TO_DATE not in status and stage in status, status

    out = run(["dvc", "repro"], root, env)  # what a user does next; no flag, no cleanup
    # The kill left dvc.lock as it was, so DVC either re-runs the stage or restores its last complete
    # outputs from its cache (a killed `--force` run: the lock still matches); never what the kill left.
    assert f"Running stage '{stage}'" in out or f"Stage '{stage}' is cached" in out, out[-3000:]
    assert UP_TO_DATE in run(["dvc", "status"], root, env)
    assert_same_outputs(root, reference[0])
    if stage in DATA_STAGES:
        # the stage's own code run over what the kill left beside its output: it clears it away
        run(["dvc", "repro", "--force", "--single-item", stage], root, env)
        assert leftovers(root) == [], "temporary files of the killed run left in data/"
        assert UP_TO_DATE in run(["dvc", "status"], root, env)
        assert_same_outputs(root, reference[0])


@pytest.fixture(scope="module")
def resumed(reference, tmp_path_factory) -> tuple[Path, dict]:
    """Stage level: ``python -m stages.train_parser`` killed in epoch 2 of 2, then resumed from parser_last.pt.

    Returns the project and the checkpoint the kill left."""
    ref_root, _ = reference
    root = tmp_path_factory.mktemp("resumed")
    env = make_project(root, CRASH)
    for rel in ("data/cache", "data/unified", "data/masks"):  # masks: the masked-photo augmentation
        shutil.copytree(ref_root / rel, root / rel)
    args = ["python", "-m", "stages.train_parser"]
    before = {"models/parser_last.pt": None}
    kill = run_and_kill(args, root, env, "stages.train_parser",
                        lambda: _changed(root, "models/parser_last.pt", before))
    assert kill.killed, kill.log[-3000:]
    assert not (root / "models/parser.pt").exists(), "killed before the end, yet a final checkpoint exists"
    last = load_checkpoint(root / "models/parser_last.pt")
    assert last["epoch"] == 1, f"the kill came after epoch {last['epoch']}, not during epoch 2"
    write_params(root, tiny_params(CRASH, {"parser": {"resume": "models/parser_last.pt"}}))
    run(args, root, env)
    return root, last


def test_killed_parser_training_resumes_to_the_same_weights(reference, resumed):
    root, last = resumed
    resumed_ck, uninterrupted = load_checkpoint(root / "models/parser.pt"), load_checkpoint(reference[0] / "models/parser.pt")
    assert resumed_ck["state_dict"].keys() == uninterrupted["state_dict"].keys()
    for name, tensor in uninterrupted["state_dict"].items():
        assert torch.equal(resumed_ck["state_dict"][name], tensor), f"{name} differs after resuming"
    # epoch 1 came from the checkpoint (its measured time included), not from training again
    assert resumed_ck["history"][0] == last["history"][0]
    assert_same_tree(without_timings(resumed_ck["history"]), without_timings(uninterrupted["history"]), "history")
    assert_same_tree(without_timings(resumed_ck["best"]), without_timings(uninterrupted["best"]), "best")


def test_resumed_parser_training_logs_every_epoch(reference, resumed):
    root, _ = resumed
    rel = "metrics/train_parser/plots/metrics"
    assert_same_tree(timed_content(root, rel), timed_content(reference[0], rel), rel)
    rel = "metrics/train_parser/metrics.json"
    assert (without_timings(json.loads((root / rel).read_text()))
            == without_timings(json.loads((reference[0] / rel).read_text())))


def test_same_params_and_seed_give_the_same_metrics(reference, tmp_path):
    """A second project built from scratch with the same params: same metrics (timings aside), same outputs."""
    ref_root, _ = reference
    root = tmp_path / "again"
    env = make_project(root, CRASH)
    run(["dvc", "repro"], root, env)
    expected = metrics(ref_root)
    assert {"metrics/parser.json", "metrics/inpainter.json", "metrics/train_parser/metrics.json"} <= set(expected)
    assert metrics(root) == expected
    assert_same_outputs(root, ref_root)
    assert yaml.safe_load((root / "params.yaml").read_text()) == yaml.safe_load((ref_root / "params.yaml").read_text())
