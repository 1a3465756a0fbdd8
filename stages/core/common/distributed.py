"""Training in one process or in several under ``torchrun`` (PyTorch DistributedDataParallel).

A training stage calls :func:`training_processes` with its params' ``devices``:

* not started by torchrun, ``devices`` 1: one ordinary process (CUDA when present, else CPU);
* not started by torchrun, ``devices`` N > 1: the stage starts ``torchrun --standalone --nproc_per_node N -m
  <stage>`` through torch's own launcher (``torch.distributed.run``) and waits for it; ``dvc repro`` needs no
  other command;
* started by torchrun (``RANK``/``WORLD_SIZE`` set): joins the process group, NCCL on CUDA (one GPU per process,
  ``LOCAL_RANK``), gloo on CPU. ``WORLD_SIZE`` must equal ``devices``: params then describe the run that made the
  model.

``batch_size`` is per process: the global batch is ``devices * batch_size``. Each rank reads its own share of the
shuffled training set (a ``DistributedSampler`` over one permutation per epoch, so the global batch ``k`` is the
same set of samples as batch ``k`` of one process with ``devices * batch_size``). Gradients are averaged across
ranks by DDP; validation, checkpoints, logs and exports are rank 0's work.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from stages.core.common.torch_utils import seeded_worker, training_device

log = logging.getLogger(__name__)

# Ranks draw augmentation and dropout from seeds this far apart, so rank 1 never repeats rank 0's next epochs.
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: ``rank`` of ``world_size`` processes, its ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that validates, logs, saves and exports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def single_process() -> DistributedContext:
    return DistributedContext(device=training_device())


def torchrun_world_size() -> int:
    """``WORLD_SIZE`` set by torchrun, or 0 when this process was not started by it."""
    return int(os.environ["WORLD_SIZE"]) if "WORLD_SIZE" in os.environ and "RANK" in os.environ else 0


def run_torchrun(module: str, processes: int) -> None:
    """``torchrun --standalone --nproc_per_node processes -m module`` in this machine; raises if a worker fails."""
    from torch.distributed.run import main as torchrun

    log.info("starting %d processes: torchrun --standalone --nproc_per_node %d -m %s", processes, processes, module)
    torchrun(["--standalone", f"--nproc_per_node={processes}", "-m", module])


@contextmanager
def training_processes(devices: int, module: str, section: str) -> Iterator[DistributedContext | None]:
    """The context this process trains in (see the module docstring), or None when it launched torchrun and the
    workers have already done the training. ``section`` names the params section in error messages."""
    world = torchrun_world_size()
    if not world:
        if devices > 1:
            run_torchrun(module, devices)
            yield None
        else:
            yield single_process()
        return
    if world != devices:
        raise ValueError(f"params.yaml: {section}.devices is {devices}, but torchrun started {world} processes; "
                         f"set {section}.devices: {world} (batch_size is per process)")
    if world == 1:
        yield single_process()
        return
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend, init_method="env://")
    try:
        yield DistributedContext(rank, world, local_rank, device)
    finally:
        dist.destroy_process_group()


def per_rank_seed(seed: int, rank: int) -> int:
    """Rank 0 keeps ``seed`` (one process trains exactly as before); other ranks get their own streams."""
    return seed + RANK_SEED_STRIDE * rank


def distributed_loader(dataset: Dataset, batch_size: int, seed: int, ctx: DistributedContext, shuffle: bool = True,
                       workers: int = 0) -> DataLoader:
    """This rank's loader of ``batch_size`` samples per step. Call ``loader.sampler.set_epoch(e)`` before each
    epoch: the permutation is ``randperm(len(dataset))`` seeded with ``seed + e``, the same on every rank.

    On CUDA the batches come in pinned memory, and ``workers`` > 0 loader processes stay alive between epochs,
    unless the dataset has a ``set_epoch``: each worker holds a copy of the dataset made when it starts, so the
    workers are then started afresh every epoch, with the epoch the main process set.
    On CPU ``workers`` is ignored and the main process loads: worker processes would draw the augmentations from
    other random streams, so a run would no longer be the same with and without them.
    """
    workers = workers if ctx.device.type == "cuda" else 0
    sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed,
                                 drop_last=False)
    base = dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset
    per_epoch = callable(getattr(base, "set_epoch", None))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      persistent_workers=workers > 0 and not per_epoch, pin_memory=ctx.device.type == "cuda",
                      generator=torch.Generator().manual_seed(seed), worker_init_fn=seeded_worker, drop_last=False)


def wrap_model(model: torch.nn.Module, ctx: DistributedContext) -> torch.nn.Module:
    """``model`` (already on ``ctx.device``) as DDP when there are several processes, else itself.

    On CUDA its BatchNorm layers become SyncBatchNorm, so that batch statistics cover the global batch; gloo has
    no SyncBatchNorm on CPU, where each rank normalises over its own ``batch_size`` samples.
    """
    if not ctx.distributed:
        return model
    if ctx.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[ctx.local_rank])
    return torch.nn.parallel.DistributedDataParallel(model)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP (state dicts without the ``module.`` prefix), or ``model`` itself."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def sum_over_ranks(values: list[float], ctx: DistributedContext) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (``values`` itself in one process)."""
    if not ctx.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    return tensor.tolist()


def from_main(obj, ctx: DistributedContext):
    """Rank 0's ``obj`` (any picklable value) on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def copy_from_main(module: torch.nn.Module, ctx: DistributedContext) -> None:
    """Overwrite ``module``'s parameters and buffers with rank 0's (DDP does this for the modules it wraps)."""
    if ctx.distributed:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(module: torch.nn.Module, ctx: DistributedContext) -> None:
    """Average ``module``'s gradients over the ranks, after ``backward()`` and before the optimizer step.

    For a module DDP cannot wrap, such as a GAN discriminator whose loss holds an R1 gradient penalty (a double
    backward, which DDP does not support). With equal starting weights (:func:`copy_from_main`) and averaged
    gradients, every rank's copy stays equal.
    """
    if not ctx.distributed:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    for grad in grads:
        dist.all_reduce(grad)
        grad.div_(ctx.world_size)
