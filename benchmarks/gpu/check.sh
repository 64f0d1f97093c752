#!/usr/bin/env bash
# GPU check for issue 14 (flow core and throughput): one call on a CUDA machine, ~5 minutes on an H200
# (estimated, never run: each part has a timeout so the summary prints within 9 minutes).
#
# Before (on a machine with PyPI): bash benchmarks/gpu/wheels.sh   (the packages the GPU image lacks -> .whl/)
# Then, with the device tool, from the repository root:
#   run(command="bash benchmarks/gpu/check.sh", carry=[".whl"], timeout_s=600)
# Parts (PARTS, space-separated; default "throughput tests"):
#   throughput  flowevo benchmark throughput --device cuda: decodes / s for batches 1,024 .. 1,048,576 per precision
#               (CUDA events) against the matmul bound at that precision measured in the same run, the capture
#               modes (eager, CUDA graph, torch.compile, both) at fp32 / 4,096 and tf32 / 65,536, round-trip error
#               per precision, end-to-end digits REO on the GPU.
#   tests       pytest -m gpu (tests/gpu), then the CPU flow tests (tests/flow, not slow) under this torch.
#   digits      flowevo benchmark digits --n 200 --ablation-seeds 1 with --device cuda and --device cpu (the same
#               workload): metrics side by side and the wall-time ratio (needs every command's --device; later phase).
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
  timeout 150 $PY -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rs > "$OUT/pytest.log" 2>&1
  echo "pytest -m gpu exit $? after $((SECONDS - start)) s" | tee -a "$OUT/pytest.log"
  timeout 80 $PY -m pytest tests/flow -m "not slow" -q -p no:cacheprovider >> "$OUT/pytest.log" 2>&1
  echo "pytest tests/flow (CPU, not slow) exit $? after $((SECONDS - start)) s" | tee -a "$OUT/pytest.log"
fi
if has digits; then
  echo "== digits"
  for dev in cuda cpu; do
    start=$SECONDS
    timeout 600 $PY -m flowevo.cli benchmark digits --n 200 --ablation-seeds 1 --device $dev --out "$OUT/digits_$dev" \
      --quiet > "$OUT/digits_$dev.log" 2>&1
    echo "digits --device $dev exit $? after $((SECONDS - start)) s" | tee -a "$OUT/digits_$dev.log"
  done
fi
$PY benchmarks/gpu/summary.py "$OUT" | tee "$OUT/summary.txt"
