#!/usr/bin/env python3
"""Draw learning curves from codistill metrics files into one PNG.

    python3 scripts/plot_metrics.py OUT.png METRICS [METRICS ...] [--labels a,b] [--title T]

METRICS are the files `codistill train --metrics` writes: CSV with the header
step,epoch,time,loss,train_acc,lr,test_loss,test_acc,samples_per_s,allreduce_s
(empty cells where not measured) or JSON Lines (.jsonl, same keys, a missing key
means not measured). Two panels, one colour per file:

  left:  training loss vs step (solid), test loss where measured (dashed, dots)
  right: test accuracy in % vs step where measured (line, dots), training
         accuracy faint behind it

Steps logged twice (a resumed run) keep the last value of each column. Accuracies stored as
fractions (0-1) are shown in %. Needs matplotlib (Agg backend, no display):
.venv-bench/bin/python has it (bash bench/setup_torch_venv.sh).
"""

import argparse
import csv
import json
import math
import os
import sys

COLUMNS = ("step", "epoch", "time", "loss", "train_acc", "lr", "test_loss", "test_acc",
           "samples_per_s", "allreduce_s")


def number(v):
    """float(v), or None for empty / missing / non-finite / unparsable cells."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, str):
        v = v.strip()
        if not v:
            return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def is_jsonl(path: str) -> bool:
    if path.endswith((".jsonl", ".ndjson")):
        return True
    if path.endswith(".csv"):
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def read_metrics(path: str) -> list:
    """Rows as dicts {column: float or None}, sorted by step; repeated steps merged, last value wins."""
    raw = []
    if is_jsonl(path):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    print(f"{path}:{n}: skipping a line that is not JSON (truncated write?)", file=sys.stderr)
                    continue
                if isinstance(obj, dict):
                    raw.append(obj)
    else:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "step" not in [c.strip() for c in reader.fieldnames]:
                raise ValueError(f"{path}: no CSV header with a 'step' column "
                                 f"(expected {','.join(COLUMNS)})")
            for row in reader:
                raw.append({(k or "").strip(): v for k, v in row.items()})
    by_step = {}
    for obj in raw:
        row = {c: number(obj.get(c)) for c in COLUMNS}
        if row["step"] is None:
            continue
        prev = by_step.get(row["step"])
        if prev is not None:  # re-logged after a resume: newer measured values win, gaps keep older ones
            row = {c: row[c] if row[c] is not None else prev[c] for c in COLUMNS}
        by_step[row["step"]] = row
    return [by_step[s] for s in sorted(by_step)]


def series(rows: list, key: str, scale_percent: bool = False) -> tuple:
    pts = [(r["step"], r[key]) for r in rows if r[key] is not None]
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    if scale_percent and ys and max(ys) <= 1.0:
        ys = [100 * y for y in ys]
    return xs, ys


def default_labels(paths: list) -> list:
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(names)) == len(names):
        return names
    # Same file names in different folders (runs/a/metrics.csv, runs/b/metrics.csv): add the folder.
    return [os.path.join(os.path.basename(os.path.dirname(os.path.abspath(p))), n)
            for p, n in zip(paths, names)]


def main() -> int:
    ap = argparse.ArgumentParser(description="Plot codistill learning curves (loss, accuracy) to a PNG.")
    ap.add_argument("out", metavar="OUT.png", help="image to write")
    ap.add_argument("metrics", metavar="METRICS", nargs="+", help="metrics files (.csv or .jsonl)")
    ap.add_argument("--labels", help="comma-separated legend labels, one per metrics file")
    ap.add_argument("--title", help="figure title")
    args = ap.parse_args()

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: run with .venv-bench/bin/python (bash bench/setup_torch_venv.sh) "
              "or pip install matplotlib", file=sys.stderr)
        return 2

    if args.labels is not None:
        labels = [s.strip() for s in args.labels.split(",")]
        if len(labels) != len(args.metrics):
            ap.error(f"--labels has {len(labels)} label(s) for {len(args.metrics)} metrics file(s)")
    else:
        labels = default_labels(args.metrics)

    runs = []
    for path, label in zip(args.metrics, labels):
        try:
            rows = read_metrics(path)
        except (OSError, ValueError) as e:
            print(f"plot_metrics: {e}", file=sys.stderr)
            return 1
        if not rows:
            print(f"plot_metrics: {path}: no rows with a step; skipping", file=sys.stderr)
            continue
        runs.append((label, rows))
    if not runs:
        print("plot_metrics: nothing to plot", file=sys.stderr)
        return 1

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    any_test_loss = any_test_acc = any_train_acc = False
    for i, (label, rows) in enumerate(runs):
        c = colors[i % len(colors)]
        xs, ys = series(rows, "loss")
        if xs:
            ax_loss.plot(xs, ys, color=c, lw=1.2, label=f"{label} train")
        xs, ys = series(rows, "test_loss")
        if xs:
            any_test_loss = True
            ax_loss.plot(xs, ys, color=c, lw=1.4, ls="--", marker="o", ms=3.5, label=f"{label} test")
        xs, ys = series(rows, "train_acc", scale_percent=True)
        if xs:
            any_train_acc = True
            ax_acc.plot(xs, ys, color=c, lw=1.0, alpha=0.3, label=f"{label} train")
        xs, ys = series(rows, "test_acc", scale_percent=True)
        if xs:
            any_test_acc = True
            ax_acc.plot(xs, ys, color=c, lw=1.6, marker="o", ms=3.5, label=f"{label} test")
            print(f"{label}: final test accuracy {ys[-1]:.2f}% at step {int(xs[-1])}"
                  f" (best {max(ys):.2f}%)")
        elif rows:
            print(f"{label}: {len(rows)} rows up to step {int(rows[-1]['step'])}, no test accuracy")

    ax_loss.set_title("Loss" + (" (dashed: test)" if any_test_loss else ""))
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_title("Test accuracy" + (" (faint: training)" if any_train_acc else ""))
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy (%)")
    if not any_test_acc:
        ax_acc.text(0.5, 0.5, "no test accuracy in these files", transform=ax_acc.transAxes,
                    ha="center", va="center", color="0.4")
    from matplotlib.ticker import MaxNLocator
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small", loc="best")
    if args.title:
        fig.suptitle(args.title)

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
