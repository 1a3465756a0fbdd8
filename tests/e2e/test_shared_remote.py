"""A team's shared DVC remote on S3: push from one clone, pull into another, carry an experiment between them.

A real S3 endpoint runs on 127.0.0.1 (moto's server). The remote is configured as a user would, with
``dvc remote add -d`` and ``dvc remote modify ... endpointurl``; the credentials are dummies in the environment,
never in ``.dvc/config``. The origin is a bare git repository, as GitHub would be: clone A pushes code and
lock to it, clone B is a fresh ``git clone`` of it.

The project's dvc.yaml is cut to the stages up to ``train_parser`` (download, remap, cache, masks, train_parser), with the
tiny params: the other stages move the same kinds of files and would only make the test slower.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
import yaml
from pipeline_project import make_project, run

pytestmark = pytest.mark.e2e

BUCKET = "faceparse-team"
STAGES = ("download", "remap", "cache", "masks", "train_parser")


@pytest.fixture(scope="module")
def s3_endpoint():
    """The URL of a moto S3 server on 127.0.0.1 with an empty bucket; the dummy credentials in the environment."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    client = boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield url, credentials, client
    server.stop()


def remote_objects(client) -> tuple[int, int]:
    """(number of objects, total bytes) in the bucket."""
    count = size = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            count, size = count + 1, size + obj["Size"]
    return count, size


def timed(args: list[str], cwd: Path, env: dict) -> tuple[str, float]:
    start = time.perf_counter()
    out = run(args, cwd, env)
    return out, time.perf_counter() - start


def test_push_pull_reproduce_and_share_an_experiment(tmp_path, s3_endpoint):
    url, credentials, client = s3_endpoint
    origin, a, b = tmp_path / "origin.git", tmp_path / "a", tmp_path / "b"
    env = {**make_project(a), **credentials}
    pipeline = yaml.safe_load((a / "dvc.yaml").read_text())
    pipeline["stages"] = {name: stage for name, stage in pipeline["stages"].items() if name in STAGES}
    (a / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path, env)
    run(["dvc", "remote", "add", "-d", "shared", f"s3://{BUCKET}/dvcstore"], a, env)
    run(["dvc", "remote", "modify", "shared", "endpointurl", url], a, env)
    config = (a / ".dvc" / "config").read_text()
    assert "testing" not in config and "secret" not in config.lower(), config

    run(["dvc", "repro"], a, env)
    run(["git", "add", "-A"], a, env)
    run(["git", "commit", "-qm", "pipeline and the shared remote"], a, env)
    run(["git", "remote", "add", "origin", str(origin)], a, env)
    run(["git", "push", "-q", "origin", "HEAD:main"], a, env)
    _, push_seconds = timed(["dvc", "push"], a, env)
    objects, size = remote_objects(client)
    assert objects > 0
    print(f"dvc push: {objects} objects, {size / 2**20:.2f} MiB in {push_seconds:.1f} s")

    run(["git", "clone", "-q", "--branch", "main", str(origin), str(b)], tmp_path, env)
    env_b = {**env, "PYTHONPATH": str(b)}
    assert not (b / "models" / "parser.pt").exists()
    _, pull_seconds = timed(["dvc", "pull"], b, env_b)
    print(f"dvc pull: {pull_seconds:.1f} s")
    assert (b / "models" / "parser.pt").read_bytes() == (a / "models" / "parser.pt").read_bytes()
    assert (b / "data" / "cache" / "train_images.npy").stat().st_size == (a / "data/cache/train_images.npy").stat().st_size
    status = run(["dvc", "status"], b, env_b)
    assert "up to date" in status, status
    assert "Running stage" not in run(["dvc", "repro"], b, env_b)
    assert "Running stage" not in run(["dvc", "repro"], a, env)

    # An experiment made in clone B reaches clone A through git (refs/exps) and the S3 remote (its outputs).
    out = run(["dvc", "exp", "run", "-n", "two-epochs", "-S", "parser.epochs=2"], b, env_b)
    assert "Running stage 'train_parser'" in out
    trained = (b / "models" / "parser.pt").read_bytes()
    before = remote_objects(client)[0]
    run(["dvc", "exp", "push", "origin", "two-epochs"], b, env_b)
    assert remote_objects(client)[0] > before, "exp push sent no outputs to the remote"
    run(["dvc", "exp", "pull", "origin", "two-epochs"], a, env)
    assert "two-epochs" in run(["dvc", "exp", "list", "--name-only"], a, env)
    run(["dvc", "exp", "apply", "two-epochs"], a, env)
    assert re.search(r"epochs: 2\b", (a / "params.yaml").read_text())
    assert (a / "models" / "parser.pt").read_bytes() == trained
    assert "up to date" in run(["dvc", "status"], a, env)
