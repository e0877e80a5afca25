"""This process's place among ``torchrun``'s processes, and the one reduction the pretraining loop needs.

Without ``torchrun`` (no ``RANK`` in the environment) a process is rank 0 of 1, and nothing is initialised::

    >>> d = Dist()
    >>> d.main, d.world_size, mean_across(2.5, d)
    (True, 1, 2.5)
    >>> Dist(rank=1, local_rank=1, world_size=2).main   # only rank 0 logs and writes checkpoints
    False
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    """This process's place among the ``torchrun`` processes (one process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Under ``torchrun`` (RANK set): init the process group, nccl on GPU, gloo on CPU."""
    if "RANK" not in os.environ:
        return Dist()
    backend = "nccl" if device == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    d = Dist(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"]))
    if device == "cuda":
        torch.cuda.set_device(d.local_rank)
    return d


def mean_across(value: float, d: Dist) -> float:
    """The mean of ``value`` over every process, so rank 0 logs the loss of the whole global batch."""
    if d.world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return t.item() / d.world_size
