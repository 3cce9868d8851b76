#!/usr/bin/env python3
"""The miniature of Anil et al. 2018 ("Large scale distributed neural network training through
online distillation") on Fashion-MNIST, end to end: trains every configuration for several seeds
with the real binary under mpirun, measures accuracy, churn and ensembles with `codistill eval`,
and writes docs/EXPERIMENTS.md with tables (mean and spread over seeds) and PNG learning curves.

    python3 experiments/paper/run.py [--seeds 1,2,3] [--model mlp] [--steps 1404] [--out runs/paper]

Standard library only for the runs; the curves need matplotlib (the script uses
.venv-bench/bin/python for them when present, see bench/setup_torch_venv.sh). Finished runs are
kept and skipped on a rerun, so an interrupted sweep continues where it stopped.
"""
import argparse, csv, json, os, statistics, subprocess, sys, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, ".build", "release", "codistill")

def mpirun(np_, args, log):
    env = dict(os.environ)
    if os.getuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = ["mpirun", "-np", str(np_), "--oversubscribe", "--bind-to", "none", BIN] + args
    t0 = time.time()
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if rc != 0:
        sys.exit(f"run failed ({rc}): {' '.join(cmd)}; see {log}")
    return time.time() - t0

def codistill(args):
    return json.loads(subprocess.check_output([BIN] + args, text=True))

# Each configuration: ranks, groups and extra flags. Codistilled runs: 2 groups of 2 ranks, each
# group with a batch of 2 x 64 = 128, the same as the 2-rank baseline; the 4-rank sync baseline
# uses the same 4 workers for one model with a doubled batch (256). All run the same number of steps.
def configs(a):
    base = ["--model", a.model, "--steps", str(a.steps), "--batch", "64", "--eval-every", str(a.eval_every),
            "--log-every", "100", "--checkpoint-every", "0"]
    cod = ["--groups", "2", "--burn-in", str(a.burn_in), "--distill-weight", str(a.weight)]
    return {
        "sync-2": (2, base),
        "sync-4": (4, base),
        "codistill-2x2": (4, base + cod + ["--exchange-every", "50"]),
        "codistill-2x2-every250": (4, base + cod + ["--exchange-every", "250"]),
        "codistill-2x2-every1000": (4, base + cod + ["--exchange-every", "1000"]),
        "codistill-2x2-same-data": (4, base + cod + ["--exchange-every", "50", "--data-split", "same"]),
        "sync-2-label-smoothing": (2, base + ["--label-smoothing", "0.1"]),
        # Where codistillation did not win: a lighter distillation term, a longer burn-in, and
        # Sodhani et al.'s relaxed weight decay after burn-in.
        "codistill-2x2-weight0.5": (4, base + ["--groups", "2", "--burn-in", str(a.burn_in), "--distill-weight", "0.5", "--exchange-every", "50"]),
        "codistill-2x2-burnin500": (4, base + ["--groups", "2", "--burn-in", "500", "--distill-weight", str(a.weight), "--exchange-every", "50"]),
        "codistill-2x2-wd-after-burnin-1e-4": (4, base + cod + ["--exchange-every", "50", "--weight-decay-after-burn-in", "1e-4"]),
    }

