"""Push and pull a project's DVC outputs through an S3 remote (moto's server on 127.0.0.1): sizes and times.

Usage: ``.venv/bin/python benchmarks/bench_remote.py [--project /work/main]``

Copies the project's code, params, dvc.yaml/dvc.lock and its built outputs (``data/``, ``models/``, ``metrics/``)
into a temporary git repository, records them with ``dvc commit -f`` (no stage runs), and then prints:

* per stage, ``dvc push <stage>``: files, MiB and seconds, so that packed outputs (a few large ``.npy``) can be
  compared with outputs of many small files (``data/raw``, ``data/unified``);
* the remote's object count and MiB after the push;
* ``dvc pull`` into a fresh ``git clone``: seconds; then ``dvc status`` there.

Loopback S3 measures DVC's per-file work (hashing, one request per object), not a network's bandwidth.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "faceparse-bench"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def sh(args: list[str], cwd: Path, env: dict) -> tuple[str, float]:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(args)} failed in {cwd}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout + proc.stderr, time.perf_counter() - start


def files_and_mib(paths: list[Path]) -> tuple[int, float]:
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    return len(files), sum(f.stat().st_size for f in files) / 2**20


def stage_outs(stage: dict) -> list[str]:
    outs = [*stage.get("outs", []), *stage.get("plots", []), *stage.get("metrics", [])]
    names = [next(iter(o)) if isinstance(o, dict) else o for o in outs]
    cached = [next(iter(o)) for o in outs if isinstance(o, dict) and not next(iter(o.values())).get("cache", True)]
    return [n for n in names if n not in cached]


def copy_built_project(project: Path, root: Path, env: dict, code: Path | None = None) -> list[str]:
    """A git + DVC repository at ``root`` holding ``project``'s outputs, recorded with ``dvc commit -f`` (no stage
    runs); its code (``stages/``, dvc.yaml, params.yaml) from ``code`` (default ``project``). Returns the stages
    recorded: those whose outputs all exist in ``project``."""
    root.mkdir(parents=True)
    shutil.copytree((code or project) / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("data", "models", "metrics"):
        shutil.copytree(project / name, root / name)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy((code or project) / name, root / name)
    shutil.copy(project / "dvc.lock", root / "dvc.lock")
    sh(["git", "init", "-q"], root, env)
    sh(["dvc", "init", "-q"], root, env)
    start = time.perf_counter()
    names, _ = sh(["dvc", "stage", "list", "--name-only"], root, env)
    recorded = []
    for name in names.split():
        proc = subprocess.run(["dvc", "commit", "-f", name], cwd=root, env=env, capture_output=True, text=True)
        if proc.returncode:  # the project's workspace predates an output this dvc.yaml declares
            print(f"  not recorded: {name} ({(proc.stdout + proc.stderr).strip().splitlines()[-1]})")
        else:
            recorded.append(name)
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    lock["stages"] = {k: v for k, v in lock["stages"].items() if k in recorded}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    print(f"dvc commit -f (hash and cache the outputs): {time.perf_counter() - start:.1f} s")
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "outputs"], root, env)
    return recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("/work/main"))
    args = parser.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="bench", aws_secret_access_key="bench",
                      region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    env = {**os.environ, **CREDENTIALS, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    with tempfile.TemporaryDirectory(prefix="bench_remote_") as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        recorded = copy_built_project(args.project, a, env, code=ROOT)
        sh(["dvc", "remote", "add", "-d", "shared", f"s3://{BUCKET}/dvcstore"], a, env)
        sh(["dvc", "remote", "modify", "shared", "endpointurl", url], a, env)
        sh(["git", "commit", "-qam", "the shared remote"], a, env)

        stages = yaml.safe_load((a / "dvc.yaml").read_text())["stages"]
        lock = yaml.safe_load((a / "dvc.lock").read_text())["stages"]
        print(f"{'stage':<22}{'files':>7}{'MiB':>9}{'push s':>9}{'files/s':>9}{'MiB/s':>8}")
        for name in recorded:
            outs = stage_outs(stages.get(name.split("@")[0], {})) or [o["path"] for o in lock[name].get("outs", [])]
            if name.startswith("download@"):
                outs = [o["path"] for o in lock[name].get("outs", [])]
            files, mib = files_and_mib([a / o for o in outs if (a / o).exists()])
            _, seconds = sh(["dvc", "push", name], a, env)
            print(f"{name:<22}{files:>7}{mib:>9.1f}{seconds:>9.1f}{files / seconds:>9.0f}{mib / seconds:>8.1f}")
        count = size = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for obj in page.get("Contents", []):
                count, size = count + 1, size + obj["Size"]
        print(f"remote after push: {count} objects, {size / 2**20:.1f} MiB")

        sh(["git", "clone", "-q", str(a), str(b)], Path(tmp), env)
        _, seconds = sh(["dvc", "pull", *recorded], b, env)
        files, mib = files_and_mib([b / "data", b / "models", b / "metrics"])
        print(f"dvc pull into a fresh clone: {seconds:.1f} s ({files} files, {mib:.1f} MiB in the workspace)")
        status, _ = sh(["dvc", "status", *recorded], b, env)
        print("dvc status in the clone:", status.strip().splitlines()[-1] if status.strip() else "(empty)")
    server.stop()


if __name__ == "__main__":
    main()
