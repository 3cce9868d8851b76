#!/usr/bin/env bash
# Creates .venv-bench (project root) with a CPU build of PyTorch, numpy and
# matplotlib, for bench/torch_reference.py, bench/compare_engine.py and
# Tests/EngineTests/Golden/make_golden.py.
#
# Idempotent: if .venv-bench already imports torch, numpy and matplotlib it does
# nothing. Packages come from PyPI plus any local wheel folder pip is configured
# with (find-links). A CPU-only torch wheel (version "X.Y.Z+cpu", ~190 MB, no
# nvidia-* dependencies) is preferred when pip can see one; otherwise the
# regular PyPI wheel is installed (which pulls several GB of nvidia-* CUDA
# packages but works on CPU all the same).
#
# Usage: bash bench/setup_torch_venv.sh        (env PYTHON=python3.11 to pick the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-bench"
PY="${PYTHON:-python3}"

check() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import torch, numpy, matplotlib
x = torch.ones(2, 2, requires_grad=True)
(x * x).sum().backward()
assert float(x.grad.sum()) == 8.0
print(f"torch {torch.__version__}, numpy {numpy.__version__}, matplotlib {matplotlib.__version__}")
PY
}

if [ -x "$VENV/bin/python" ] && check; then
    echo "setup_torch_venv: $VENV already works; nothing to do."
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup_torch_venv: creating $VENV with $("$PY" --version 2>&1)"
    "$PY" -m venv "$VENV"
fi
VPIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# Newest CPU-only torch pip can see (e.g. 2.13.0+cpu from a find-links folder);
# `pip index versions` lists versions newest first.
CPU_VER="$("${VPIP[@]}" index versions torch 2>/dev/null \
    | sed -n 's/^Available versions: //p' | tr ',' '\n' | tr -d ' ' \
    | grep -E '\+cpu$' | head -n 1 || true)"

if [ -n "$CPU_VER" ]; then
    echo "setup_torch_venv: installing CPU-only torch==$CPU_VER"
    TORCH_SPEC="torch==$CPU_VER"
else
    echo "setup_torch_venv: no CPU-only torch wheel visible; installing PyPI's torch (pulls nvidia-* packages)"
    TORCH_SPEC="torch"
fi

"${VPIP[@]}" install --only-binary torch "$TORCH_SPEC" numpy matplotlib

if ! check; then
    echo "setup_torch_venv: installed, but 'import torch' still fails in $VENV" >&2
    exit 1
fi
echo "setup_torch_venv: done."
