#!/usr/bin/env python3
"""Two codistill binaries side by side on a codistilled run (2 groups of 1 rank, MPI windows):
the per-step cost of the exchange, the stop relay and the non-blocking reads.

    python3 bench/compare_codistilled.py --before PATH --after PATH [--rounds 5] [--model mlp]

Each round runs `mpirun -np 2 BIN train --groups 2 ...` with both binaries, alternating which
goes first, and takes the steps per second of the slower group from the final log rows
(training only: the rows' samples/s exclude start-up and evaluation). Prints medians.
"""
import argparse, os, re, statistics, subprocess, sys, tempfile

def steps_per_s(binary, model, steps, mode):
    with tempfile.TemporaryDirectory() as ck:
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        cmd = ["mpirun", "-np", "2", "--oversubscribe", binary, "train", "--model", model, "--groups", "2",
               "--steps", str(steps), "--burn-in", "100", "--exchange-every", "50", "--log-every", "100",
               "--checkpoint-dir", ck]
        if mode != "async":
            cmd += ["--exchange-mode", mode]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=True).stdout
    rates = {}
    for g, rate in re.findall(r"^\[group (\d)\] step \d+/\d+ .* (\d+) samples/s", out, re.M):
        rates.setdefault(g, []).append(int(rate))
    # Rows past burn-in, without the last (it includes the final evaluation).
    return min(statistics.median(r[1:-1]) for r in rates.values())

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--after-modes", default="async")
    a = ap.parse_args()
    arms = [("before async", a.before, "async")] + [(f"after {m}", a.after, m) for m in a.after_modes.split(",")]
    results = {name: [] for name, _, _ in arms}
    for r in range(a.rounds):
        order = arms if r % 2 == 0 else list(reversed(arms))
        for name, binary, mode in order:
            results[name].append(steps_per_s(binary, a.model, a.steps, mode))
            print(f"round {r + 1} {name}: {results[name][-1]:.0f} samples/s", file=sys.stderr)
    base = statistics.median(results["before async"])
    print(f"| {a.model}, 2 groups x 1 rank | median samples/s of the slower group | vs before |")
    print("|---|---:|---:|")
    for name, _, _ in arms:
        m = statistics.median(results[name])
        print(f"| {name} | {m:.0f} | {m / base:.3f} |")

if __name__ == "__main__":
    main()