def read_metrics(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append({k: (float(v) if v not in ("", None) else None) for k, v in r.items()})
    return rows

def mean_sd(xs, digits=2):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m = statistics.mean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{m:.{digits}f} ± {sd:.{digits}f}"

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--steps", type=int, default=1404)   # 3 epochs of Fashion-MNIST at a batch of 128
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--burn-in", type=int, default=200)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "paper"))
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "EXPERIMENTS.md"))
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if not os.access(BIN, os.X_OK):
        sys.exit(f"no binary at {BIN}: run swift build -c release first")

    results = {}   # config -> seed -> {group -> (ckpt, metrics rows)}
    wall = {}
    for name, (np_, args) in configs(a).items():
        for seed in seeds:
            run = os.path.join(a.out, name, f"seed-{seed}")
            groups = 2 if "--groups" in args else 1
            final = [os.path.join(run, f"group-{g}", f"step-{a.steps:08d}.h5") for g in range(groups)]
            if not all(os.path.exists(p) for p in final):
                os.makedirs(run, exist_ok=True)
                secs = mpirun(np_, ["train"] + args + ["--seed", str(seed), "--checkpoint-dir", run], os.path.join(run, "log.txt"))
                print(f"{name} seed {seed}: {secs:.0f} s", flush=True)
                wall.setdefault(name, []).append(secs)
            results.setdefault(name, {})[seed] = {
                g: (final[g], read_metrics(os.path.join(run, f"group-{g}", "metrics.csv"))) for g in range(groups)}

    def acc(ckpt):
        return 100 * codistill(["eval", ckpt, "--json"])["results"][0]["accuracy"]

    lines = ["# Codistillation in miniature: Fashion-MNIST", "",
             f"Generated by `python3 experiments/paper/run.py` on {time.strftime('%Y-%m-%d')} (model `{a.model}`, "
             f"{a.steps} steps, 64 samples per rank, SGD momentum 0.9, lr 0.05 cosine, weight decay 5e-4; "
             f"codistillation: 2 groups of 2 ranks, burn-in {a.burn_in} steps, distillation weight {a.weight}, "
             f"temperature 1; seeds {a.seeds}; mean ± standard deviation over seeds). Every figure below comes from "
             "the checkpoints and metrics this script wrote.", ""]

    # (a), (b), (c), (e): test accuracy of each model.
    lines += ["## Test accuracy (%)", "",
              "| configuration | workers | models | test accuracy | final test loss |", "|---|---:|---:|---:|---:|"]
    accs = {}
    for name, (np_, args) in configs(a).items():
        per_model, losses = [], []
        for seed, groups in results[name].items():
            for g, (ckpt, rows) in groups.items():
                r = codistill(["eval", ckpt, "--json"])["results"][0]
                per_model.append(100 * r["accuracy"]); losses.append(r["loss"])
        accs[name] = per_model
        lines.append(f"| `{name}` | {np_} | {len(results[name][seeds[0]])} per run | {mean_sd(per_model)} | {mean_sd(losses, 4)} |")
    lines.append("")

    # (e) ensemble of two independently trained 2-rank models (different seeds).
    ens = []
    for s1, s2 in zip(seeds, seeds[1:] + seeds[:1]):
        r = codistill(["eval", results["sync-2"][s1][0][0], results["sync-2"][s2][0][0], "--ensemble", "--churn", "--json"])
        ens.append(r)
    lines += ["## Ensembles and churn", "",
              "Prediction churn (Anil et al. §4): the share of test examples on which two models disagree, and the mean",
              "absolute difference of their predicted probabilities.", "",
              "| comparison | accuracy (%) | disagreement (%) | mean abs prob diff |", "|---|---:|---:|---:|"]
    lines.append(f"| 2-model ensemble of `sync-2` runs (seed pairs) | {mean_sd([100 * e['results'][-1]['accuracy'] for e in ens])} | "
                 f"{mean_sd([100 * e['churn']['disagreement'] for e in ens])} | "
                 f"{mean_sd([e['churn']['mean_abs_prob_diff'] for e in ens], 4)} |")
    # (d) churn between retrainings with different seeds: baseline vs codistilled (group 0 of each run).
    for name in ["sync-2", "codistill-2x2"]:
        ch = [codistill(["eval", results[name][s1][0][0], results[name][s2][0][0], "--churn", "--json"])["churn"]
              for s1, s2 in zip(seeds, seeds[1:] + seeds[:1])]
        lines.append(f"| retrainings of `{name}` with different seeds | - | {mean_sd([100 * c['disagreement'] for c in ch])} | "
                     f"{mean_sd([c['mean_abs_prob_diff'] for c in ch], 4)} |")
    # Agreement between the two groups of one codistilled run vs two independent models.
    ch = [codistill(["eval", results["codistill-2x2"][s][0][0], results["codistill-2x2"][s][1][0], "--churn", "--json"])["churn"] for s in seeds]
    lines.append(f"| the two groups of one `codistill-2x2` run | - | {mean_sd([100 * c['disagreement'] for c in ch])} | "
                 f"{mean_sd([c['mean_abs_prob_diff'] for c in ch], 4)} |")
    lines.append("")

    # Curves: test accuracy and loss against steps, seed 1, group 0.
    curves = os.path.join(os.path.dirname(a.doc), "experiments")
    os.makedirs(curves, exist_ok=True)
    py = os.path.join(ROOT, ".venv-bench", "bin", "python")
    py = py if os.access(py, os.X_OK) else sys.executable
    for tag, names in [("accuracy-configurations", ["sync-2", "sync-4", "codistill-2x2", "sync-2-label-smoothing"]),
                       ("accuracy-exchange-interval", ["codistill-2x2", "codistill-2x2-every250", "codistill-2x2-every1000", "codistill-2x2-same-data"])]:
        files = [os.path.join(a.out, n, f"seed-{seeds[0]}", "group-0", "metrics.csv") for n in names]
        png = os.path.join(curves, f"{tag}.png")
        rc = subprocess.call([py, os.path.join(ROOT, "scripts", "plot_metrics.py"), png] + files + ["--labels", ",".join(names),
                              "--title", f"Fashion-MNIST, {a.model}, seed {seeds[0]}, group 0"])
        if rc == 0:
            lines += [f"![{tag}](experiments/{tag}.png)", ""]
        else:
            lines += [f"(curves for {tag} not drawn: matplotlib missing)", ""]
    findings = os.path.join(os.path.dirname(__file__), "FINDINGS.md")
    if os.path.exists(findings):
        lines += [open(findings).read()]
    with open(a.doc, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {a.doc}")

if __name__ == "__main__":
    main()
