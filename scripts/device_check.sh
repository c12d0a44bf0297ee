#!/usr/bin/env bash
# Everything GPU-bound, in one run on a lent GPU machine (its device time is 15 minutes in
# all, start included): the tests marked gpu, then the GPU figures of bench_interactive
# (#16: a later Comparison.rank under 50 ms at 2 x 200,000) and bench_embed (the visdiff
# path against the bare forward pass). Fetch the wheels first (scripts/device_wheels.sh),
# then, through the device tool:
#
#   run(command="bash scripts/device_check.sh", carry=[".whl"], timeout_s=540)
#
# Each step writes its log to $OUT, kept even when a later step fails; the exit status is
# the first failing step's.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device-check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
STEP_SECONDS=${STEP_SECONDS:-240}
status=0
step() {
    local name=$1
    shift
    echo "== $name: $*"
    timeout "$STEP_SECONDS" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        echo "== $name failed (exit $rc)"
        [ "$status" -ne 0 ] || status=$rc
    fi
}
step machine bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; \
    python3 -c 'import torch, open_clip; print(torch.__version__, torch.cuda.is_available(), open_clip.__version__)'"
step gpu_tests python3 -m pytest -q -m gpu -p no:cacheprovider tests
step interactive python3 benchmarks/bench_interactive.py --device cuda --sizes 20000 200000
step embed python3 benchmarks/bench_embed.py --scorer vit-b-32-random --device cuda --batch-size 256 -n 4096
exit "$status"
