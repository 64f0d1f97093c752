#!/usr/bin/env bash
# Every GPU check of issue 14 in ONE device call of under 10 minutes (a session has 15 device minutes): the GPU work
# runs in sequence while the CPU comparison (digits benchmark, --device cpu) runs alongside on the machine's cores.
#
#   bash benchmarks/gpu/wheels.sh                     # here, once (the packages the GPU image lacks -> .whl/)
#   run(command="bash benchmarks/gpu/one_call.sh", carry=[".whl"], timeout_s=590)
#
# GPU sequence (each with its own timeout, so the summary always prints): pytest -m gpu (flow core), the digits
# benchmark on cuda, the digits demo (200 sources) on cuda, the throughput benchmark, pytest -m gpu (commands).
# Outputs land in $OUT; summary.txt (benchmarks/gpu/summary.py) holds every "Done when" figure.
set -uo pipefail
cd "$(dirname "$0")/../.."
RESULT=${OUT:-/tmp/gpu_check}  # the device tool returns at most 8 files: everything is packed into one archive
OUT=/tmp/gpu_work
mkdir -p "$OUT" "$RESULT"
PY=${PY:-python3}
T0=$SECONDS
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src"
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
{
  date -u; nproc; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  $PY -c "import torch, flowevo; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
left() { echo $(( ${1} - (SECONDS - T0) )); }
step() {  # step NAME LIMIT CMD...: run CMD with min(LIMIT, time left before 540 s), log to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  local rest; rest=$(left 540); (( rest < limit )) && limit=$rest
  (( limit < 20 )) && { echo "$name skipped: no time left" | tee "$OUT/$name.log"; return; }
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "$name exit $? after $((SECONDS - start)) s (limit $limit)" | tee -a "$OUT/$name.log"
}
# CPU side, alongside: the same digits benchmark on the CPU (8 threads) for the wall-time ratio.
( start=$SECONDS
  CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=8 timeout 520 $PY -m flowevo.cli benchmark digits --n 200 --ablation-seeds 1 \
    --device cpu --out "$OUT/digits_cpu" --quiet > "$OUT/digits_cpu.log" 2>&1
  echo "digits_cpu exit $? after $((SECONDS - start)) s" | tee -a "$OUT/digits_cpu.log" ) &
CPU=$!
step pytest 100 $PY -m pytest -m gpu tests/gpu/test_flow_cuda.py -q -p no:cacheprovider -rs
step digits_cuda 150 $PY -m flowevo.cli benchmark digits --n 200 --ablation-seeds 1 --device cuda \
  --out "$OUT/digits_cuda" --quiet
step demo_cuda 90 sh -c "$PY -m flowevo.cli demo digits --n 200 --device cuda --run-dir $OUT/demo_cuda --quiet --json \
  > $OUT/demo_cuda.json"
step throughput 170 $PY -m flowevo.cli benchmark throughput --device cuda --captures none,graph,compile \
  --out "$OUT/throughput" --quiet
step commands 400 $PY -m pytest -m gpu tests/gpu/test_commands_cuda.py -q -p no:cacheprovider -rs --durations=12
rest=$(left 560); (( rest > 0 )) && { sleep 1; timeout "$rest" tail --pid=$CPU -f /dev/null; }
kill $CPU 2>/dev/null
$PY benchmarks/gpu/summary.py "$OUT" | tee "$OUT/summary.txt"
cp "$OUT/summary.txt" "$RESULT/summary.txt"
tar czf "$RESULT/gpu_check.tgz" -C "$OUT" --exclude='*.pt' --exclude='*.npz' . && ls -la "$RESULT"
