#!/usr/bin/env python3
"""PyTorch DistributedDataParallel reference for `codistill bench scaling`.

    .venv-bench/bin/python bench/torch_ddp.py --ranks 2 [--batch 128] [--steps 30] [--warmup 3]

Spawns --ranks processes (torch.multiprocessing, gloo backend on 127.0.0.1, a
free port), each with ONE thread, and trains the `cnn` model with DDP on random
data of Fashion-MNIST shape: 4 fixed batches of [batch, 1, 28, 28] per rank,
cycled. SGD lr 0.05, momentum 0.9, weight decay 5e-4. --warmup steps are not
timed; the --steps timed steps sit between two dist.barrier() calls.

Rank 0 prints ONE JSON line:

    {"system":"pytorch-ddp","ranks":R,"samples_per_s":...,"step_ms":...}

samples_per_s counts all ranks (batch * steps * ranks / elapsed). DDP overlaps
its bucketed allreduce with the backward pass, so the time spent in allreduce
is not separable and is not reported.

Each rank is pinned to core (rank mod #cores) like `mpirun --bind-to core` in
codistill's benchmark; --no-bind turns that off.

Set up the interpreter with `bash bench/setup_torch_venv.sh`.
"""

import argparse
import json
import os
import socket
import sys
import time
from collections import OrderedDict

# One thread everywhere, set before torch loads its thread pools (inherited by spawned ranks).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

try:
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    import torch.nn as nn
    from torch.nn.parallel import DistributedDataParallel as DDP
except ImportError:
    sys.exit("torch_ddp: PyTorch is not installed in this interpreter; "
             "run `bash bench/setup_torch_venv.sh` and use .venv-bench/bin/python")


def build_cnn() -> nn.Module:
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        ),
        classifier=nn.Sequential(
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
        ),
    ))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, args) -> None:
    if args.bind and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[rank % len(cores)]})
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # same initial weights everywhere (DDP also broadcasts rank 0's)
        model = DDP(build_cnn())
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        loss_fn = nn.CrossEntropyLoss()
        g = torch.Generator().manual_seed(100 + rank)
        xs = [torch.randn(args.batch, 1, 28, 28, generator=g) for _ in range(4)]
        ys = [torch.randint(0, 10, (args.batch,), generator=g) for _ in range(4)]
        model.train()

        def step(i: int) -> None:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xs[i % 4]), ys[i % 4])
            loss.backward()  # DDP's allreduce runs here, overlapped with backward
            opt.step()

        for i in range(args.warmup):
            step(i)
        dist.barrier()
        start = time.perf_counter()
        for i in range(args.warmup, args.warmup + args.steps):
            step(i)
        dist.barrier()
        elapsed = time.perf_counter() - start
        if rank == 0:
            print(json.dumps({
                "system": "pytorch-ddp",
                "ranks": world,
                "samples_per_s": round(args.batch * args.steps * world / elapsed, 2),
                "step_ms": round(1000 * elapsed / args.steps, 3),
            }, separators=(",", ":")), flush=True)
    finally:
        dist.destroy_process_group()


def main() -> int:
    ap = argparse.ArgumentParser(description="PyTorch DDP (gloo, CPU, 1 thread per rank) scaling reference.")
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128, help="batch per rank")
    ap.add_argument("--steps", type=int, default=30, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--no-bind", dest="bind", action="store_false",
                    help="do not pin rank r to core r mod #cores")
    args = ap.parse_args()
    if args.ranks < 1 or args.batch < 1 or args.steps < 1 or args.warmup < 0:
        ap.error("need --ranks, --batch, --steps >= 1 and --warmup >= 0")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only; avoids picking an unroutable NIC
    mp.spawn(worker, args=(args.ranks, free_port(), args), nprocs=args.ranks, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
