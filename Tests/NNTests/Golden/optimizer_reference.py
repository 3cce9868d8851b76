"""Reference trajectories of torch.optim for OptimizerTests.swift (values pasted there).

Run: .venv-bench/bin/python Tests/NNTests/Golden/optimizer_reference.py
Parameters p0 = [1.0, -2.0, 0.5]; the gradient at step t (0-based) is g_t = [0.3, -0.1*t, 0.7 - 0.2*t] + 0.5*p
(a parameter-dependent gradient, so weight decay and momentum interact); 5 steps at lr 0.1.
"""
import torch

def run(make):
    p = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = make([p])
    for t in range(5):
        opt.zero_grad()
        g = torch.tensor([0.3, -0.1 * t, 0.7 - 0.2 * t], dtype=torch.float64) + 0.5 * p.detach()
        p.grad = g
        opt.step()
    return [round(v, 9) for v in p.detach().tolist()]

cases = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    "sgdNesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
    "sgdPlain": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "adam": lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=0.01),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.01),
}
for name, make in cases.items():
    print(f'"{name}": {run(make)},')
