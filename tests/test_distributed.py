"""Training in several processes: DDP under torchrun on CPU (gloo) against one process with the same global batch.

The equivalence test runs the real stage, ``torchrun --nproc_per_node 2 -m stages.train_parser``, in a temporary
project, and ``python -m stages.train_parser`` with twice the batch, and compares the training loss step by step
(one step per epoch: 8 training images, global batch 8).

What may differ, and the tolerance: augmentation is off (each rank draws its own augmentation, so inputs would
differ by design) and the loss is ``ce`` (a mean over pixels, so the average of two half-batch losses is the
full-batch loss; dice over a batch is not linear). What remains is BatchNorm: gloo has no SyncBatchNorm on CPU,
so each rank normalises over its own 4 images instead of 8. The first step's loss sees only that; later steps
also see the slightly different updates. ``LOSS_TOLERANCE`` bounds the relative difference per step.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO_ROOT
from inpainting_fixtures import write_masked_project
from test_training import blob_faces

from stages.core.common import distributed
from stages.core.common.distributed import (
    DistributedContext,
    average_gradients,
    copy_from_main,
    distributed_loader,
    per_rank_seed,
    training_processes,
)
from stages.core.common.threads import THREADS_ENV, thread_budget
from stages.core.common.torch_utils import load_checkpoint
from stages.core.inpainting.training import InpainterParams, fit_inpainter

# Relative, per step. Measured on CPU: 0.07%, 0.10%, 0.21% over the 3 steps. The same two processes without DDP
# (each with its own initial weights and no gradient averaging) differ by 2.1-2.6% from the first step on.
LOSS_TOLERANCE = 0.005
STEPS = 3
PARSER = {"arch": "Unet", "encoder": "tu-mobilenetv3_small_050", "encoder_weights": None,
          "decoder_channels": [16, 16, 8, 8, 8], "epochs": STEPS, "lr": 0.003, "threads": 1, "scheduler": "none",
          "augment": {"hflip": 0, "affine": 0, "masked_photo": 0}}


def write_cache(cache: Path) -> None:
    cache.mkdir(parents=True)
    for split, n, seed in (("train", 8, 0), ("val", 4, 1), ("test", 4, 2)):
        images, labels = blob_faces(n, seed)
        np.save(cache / f"{split}_images.npy", images)
        np.save(cache / f"{split}_labels.npy", labels)
        np.save(cache / f"{split}_landmarks.npy", np.full((n, 68, 2), np.nan, np.float32))
        pd.DataFrame({"row": range(n), "id": range(n), "source": "blobs"}).to_csv(cache / f"{split}_ids.csv",
                                                                                   index=False)


def train_in(project: Path, command: list[str], devices: int, batch_size: int) -> dict:
    """Run ``command`` (a train_parser launch) in a copy of ``project``; returns its models/parser.pt."""
    shutil.rmtree(project / "models", ignore_errors=True)
    shutil.rmtree(project / "metrics", ignore_errors=True)
    params = {"loss": "ce", "parser": {**PARSER, "devices": devices, "batch_size": batch_size}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
    env.pop(THREADS_ENV, None)
    proc = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(command)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return load_checkpoint(project / "models" / "parser.pt")


def test_two_gloo_processes_train_like_one_process_with_the_same_global_batch(tmp_path):
    write_cache(tmp_path / "data" / "cache")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "-m", "stages.train_parser"]
    ddp = train_in(tmp_path, torchrun, devices=2, batch_size=4)
    assert (tmp_path / "models" / "parser.onnx").is_file()
    logged = pd.read_csv(tmp_path / "metrics/train_parser/plots/metrics/train_loss.tsv", sep="\t")
    assert len(logged) == STEPS, "rank 0 alone logs, once per epoch"
    single = train_in(tmp_path, [sys.executable, "-m", "stages.train_parser"], devices=1, batch_size=8)
    ddp_loss = np.array([row["train_loss"] for row in ddp["history"]])
    single_loss = np.array([row["train_loss"] for row in single["history"]])
    assert len(ddp_loss) == len(single_loss) == STEPS
    relative = np.abs(ddp_loss - single_loss) / single_loss
    print(f"per-step train loss: 2 x 4 gloo {ddp_loss.round(5).tolist()}, 1 x 8 {single_loss.round(5).tolist()}, "
          f"relative difference {relative.round(5).tolist()}")
    assert (relative < LOSS_TOLERANCE).all(), relative
    assert ddp_loss[-1] < ddp_loss[0], "the DDP run did not learn"


def test_devices_without_torchrun_start_torchrun(monkeypatch):
    started = []
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(distributed, "run_torchrun", lambda module, n: started.append((module, n)))
    with training_processes(3, "stages.train_parser", "parser") as ctx:
        assert ctx is None
    assert started == [("stages.train_parser", 3)]
    with training_processes(1, "stages.train_parser", "parser") as ctx:
        assert ctx is not None and ctx.world_size == 1 and ctx.is_main
    assert len(started) == 1


def test_torchrun_with_other_devices_than_params_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match=r"parser\.devices is 1, but torchrun started 2 processes"):
        with training_processes(1, "stages.train_parser", "parser"):
            pass


def test_ranks_share_one_permutation_and_together_cover_the_global_batch():
    data = torch.utils.data.TensorDataset(torch.arange(12))
    one = distributed_loader(data, 4, seed=5, ctx=DistributedContext(0, 1))
    ranks = [distributed_loader(data, 2, seed=5, ctx=DistributedContext(r, 2)) for r in (0, 1)]
    orders = []
    for epoch in (0, 1):
        for loader in (one, *ranks):
            loader.sampler.set_epoch(epoch)
        single = [set(b[0].tolist()) for b in one]
        split = [set(a[0].tolist()) | set(b[0].tolist()) for a, b in zip(*ranks, strict=True)]
        assert single == split
        orders.append(single)
    assert orders[0] != orders[1], "each epoch shuffles anew"


def test_rank_seeds_differ_and_rank_zero_keeps_the_seed():
    assert per_rank_seed(7, 0) == 7
    assert len({per_rank_seed(7, r) + e for r in range(4) for e in range(50)}) == 200


def test_thread_budget_from_the_environment(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert thread_budget(2) == 2
    monkeypatch.setenv(THREADS_ENV, "1")
    assert thread_budget(2) == 1
    monkeypatch.setenv(THREADS_ENV, "zero")
    with pytest.raises(ValueError, match=THREADS_ENV):
        thread_budget(2)


# ------------------------------------------------------------------- two gloo processes from torch.multiprocessing

def _gloo_worker(rank: int, port: int, task: str, args: tuple, out: Path) -> None:
    import torch.distributed as dist

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.save(globals()[task](DistributedContext(rank, 2), *args), out / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def in_two_processes(task: str, tmp_path: Path, *args) -> list:
    """``task(ctx, *args)`` in two gloo processes; returns each rank's result."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_gloo_worker, args=(port, task, args, tmp_path), nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def _synced_linear(ctx: DistributedContext) -> dict:
    torch.manual_seed(ctx.rank)  # each rank starts from other weights
    layer = torch.nn.Linear(3, 2)
    copy_from_main(layer, ctx)
    layer(torch.full((1, 3), float(ctx.rank + 1))).sum().backward()
    average_gradients(layer, ctx)
    return {"weight": layer.weight.detach(), "grad": layer.weight.grad}


