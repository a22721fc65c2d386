#!/usr/bin/env bash
# Download the peers' wheels into .whl/ (git-ignored) so that a device run can
# carry them: the GPU machine cannot reach a package registry. Both are pure
# Python (their Triton kernels compile on the machine); torch and triton are
# already installed there, so no dependencies are fetched.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl
$PY -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl liger-kernel==0.8.5 cut-cross-entropy==25.1.1
ls -l .whl
