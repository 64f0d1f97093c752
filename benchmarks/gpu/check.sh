#!/usr/bin/env bash
# GPU check for issue 14 (flow core, throughput, every command on CUDA): calls on a CUDA machine, one per PARTS
# value, ~5 minutes each on an H200 (estimated, never run: each part has a timeout so the summary prints within
# 9 minutes).
#
# Before (on a machine with PyPI): bash benchmarks/gpu/wheels.sh   (the packages the GPU image lacks -> .whl/)
# Then, with the device tool, from the repository root:
#   run(command="bash benchmarks/gpu/check.sh", carry=[".whl"], timeout_s=600)
# Parts (PARTS, space-separated; default "throughput tests"); each part fits one 10-minute call:
#   throughput  flowevo benchmark throughput --device cuda: decodes / s for batches 1,024 .. 1,048,576 per precision
#               (CUDA events) against the matmul bound at that precision measured in the same run, the capture
#               modes (eager, CUDA graph, torch.compile, both) at fp32 / 4,096 and tf32 / 65,536, round-trip error
#               per precision, end-to-end digits REO on the GPU.
#   tests       pytest -m gpu tests/gpu/test_flow_cuda.py, then the CPU flow tests (tests/flow, not slow) under this torch.
#   commands    pytest -m gpu tests/gpu/test_commands_cuda.py: train, optimize (one generation exactly, whole runs
#               statistically, resume cpu <-> cuda, a process-pool backend), sample, the adapter, demos toy / digits,
#               benchmarks toy / digits / cost / profile / queries / constrained on CUDA against the CPU.
#   demo        flowevo demo digits --n 200 with --device cuda and --device cpu: metrics side by side (seed noise).
#   digits      flowevo benchmark digits --n 200 --ablation-seeds 1 with --device cuda and --device cpu (the same
#               workload): metrics side by side (seed noise) and the wall-time ratio (bar: cuda >= 5x faster).
# e.g. run(command="PARTS=commands bash benchmarks/gpu/check.sh", carry=[".whl"], timeout_s=600), then PARTS=demo,
# then PARTS=digits.
# Everything lands in $OUT (or /tmp/gpu_check); summary.txt holds every "Done when" figure and is printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
PARTS=${PARTS:-"throughput tests"}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
{
  date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  $PY -c "import torch, flowevo; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'device', torch.cuda.get_device_name(0), 'flowevo', flowevo.__file__)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
has() { [[ " $PARTS " == *" $1 "* ]]; }

if has throughput; then
  echo "== throughput"; start=$SECONDS
  timeout 300 $PY -m flowevo.cli benchmark throughput --device cuda --out "$OUT/throughput" --quiet \
    > "$OUT/throughput.log" 2>&1
  echo "throughput exit $? after $((SECONDS - start)) s" | tee -a "$OUT/throughput.log"
fi
if has tests; then
  echo "== tests"; start=$SECONDS
  timeout 150 $PY -m pytest -m gpu tests/gpu/test_flow_cuda.py -q -p no:cacheprovider -rs > "$OUT/pytest.log" 2>&1
  echo "pytest -m gpu exit $? after $((SECONDS - start)) s" | tee -a "$OUT/pytest.log"
  timeout 80 $PY -m pytest tests/flow -m "not slow" -q -p no:cacheprovider >> "$OUT/pytest.log" 2>&1
  echo "pytest tests/flow (CPU, not slow) exit $? after $((SECONDS - start)) s" | tee -a "$OUT/pytest.log"
fi
if has commands; then
  echo "== commands"; start=$SECONDS
  timeout 540 $PY -m pytest -m gpu tests/gpu/test_commands_cuda.py -q -p no:cacheprovider -rs --durations=12 \
    > "$OUT/commands.log" 2>&1
  echo "pytest -m gpu tests/gpu/test_commands_cuda.py exit $? after $((SECONDS - start)) s" | tee -a "$OUT/commands.log"
fi
if has demo; then
  echo "== demo"
  for dev in cuda cpu; do  # cuda first: its timeout is short, the CPU gets the rest of the call
    start=$SECONDS; limit=$([[ $dev == cuda ]] && echo 180 || echo 380)
    timeout $limit $PY -m flowevo.cli demo digits --n 200 --device $dev --run-dir "$OUT/demo_$dev" --quiet --json \
      > "$OUT/demo_$dev.json" 2> "$OUT/demo_$dev.log"
    echo "demo digits --device $dev exit $? after $((SECONDS - start)) s" | tee -a "$OUT/demo_$dev.log"
  done
fi
if has digits; then
  echo "== digits"
  for dev in cuda cpu; do
    start=$SECONDS; limit=$([[ $dev == cuda ]] && echo 180 || echo 390)
    timeout $limit $PY -m flowevo.cli benchmark digits --n 200 --ablation-seeds 1 --device $dev --out "$OUT/digits_$dev" \
      --quiet > "$OUT/digits_$dev.log" 2>&1
    echo "digits --device $dev exit $? after $((SECONDS - start)) s" | tee -a "$OUT/digits_$dev.log"
  done
fi
$PY benchmarks/gpu/summary.py "$OUT" | tee "$OUT/summary.txt"
