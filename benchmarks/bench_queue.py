"""A 2-job DVC queue sweep against the same 2 experiments run one after the other, on this machine's cores.

Usage: ``.venv/bin/python benchmarks/bench_queue.py [--project /work/main] [--threads-per-job 1] [--oversubscribed]``

Builds a throwaway repository from ``--project``'s built outputs (the default synthetic pipeline) with this
checkout's code (see ``bench_remote.copy_built_project``). Each experiment is ``dvc exp run train_parser`` with
small settings (1 epoch on 160 training images, 40 val images), so that it re-runs that stage only. Timing each:

1. sequential: ``dvc exp run train_parser -S parser.lr=<a>`` and then ``<b>``, each with the whole machine
   (``FACEPARSE_THREADS`` = cores);
2. queue: both queued, ``FACEPARSE_THREADS=<threads-per-job> dvc queue start -j 2``, until both succeed;
3. with ``--oversubscribed``, the same queue without a budget (each job takes ``parser.threads`` = 2 threads).

Prints the wall times and the torch threads each queued job reported in its log.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from bench_remote import copy_built_project, sh

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["-S", "parser.epochs=1", "-S", "parser.train_limit=160", "-S", "parser.val_limit=40"]
LRS = ("0.003", "0.002")


def wait_for_queue(root: Path, env: dict, jobs: int, timeout: float = 3600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = sh(["dvc", "queue", "status"], root, env)
        if not re.search(r"\b(Queued|Running)\b", status):
            return status
        time.sleep(2)
    sys.exit(f"queue did not finish in {timeout} s:\n{status}")


def queued_sweep(root: Path, env: dict, label: str, seed: int) -> float:
    """Queue both experiments with ``parser.seed`` = ``seed`` (a seed no earlier phase used, so that DVC's run
    cache cannot restore a result instead of training) and time ``dvc queue start -j 2`` until both end."""
    for lr in LRS:
        sh(["dvc", "exp", "run", "train_parser", "--queue", "-n", f"{label}-lr{lr}", *SMALL, "-S", f"parser.lr={lr}",
            "-S", f"parser.seed={seed}"], root, env)
    start = time.perf_counter()
    sh(["dvc", "queue", "start", "-j", "2"], root, env)
    status = wait_for_queue(root, env, 2)
    seconds = time.perf_counter() - start
    if status.count("Success") < 2 or "Failed" in status:
        sys.exit(f"queue failed:\n{status}")
    for lr in LRS:
        logs, _ = sh(["dvc", "queue", "logs", f"{label}-lr{lr}"], root, env)
        threads = sorted(set(re.findall(r"(\d+) torch threads", logs)))
        print(f"  {label}-lr{lr}: torch threads reported {', '.join(threads) or '?'}")
        if not threads:
            print("    (not in `dvc queue logs`; its tail:)", *logs.strip().splitlines()[-5:], sep="\n    ")
    sh(["dvc", "queue", "remove", "--success"], root, env)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("/work/main"))
    parser.add_argument("--threads-per-job", type=int, default=1)
    parser.add_argument("--oversubscribed", action="store_true")
    parser.add_argument("--no-sequential", action="store_true", help="skip the sequential runs")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "NO_ALBUMENTATIONS_UPDATE": "1", "HF_HUB_OFFLINE": "1",
           "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(prefix="bench_queue_") as tmp:
        root = Path(tmp) / "project"
        copy_built_project(args.project, root, env, code=ROOT)
        env["PYTHONPATH"] = str(root)
        print(f"{cores} cores; 2 experiments (parser.lr={' and '.join(LRS)}), each: {' '.join(SMALL[1::2])}")

        sequential = []
        for lr in () if args.no_sequential else LRS:
            _, seconds = sh(["dvc", "exp", "run", "train_parser", "-n", f"seq-lr{lr}", *SMALL, "-S", f"parser.lr={lr}"], root,
                            {**env, "FACEPARSE_THREADS": str(cores)})
            sequential.append(seconds)
            print(f"  sequential lr={lr}: {seconds:.1f} s ({cores} threads)")
        if sequential:
            print(f"sequential, 2 runs: {sum(sequential):.1f} s")
        budget = queued_sweep(root, {**env, "FACEPARSE_THREADS": str(args.threads_per_job)}, "budget", seed=1)
        print(f"dvc queue start -j 2, FACEPARSE_THREADS={args.threads_per_job}: {budget:.1f} s")
        if args.oversubscribed:
            over = queued_sweep(root, {k: v for k, v in env.items() if k != "FACEPARSE_THREADS"}, "over", seed=2)
            print(f"dvc queue start -j 2, no budget (params' threads per job): {over:.1f} s")


if __name__ == "__main__":
    main()