def test_copy_from_main_and_average_gradients_keep_ranks_equal(tmp_path):
    rank0, rank1 = in_two_processes("_synced_linear", tmp_path)
    torch.testing.assert_close(rank0["weight"], rank1["weight"])
    # d(sum(W x))/dW = x in each row: x is 1s on rank 0 and 2s on rank 1, so the average is 1.5
    torch.testing.assert_close(rank0["grad"], torch.full((2, 3), 1.5))
    torch.testing.assert_close(rank1["grad"], torch.full((2, 3), 1.5))


def _inpainter_generator(ctx: DistributedContext, masks_dir: str, cache_dir: str) -> dict:
    cfg = InpainterParams.from_params({"widths": [8, 8, 16, 16], "blocks": 1, "disc_widths": [8, 16], "batch_size": 2,
                                       "loss": {"ssim_kind": "ssim"}, "sample_rows": 2, "epochs": 1, "devices": 2,
                                       "threads": 1, "parser_guide": 0.0})
    model = fit_inpainter(cfg, Path(masks_dir), Path(cache_dir), ctx=ctx).model
    # parameters only: BatchNorm's running statistics last saw each rank's own batch (no SyncBatchNorm on CPU)
    return {name: p.detach() for name, p in model.named_parameters()}


def test_inpainter_ranks_end_with_the_same_generator(tmp_path):
    masks_dir, cache_dir = write_masked_project(tmp_path / "data", {"train": 8, "val": 2, "test": 2})
    rank0, rank1 = in_two_processes("_inpainter_generator", tmp_path, str(masks_dir), str(cache_dir))
    for key, value in rank0.items():
        torch.testing.assert_close(rank1[key], value, msg=key)
    untrained = InpainterParams.from_params({"widths": [8, 8, 16, 16], "blocks": 1})
    from stages.core.inpainting.training import build_inpainter

    torch.manual_seed(0)
    assert any(not torch.equal(p, rank0[k]) for k, p in build_inpainter(untrained).named_parameters()), \
        "the generator did not train"


@pytest.mark.parametrize(("device", "expected"), [("cpu", 0), ("cuda", 3)])
def test_loader_workers_only_on_cuda(device, expected):
    # Constructing the loader starts no worker and touches no GPU, so the CUDA case runs on a CPU machine too.
    loader = distributed_loader(torch.utils.data.TensorDataset(torch.arange(4)), 2, seed=0,
                                ctx=DistributedContext(device=torch.device(device)), workers=3)
    assert (loader.num_workers, loader.persistent_workers) == (expected, expected > 0)


class _EpochItems(torch.utils.data.Dataset):
    """Item i of epoch e is (e, i): what a loader worker returns shows which epoch its dataset copy was told."""

    def __init__(self):
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        return torch.tensor([self.epoch, i])


@pytest.mark.parametrize("subset", [False, True])
def test_loader_workers_see_each_epoch_a_dataset_was_set_to(subset):
    """Persistent workers keep the dataset copy of their start, so the drawn masks of epoch 0 would come back every
    epoch; a dataset with set_epoch gets new workers per epoch (a CUDA-only path, checked here on CPU workers)."""
    dataset = _EpochItems()
    wrapped = torch.utils.data.Subset(dataset, range(4)) if subset else dataset
    loader = distributed_loader(wrapped, 2, 0, DistributedContext(device=torch.device("cuda")), workers=2)
    assert not loader.persistent_workers
    seen = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        seen.append({int(e) for batch in loader for e in batch[:, 0]})
    assert seen == [{0}, {1}]
    plain = distributed_loader(torch.utils.data.TensorDataset(torch.zeros(4)), 2, 0,
                               DistributedContext(device=torch.device("cuda")), workers=2)
    assert plain.persistent_workers
