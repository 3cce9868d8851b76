#!/usr/bin/env python3
"""Load a codistill HDF5 checkpoint into the equivalent PyTorch model and check it.

    python docs/load_checkpoint_torch.py CHECKPOINT.h5 [--expect-logits v0,v1,...]

Builds the reference CNN named by the checkpoint's `model` attribute, loads /model with
load_state_dict(strict=True), checks every tensor bit for bit, restores SGD momentum into a
torch.optim.SGD, and (with --expect-logits) compares eval-mode logits on a fixed input
(linspace(-1, 1) over the image) with codistill's. Prints "ok ..." and exits 0 on success.
Used by Tests/CheckpointTests (testPyTorchLoadsItStrictly); see docs/CHECKPOINTS.md.
"""
import argparse
import json
import sys
from collections import OrderedDict

import h5py
import numpy as np
import torch
from torch import nn


# --- the lines docs/CHECKPOINTS.md shows -------------------------------------------------
def load_state_dict(path):
    """/model of a codistill checkpoint as a PyTorch state_dict."""
    state = OrderedDict()
    with h5py.File(path, "r") as f:
        for name, ds in f["model"].items():
            if name.endswith("num_batches_tracked"):
                state[name] = torch.tensor(ds[()], dtype=torch.int64)   # int64 scalar
            else:
                state[name] = torch.from_numpy(ds[()])                  # float32, real shape
    return state
# ------------------------------------------------------------------------------------------


def cnn(in_channels, height, width, classes):
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2)),
        classifier=nn.Sequential(
            nn.Flatten(), nn.Linear(64 * (height // 4) * (width // 4), 128), nn.ReLU(), nn.Linear(128, classes)),
    ))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--expect-logits", help="comma-separated logits codistill computes on the linspace input")
    args = ap.parse_args()

    with h5py.File(args.checkpoint, "r") as f:
        assert f.attrs["format"] == "codistill-checkpoint", f.attrs.get("format")
        spec = json.loads(f.attrs["model"])
        step = int(f.attrs["step"])
        config = json.loads(f.attrs["config"])
    if spec["name"] != "cnn":
        sys.exit(f"this check builds the reference CNN only; the checkpoint holds '{spec['name']}'")
    c, h, w = spec["inputShape"]
    model = cnn(c, h, w, spec["classes"])

    state = load_state_dict(args.checkpoint)
    model.load_state_dict(state, strict=True)

    # Bit-for-bit: what PyTorch now holds is what the file holds.
    ours = model.state_dict()
    assert list(ours) and set(ours) == set(state)
    for name, t in state.items():
        assert ours[name].dtype == t.dtype and ours[name].shape == t.shape, name
        assert torch.equal(ours[name], t), name
    assert ours["features.1.num_batches_tracked"].dtype == torch.int64

    # SGD momentum goes to torch.optim.SGD's momentum_buffer, parameter by parameter.
    with h5py.File(args.checkpoint, "r") as f:
        if "optimizer" in f and f["optimizer"].attrs["kind"] == "sgd" and "momentum" in f["optimizer"]:
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for name, p in model.named_parameters():
                opt.state[p]["momentum_buffer"] = torch.from_numpy(f["optimizer/momentum"][name][()])
            assert len(opt.state) == len(list(model.parameters()))

    model.eval()
    x = torch.linspace(-1, 1, c * h * w).reshape(1, c, h, w)
    with torch.no_grad():
        logits = model(x)[0]
    if args.expect_logits:
        want = torch.tensor([float(v) for v in args.expect_logits.split(",")])
        diff = (logits - want).abs().max().item()
        if not diff < 1e-4:
            sys.exit(f"logits differ by {diff}: torch {logits.tolist()} vs codistill {want.tolist()}")
        print(f"ok: logits match codistill (max |diff| {diff:.2e})")
    print(f"ok: {args.checkpoint} (step {step}, model {spec['name']}, lr {config.get('lr')}) loaded strictly: "
          f"{len(state)} tensors, {sum(t.numel() for n, t in state.items() if not n.endswith('tracked'))} values")


if __name__ == "__main__":
    main()
