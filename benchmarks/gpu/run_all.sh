#!/usr/bin/env bash
# One prepared GPU run for issue 9 (see README.md beside this file): installs the
# peers from carried wheels, runs the Triton kernel tests on the GPU, then prints
# the benchmark table. Designed to finish in under 8 minutes on one H100/H200:
# the tests are capped at 150 s and the benchmark stops starting new cells
# when the script's TOTAL_S (450 s) is nearly spent (it always prints its table).
set -uo pipefail
START=$(date +%s)
TOTAL_S=${TOTAL_S:-450}   # whole script, install and tests included (limit: 8 minutes)
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
SITE=/tmp/softmaxkit-site

# Peers (liger-kernel, cut-cross-entropy) come as wheels in .whl/ (fetch_wheels.sh
# makes them here; the device machine has no network). Without them those
# columns say "not importable".
if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl && export PYTHONPATH="$SITE"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv || true
$PY -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, "cuda", torch.cuda.is_available())'

echo "=== GPU tests: tests/test_triton_kernels.py ==="
XDIST=$($PY -c 'import xdist' 2>/dev/null && echo "-n 4")  # kernels compile in parallel
timeout 150 $PY -m pytest tests/test_triton_kernels.py -q -x -p no:cacheprovider $XDIST \
    || echo "=== GPU tests FAILED or timed out (rc=$?) ==="

echo "=== benchmark ==="
# Whatever the tests left of TOTAL_S, less a margin for the cell running at the
# deadline and the table; the benchmark starts no new cell past its budget.
LEFT=$(( TOTAL_S - ($(date +%s) - START) ))
BUDGET=$(( LEFT - 45 > 60 ? LEFT - 45 : 60 ))
timeout $(( BUDGET + 40 )) $PY benchmarks/gpu/bench_gpu.py --budget-s "$BUDGET" "$@"
echo "=== run_all.sh done in $(( $(date +%s) - START )) s ==="
