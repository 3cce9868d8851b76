#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks for codistill (Open MPI, HDF5, OpenBLAS,
# pkg-config, the Fashion-MNIST dataset) and builds the release binary.
# Other systems: see INSTALL.md.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libopenblas-dev zlib1g-dev pkg-config dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: no Swift toolchain on PATH; install Swift 6 (see INSTALL.md)" >&2; exit 1; }
swift build -c release --product codistill
echo "setup: built $(pwd)/.build/release/codistill"
