#!/usr/bin/env python3
"""Compare codistill's training engine with PyTorch on CPU, one thread.

    python3 bench/compare_engine.py [--rounds 3] [--models cnn,mlp] [--codistill PATH]

Each round, for each model, runs

    PATH bench engine --model M --batch 128 --json
    .venv-bench/bin/python bench/torch_reference.py --model M --batch 128 --json

alternating which goes first each round, each in a fresh process (so peak RSS
is that model's alone). Prints the medians and the ratios codistill/pytorch as
a Markdown table on stdout; progress goes to stderr.

Standard library only: runs with the system python3. If PyTorch is not set up
(bash bench/setup_torch_venv.sh), only codistill's figures are shown.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CODISTILL = os.path.join(".build", "release", "codistill")
VENV_PYTHON = os.path.join(ROOT, ".venv-bench", "bin", "python")
TORCH_SCRIPT = os.path.join(ROOT, "bench", "torch_reference.py")
METRICS = ("samples_per_s", "gflops", "peak_rss_mib")
RUN_TIMEOUT_S = 1800


class RunError(Exception):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_json_line(stdout: str, required: tuple = METRICS) -> dict:
    """The last line starting with '{' (other lines may surround it), with numeric `required` keys."""
    for line in reversed(stdout.splitlines()):
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise RunError(f"bad JSON line {line.strip()!r}: {e}") from None
            if not isinstance(obj, dict):
                raise RunError(f"JSON line is not an object: {line.strip()!r}")
            missing = [k for k in required if not isinstance(obj.get(k), (int, float))]
            if missing:
                raise RunError(f"JSON line lacks numeric {', '.join(missing)}: {line.strip()!r}")
            return obj
    raise RunError("no line starting with '{' in its output")


def run_json(cmd: list, required: tuple = METRICS, env: dict = None, timeout: int = RUN_TIMEOUT_S) -> dict:
    """Runs `cmd` (from the repository root) and returns its JSON line."""
    try:
        p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise RunError(f"cannot execute {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise RunError(f"timed out after {timeout} s: {' '.join(cmd)}") from None
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
        raise RunError(f"exit status {p.returncode}: {' '.join(cmd)}\n{tail}")
    return parse_json_line(p.stdout, required)


def torch_available(python: str) -> tuple:
    """(ok, detail): whether `python` exists and imports torch."""
    if not os.path.exists(python):
        return False, f"{python} does not exist"
    try:
        p = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["import torch failed"])[-1]
        return False, last
    return True, p.stdout.strip()


def fmt(x, digits=1):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def median_of(runs: list, key: str):
    vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Run codistill's engine benchmark and the PyTorch reference alternately.")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="cnn,mlp", help="comma-separated (cnn, mlp)")
    ap.add_argument("--codistill", default=None,
                    help=f"codistill executable (default: {DEFAULT_CODISTILL} in the project root)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--python", default=VENV_PYTHON,
                    help="interpreter with torch (default: .venv-bench/bin/python)")
    args = ap.parse_args()

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or args.rounds < 1:
        ap.error("need at least one model and one round")
    codistill = os.path.abspath(args.codistill) if args.codistill else os.path.join(ROOT, DEFAULT_CODISTILL)

    have_codistill = os.path.isfile(codistill) and os.access(codistill, os.X_OK)
    if not have_codistill:
        print(f"codistill executable not found at {codistill}: build it with "
              f"`swift build -c release` (or pass --codistill PATH)", flush=True)
    have_torch, torch_detail = torch_available(args.python)
    if not have_torch:
        print("PyTorch not installed: run bash bench/setup_torch_venv.sh; "
              "showing codistill figures only", flush=True)
        log(f"  ({torch_detail})")
    if not have_codistill and not have_torch:
        return 1

    systems = {}
    if have_codistill:
        systems["codistill"] = lambda m: [codistill, "bench", "engine", "--model", m,
                                          "--batch", str(args.batch), "--json"]
    if have_torch:
        systems["pytorch"] = lambda m: [args.python, TORCH_SCRIPT, "--model", m,
                                        "--batch", str(args.batch), "--json"]

    results = {m: {s: [] for s in systems} for m in models}
    failures = []
    for rnd in range(args.rounds):
        order = list(systems)
        if rnd % 2 == 1:
            order.reverse()
        for m in models:
            for s in order:
                cmd = systems[s](m)
                try:
                    r = run_json(cmd)
                except RunError as e:
                    failures.append(f"{s} {m} (round {rnd + 1}): {e}")
                    log(f"round {rnd + 1}/{args.rounds} {m:4s} {s:9s} FAILED: {e}")
                    continue
                results[m][s].append(r)
                log(f"round {rnd + 1}/{args.rounds} {m:4s} {s:9s} "
                    f"{r['samples_per_s']:10.1f} samples/s {r['gflops']:8.2f} GFLOP/s "
                    f"{r['peak_rss_mib']:8.1f} MiB")
                if r.get("model") not in (None, m) or r.get("batch") not in (None, args.batch):
                    log(f"  warning: {s} reported model={r.get('model')} batch={r.get('batch')}")
                if r.get("threads") not in (None, 1):
                    log(f"  warning: {s} reported threads={r.get('threads')} (expected 1)")

    # Medians.
    med = {m: {s: {k: median_of(results[m][s], k) for k in METRICS + ("sgemm_gflops",)}
               for s in systems} for m in models}

    def get(m, s, k):
        return med[m].get(s, {}).get(k)

    def version(s):
        for m in models:
            for r in results[m].get(s, []):
                if r.get("version"):
                    return str(r["version"])
        return "?"

    print()
    print(f"Engine benchmark: batch {args.batch}, 1 thread, median of {args.rounds} round(s)"
          + "".join(f"; {s} {version(s)}" for s in systems))
    print()
    print("| model | codistill samples/s | pytorch samples/s | throughput codistill/pytorch "
          "| codistill GFLOP/s | pytorch GFLOP/s | codistill peak RSS MiB | pytorch peak RSS MiB "
          "| memory codistill/pytorch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        c = lambda k: get(m, "codistill", k)
        p = lambda k: get(m, "pytorch", k)
        print(f"| {m} | {fmt(c('samples_per_s'))} | {fmt(p('samples_per_s'))} "
              f"| {ratio(c('samples_per_s'), p('samples_per_s'))} "
              f"| {fmt(c('gflops'), 2)} | {fmt(p('gflops'), 2)} "
              f"| {fmt(c('peak_rss_mib'))} | {fmt(p('peak_rss_mib'))} "
              f"| {ratio(c('peak_rss_mib'), p('peak_rss_mib'))} |")

    sgemm = [get(m, "codistill", "sgemm_gflops") for m in models]
    sgemm = [v for v in sgemm if v is not None]
    if sgemm:
        ceiling = statistics.median(sgemm)
        print()
        print(f"OpenBLAS single-core SGEMM ceiling (reported by codistill): {ceiling:.2f} GFLOP/s")
        for m in models:
            for s in systems:
                g = get(m, s, "gflops")
                if g is not None and ceiling > 0:
                    print(f"- {m} {s}: {100 * g / ceiling:.0f}% of the ceiling")

    if failures:
        print()
        print(f"{len(failures)} run(s) failed:")
        for f in failures:
            print(f"- {f.splitlines()[0]}")
        return 1
    return 0 if have_codistill else 1


if __name__ == "__main__":
    sys.exit(main())
