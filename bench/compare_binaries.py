#!/usr/bin/env python3
"""Compare two codistill release binaries side by side (e.g. before and after a change).

    python3 bench/compare_binaries.py --before PATH --after PATH [--rounds 5]
        [--models cnn,mlp,resnet20] [--no-scaling] [--cycles 4] [--block 5]

Each round runs, for each model, `BIN bench engine --model M ... --json` with the
before and the after binary, alternating which goes first from round to round, then
`BIN bench scaling --cycles C` the same way. Alternating inside one round means both
binaries sample the same minutes of a shared host, whose speed drifts (other builds,
2 cores): a drift cannot favour either side the way "all before runs, then all after
runs" would. Prints the medians as a Markdown table on stdout; progress goes to stderr.

Standard library only: runs with the system python3.
"""

import argparse
import os
import statistics
import sys

from compare_engine import RunError, log, run_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_TIMEOUT_S = 900

# Steps and batch per model so one run takes a few seconds on this 2-core host (the
# SGEMM-ceiling measurement every `bench engine` run ends with adds about a second).
ENGINE_RUNS = {
    "cnn": ["--batch", "64", "--steps", "20", "--warmup", "3"],
    "mlp": ["--batch", "128", "--steps", "150", "--warmup", "10"],
    "resnet20": ["--input-shape", "3,32,32", "--batch", "32", "--steps", "4", "--warmup", "2"],
}

# bench scaling's worker (interleaved method) prints these fields on its JSON line; the
# binary from before the refactor prints the same ones.
SCALING_FIELDS = ("solo_samples_per_s", "samples_per_s", "speedup", "step_ms", "allreduce_ms")


def run(cmd: list, required: tuple, env: dict) -> dict:
    return run_json(cmd, required, env=env, timeout=RUN_TIMEOUT_S)


def median(xs: list) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs: list) -> str:
    """min-max relative to the median, the noise a ratio should be read against."""
    if len(xs) < 2:
        return "-"
    m = statistics.median(xs)
    return f"±{100 * (max(xs) - min(xs)) / 2 / m:.1f}%" if m else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="codistill binary before the change")
    ap.add_argument("--after", required=True, help="codistill binary after the change")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--models", default=",".join(ENGINE_RUNS),
                    help=f"models for bench engine, comma-separated (default {','.join(ENGINE_RUNS)})")
    ap.add_argument("--no-scaling", action="store_true", help="skip bench scaling")
    ap.add_argument("--cycles", type=int, default=4, help="bench scaling --cycles (default 4)")
    ap.add_argument("--block", type=int, default=5,
                    help="bench scaling --block, steps per block (default 5: with 4 cycles, well under a minute per run)")
    ap.add_argument("--label-before", default="before")
    ap.add_argument("--label-after", default="after")
    args = ap.parse_args()

    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in ENGINE_RUNS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(ENGINE_RUNS)}")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    bins = {}
    for side in ("before", "after"):
        path = os.path.abspath(getattr(args, side))
        if not os.access(path, os.X_OK):
            ap.error(f"--{side} {path} is not an executable file; build it with "
                     "`swift build -c release --product codistill`")
        bins[side] = path

    env = dict(os.environ)
    # bench scaling launches mpirun itself; Open MPI refuses to run as root without these.
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

    engine = {m: {"before": [], "after": []} for m in models}
    scaling = {"before": [], "after": []}
    for r in range(args.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for m in models:
            for side in order:
                cmd = [bins[side], "bench", "engine", "--model", m, "--json"] + ENGINE_RUNS[m]
                try:
                    obj = run(cmd, ("samples_per_s",), env)
                except RunError as e:
                    log(f"error: {e}")
                    return 1
                engine[m][side].append(obj["samples_per_s"])
                log(f"round {r + 1}/{args.rounds} {m:8s} {side:6s} {obj['samples_per_s']:10.1f} samples/s")
        if not args.no_scaling:
            for side in order:
                cmd = [bins[side], "bench", "scaling", "--cycles", str(args.cycles), "--block", str(args.block)]
                try:
                    obj = run(cmd, SCALING_FIELDS, env)
                except RunError as e:
                    log(f"error: {e}")
                    return 1
                scaling[side].append(obj)
                log(f"round {r + 1}/{args.rounds} scaling  {side:6s} speed-up {obj['speedup']:.2f}x, "
                    f"allreduce {100 * obj['allreduce_ms'] / max(obj['step_ms'], 1e-9):.2f}%")

    lb, la = args.label_before, args.label_after
    print(f"\nMedians of {args.rounds} alternating rounds; ± is half the min-max range relative to the median.\n")
    # The paired figure: each round's after/before ratio (the two runs are neighbours in time, so
    # a slow minute of the host hits both), then the median over rounds.
    print(f"| model | {lb} samples/s | {la} samples/s | {la}/{lb} (medians) | {la}/{lb} per round: median (min-max) |")
    print("|---|---:|---:|---:|---:|")
    for m in models:
        b, a = engine[m]["before"], engine[m]["after"]
        mb, ma = median(b), median(a)
        paired = [x / y for x, y in zip(a, b)]
        print(f"| {m} | {mb:.1f} ({spread(b)}) | {ma:.1f} ({spread(a)}) | {ma / mb:.3f} | "
              f"{median(paired):.3f} ({min(paired):.2f}-{max(paired):.2f}) |")
    if not args.no_scaling:
        def shares(side):
            return [100 * o["allreduce_ms"] / max(o["step_ms"], 1e-9) for o in scaling[side]]
        sb = [o["speedup"] for o in scaling["before"]]
        sa = [o["speedup"] for o in scaling["after"]]
        print(f"\n| bench scaling (cnn, 2 ranks, --cycles {args.cycles} --block {args.block}) | {lb} | {la} | {la}/{lb} |")
        print("|---|---:|---:|---:|")
        print(f"| speed-up 1 -> 2 ranks | {median(sb):.2f}x | {median(sa):.2f}x | {median(sa) / median(sb):.3f} |")
        print(f"| allreduce share of step | {median(shares('before')):.2f}% | {median(shares('after')):.2f}% | - |")
        for key, name in (("solo_samples_per_s", "1 rank samples/s"), ("samples_per_s", "2 ranks samples/s")):
            vb = median([o[key] for o in scaling["before"]])
            va = median([o[key] for o in scaling["after"]])
            print(f"| {name} | {vb:.1f} | {va:.1f} | {va / vb:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
