#!/usr/bin/env python3
"""PyTorch CPU reference for codistill's engine benchmark.

Trains one reference model on random data of Fashion-MNIST shape (1x28x28,
10 classes) with ONE thread and reports throughput, GFLOP/s and peak RSS.
Run it in a fresh process per model so the peak-RSS figures are comparable:

    .venv-bench/bin/python bench/torch_reference.py --model cnn --json

Set up the interpreter with `bash bench/setup_torch_venv.sh`.

FLOP convention (shared with `codistill bench engine`): forward FLOPs per
sample = sum over conv layers of 2*Cout*Hout*Wout*Cin*kh*kw plus over linear
layers 2*in*out; training FLOPs = 3 x forward. BatchNorm, ReLU, pooling and the
loss are not counted.
"""

import argparse
import json
import os
import resource
import sys
import time

# One thread everywhere, set before torch loads its thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

try:
    import torch
    import torch.nn as nn
except ImportError:
    sys.exit("torch_reference: PyTorch is not installed in this interpreter; "
             "run `bash bench/setup_torch_venv.sh` and use .venv-bench/bin/python")

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10

# Expected forward FLOPs per sample under the shared convention (checked at start-up).
EXPECTED_FORWARD_FLOPS = {
    "cnn": 451584 + 7225344 + 802816 + 2560,  # 8482304
    "mlp": 2 * (784 * 256 + 256 * 256 + 256 * 10),  # 537600
}


def build_model(name: str) -> nn.Module:
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(3136, 128), nn.ReLU(),
            nn.Linear(128, 10),
        )
    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256), nn.ReLU(),
            nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, 10),
        )
    raise ValueError(f"unknown model {name!r}")


def forward_flops_per_sample(model: nn.Module) -> int:
    """Counts conv and linear FLOPs of one sample's forward pass via hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            cout, hout, wout = output.shape[1:]
            kh, kw = module.kernel_size
            cin = module.in_channels // module.groups
            total += 2 * cout * hout * wout * cin * kh * kw
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()  # eval: the probe must not touch BatchNorm running stats
    with torch.no_grad():
        model(torch.zeros(1, *IMAGE_SHAPE))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["cnn", "mlp"], required=True)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50, help="measured steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before measuring")
    ap.add_argument("--json", action="store_true", help="print exactly one JSON line")
    args = ap.parse_args()
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        ap.error("--batch and --steps must be >= 1, --warmup >= 0")

    torch.manual_seed(0)
    model = build_model(args.model)
    fwd_flops = forward_flops_per_sample(model)
    expected = EXPECTED_FORWARD_FLOPS[args.model]
    if fwd_flops != expected:
        raise SystemExit(f"FLOP count {fwd_flops} != expected {expected} for {args.model}")
    train_flops = 3 * fwd_flops

    # A few fixed random batches, generated before timing and cycled.
    n_batches = 4
    xs = [torch.randn(args.batch, *IMAGE_SHAPE) for _ in range(n_batches)]
    ys = [torch.randint(0, NUM_CLASSES, (args.batch,)) for _ in range(n_batches)]

    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step(i: int) -> torch.Tensor:
        x, y = xs[i % n_batches], ys[i % n_batches]
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    for i in range(args.warmup):
        step(i)

    t0 = time.perf_counter()
    for i in range(args.steps):
        loss = step(args.warmup + i)
    elapsed = time.perf_counter() - t0
    final_loss = float(loss.detach())  # after timing; also proves the steps ran

    samples_per_s = args.batch * args.steps / elapsed
    gflops = train_flops * samples_per_s / 1e9
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    if args.json:
        print(json.dumps({
            "system": "pytorch",
            "model": args.model,
            "batch": args.batch,
            "threads": 1,
            "steps": args.steps,
            "samples_per_s": round(samples_per_s, 2),
            "gflops": round(gflops, 3),
            "peak_rss_mib": round(peak_rss_mib, 1),
            "version": torch.__version__,
        }, separators=(",", ":")), flush=True)
    else:
        print(f"pytorch {torch.__version__} {args.model}: batch {args.batch}, 1 thread, "
              f"{args.steps} steps (+{args.warmup} warm-up) in {elapsed:.3f} s -> "
              f"{samples_per_s:.1f} samples/s, {gflops:.2f} GFLOP/s "
              f"({train_flops / 1e6:.2f} MFLOP/sample), peak RSS {peak_rss_mib:.1f} MiB, "
              f"last loss {final_loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
