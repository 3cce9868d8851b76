#!/usr/bin/env python3
"""Compare codistill's data-parallel scaling with PyTorch DistributedDataParallel.

    python3 bench/compare_scaling.py [--ranks 1,2] [--batch 128] [--steps 30] [--codistill PATH]

For each rank count R, runs (alternating which system goes first from one rank
count to the next)

    PATH bench scaling --method runs --ranks R --batch 128 --steps 30   (mpirun inside)
    .venv-bench/bin/python bench/torch_ddp.py --ranks R --batch 128 --steps 30

and prints one Markdown table on stdout: samples/s of both systems, speed-up
over each system's own 1-rank figure, the share of codistill's step time spent
in its allreduce (PyTorch's DDP overlaps allreduce with backward, so it has no
such figure) and the throughput ratio codistill/pytorch. Progress goes to stderr.

Standard library only: runs with the system python3. If PyTorch is not set up
(bash bench/setup_torch_venv.sh), only codistill's figures are shown (exit 0).
When run as root, OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)=1 is set for the children.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CODISTILL = os.path.join(".build", "release", "codistill")
VENV_PYTHON = os.path.join(ROOT, ".venv-bench", "bin", "python")
TORCH_SCRIPT = os.path.join(ROOT, "bench", "torch_ddp.py")
RUN_TIMEOUT_S = 1800


class RunError(Exception):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def child_env() -> dict:
    env = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return env


def json_lines(stdout: str) -> list:
    """Every line starting with '{' that parses as a JSON object (other lines are ignored)."""
    out = []
    for line in stdout.splitlines():
        s = line.strip()
        if not s.startswith("{"):
            continue
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            raise RunError(f"bad JSON line {s!r}: {e}") from None
        if isinstance(obj, dict):
            out.append(obj)
    return out


def pick(objs: list, ranks: int, keys: tuple) -> dict:
    """The last object reporting `ranks` ranks with numeric values for all `keys`."""
    for obj in reversed(objs):
        if obj.get("ranks") == ranks:
            missing = [k for k in keys if not isinstance(obj.get(k), (int, float))]
            if missing:
                raise RunError(f"JSON line lacks numeric {', '.join(missing)}: {json.dumps(obj)}")
            return obj
    raise RunError(f"no JSON line with \"ranks\":{ranks} in its output")


def run(cmd: list, env: dict) -> str:
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=RUN_TIMEOUT_S)
    except (FileNotFoundError, PermissionError):
        raise RunError(f"cannot execute {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise RunError(f"timed out after {RUN_TIMEOUT_S} s") from None
    if p.returncode != 0:
        tail = "\n".join((p.stderr.strip() or p.stdout.strip()).splitlines()[-15:])
        raise RunError(f"exit status {p.returncode}\n{tail}")
    return p.stdout


def torch_available(python: str) -> tuple:
    """(ok, detail): whether `python` exists and imports torch."""
    if not os.path.exists(python):
        return False, f"{python} does not exist"
    try:
        p = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    if p.returncode != 0:
        return False, (p.stderr.strip().splitlines() or ["import torch failed"])[-1]
    return True, p.stdout.strip()


def fmt(x, digits=1, suffix=""):
    return "–" if x is None else f"{x:,.{digits}f}{suffix}"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Run `codistill bench scaling` and bench/torch_ddp.py alternately and compare.")
    ap.add_argument("--ranks", default="1,2", help="rank counts, comma-separated (default 1,2)")
    ap.add_argument("--batch", type=int, default=128, help="batch per rank")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per run")
    ap.add_argument("--codistill", default=None,
                    help=f"codistill executable (default: {DEFAULT_CODISTILL} in the project root)")
    ap.add_argument("--python", default=VENV_PYTHON,
                    help="interpreter with torch (default: .venv-bench/bin/python)")
    args = ap.parse_args()

    try:
        counts = [int(r) for r in args.ranks.split(",") if r.strip()]
    except ValueError:
        ap.error(f"--ranks must be comma-separated integers, got {args.ranks!r}")
    if not counts or min(counts) < 1 or args.batch < 1 or args.steps < 1:
        ap.error("need at least one rank count >= 1, --batch >= 1 and --steps >= 1")
    codistill = os.path.abspath(args.codistill) if args.codistill else os.path.join(ROOT, DEFAULT_CODISTILL)
    env = child_env()

    have_codistill = os.path.isfile(codistill) and os.access(codistill, os.X_OK)
    if not have_codistill:
        print(f"codistill executable not found at {codistill}: build it with "
              f"`swift build -c release` (or pass --codistill PATH)", flush=True)
    have_torch, torch_detail = torch_available(args.python)
    if not have_torch:
        print(f"PyTorch not available ({torch_detail}): run `bash bench/setup_torch_venv.sh`; "
              "showing codistill figures only", flush=True)
    if not have_codistill:
        return 1

    systems = {
        "codistill": (lambda r: [codistill, "bench", "scaling", "--method", "runs", "--ranks", str(r),
                                 "--batch", str(args.batch), "--steps", str(args.steps)],
                      ("samples_per_s", "step_ms", "allreduce_ms")),
    }
    if have_torch:
        systems["pytorch"] = (lambda r: [args.python, TORCH_SCRIPT, "--ranks", str(r),
                                         "--batch", str(args.batch), "--steps", str(args.steps)],
                              ("samples_per_s", "step_ms"))

    results = {s: {} for s in systems}
    failures = []
    for i, r in enumerate(counts):
        order = list(systems)
        if i % 2 == 1:
            order.reverse()
        for s in order:
            make_cmd, keys = systems[s]
            cmd = make_cmd(r)
            try:
                obj = pick(json_lines(run(cmd, env)), r, keys)
            except RunError as e:
                failures.append(f"{s} with {r} rank(s): {e}")
                log(f"{s:9s} ranks {r}: FAILED: {e}")
                continue
            results[s][r] = obj
            extra = f", allreduce {obj['allreduce_ms']:.2f} ms" if "allreduce_ms" in obj else ""
            log(f"{s:9s} ranks {r}: {obj['samples_per_s']:10.1f} samples/s, "
                f"step {obj['step_ms']:.1f} ms{extra}")

    def sps(s, r):
        return results.get(s, {}).get(r, {}).get("samples_per_s")

    def speedup(s, r):
        base = sps(s, 1)
        return ratio(sps(s, r), base) if base else "–"

    def share(r):
        o = results["codistill"].get(r)
        if not o or not o["step_ms"]:
            return "–"
        return f"{100 * o['allreduce_ms'] / o['step_ms']:.1f}%"

    print()
    print(f"Scaling benchmark: cnn, batch {args.batch} per rank, {args.steps} timed steps, "
          f"1 thread per rank" + (f"; pytorch {torch_detail}" if have_torch else ""))
    print()
    if have_torch:
        print("| ranks | codistill samples/s | speed-up vs 1 rank | allreduce share of step "
              "| pytorch DDP samples/s | speed-up | codistill/pytorch |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in counts:
            print(f"| {r} | {fmt(sps('codistill', r))} | {speedup('codistill', r)} | {share(r)} "
                  f"| {fmt(sps('pytorch', r))} | {speedup('pytorch', r)} "
                  f"| {ratio(sps('codistill', r), sps('pytorch', r))} |")
    else:
        print("| ranks | codistill samples/s | speed-up vs 1 rank | allreduce share of step |")
        print("|---:|---:|---:|---:|")
        for r in counts:
            print(f"| {r} | {fmt(sps('codistill', r))} | {speedup('codistill', r)} | {share(r)} |")

    if failures:
        print()
        print(f"{len(failures)} run(s) failed:")
        for f in failures:
            print(f"- {f.splitlines()[0]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
