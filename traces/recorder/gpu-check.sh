#!/usr/bin/env bash
# memtrack's GPU check: on a machine with an NVIDIA GPU (no network needed), in a few minutes,
#   1. build with the cuda preset,           4. record a native CUDA workload (streams,
#   2. run the tests, the GPU ones included,    cudaMalloc, cudaMallocAsync, virtual memory),
#   3. probe the device into a profile and   5. record a PyTorch workload (embedding models
#      check it,                                 loaded, run and unloaded),
# replay each recording, and print last a table of where memtrack agrees with what the device
# (cudaMemGetInfo) and PyTorch (memory_allocated/reserved, its own snapshot) reported.
#
#   traces/recorder/gpu-check.sh [OUT]      (default OUT: build/gpu-check)
#
# Everything it writes goes to OUT: logs, traces, the probed profile, summary.txt.
# Without the Debian -dev packages memtrack builds with (a machine that is not a memtrack dev
# machine), unpack them first with traces/recorder/gpu-deps.sh DIR (or DIR.tar.gz) on a networked
# machine and set MEMTRACK_DEPS=DIR (or the archive) here. PYTHON (default python3) must have torch for step 5.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out=${1:-build/gpu-check}
mkdir -p "$out" && out=$(cd "$out" && pwd)
python=${PYTHON:-python3}
jobs=$(nproc 2>/dev/null || echo 4)
started=$SECONDS
failed=()

configure_args=()
if [ -n "${MEMTRACK_DEPS:-}" ]; then
  if [[ "$MEMTRACK_DEPS" == *.tar.gz ]]; then  # gpu-deps.sh's archive: unpack it once
    mkdir -p "$out/deps"
    [ -d "$out/deps/usr" ] || tar -C "$out/deps" -xzf "$MEMTRACK_DEPS"
    MEMTRACK_DEPS=$out/deps
  fi
  deps=$(cd "$MEMTRACK_DEPS" && pwd)
  export PATH="$deps/usr/bin:$PATH"
  export CPATH="$deps/usr/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  configure_args+=("-DCMAKE_PREFIX_PATH=$deps/usr;$deps/usr/lib/x86_64-linux-gnu/cmake")
fi

# step NAME LIMIT_SECONDS COMMAND...: runs it with a time limit, its output in OUT/NAME.log
step() {
  local name=$1 limit=$2
  shift 2
  local at=$SECONDS
  printf '::: gpu-check: %-14s ' "$name"
  if timeout "$limit" "$@" >"$out/$name.log" 2>&1; then
    echo "ok ($((SECONDS - at)) s)"
  else
    local code=$?
    echo "FAILED with $code ($((SECONDS - at)) s): tail of $out/$name.log"
    tail -n 15 "$out/$name.log" | sed 's/^/    /'
    failed+=("$name")
    return 1
  fi
}

bin=$root/build/cuda/bin
nvidia-smi --query-gpu=name,uuid,memory.total,driver_version --format=csv >"$out/nvidia-smi.csv" 2>&1 || true

step build 240 bash -c "cmake --preset cuda ${configure_args[*]:+$(printf '%q ' "${configure_args[@]}")} && cmake --build --preset cuda -j $jobs"
step tests 120 ctest --preset cuda -j "$jobs" --output-on-failure
step probe 90 "$bin/memtrack" probe --device 0 --samples -o "$out/probed.profile"
step probe-check 90 "$bin/memtrack" probe --device 0 --check "$out/probed.profile"
# the built-in h200 profile's estimates against the device: differences are expected, reported
"$bin/memtrack" probe --device 0 --check h200 >"$out/probe-check-h200.log" 2>&1 || true

step record-cuda 60 "$bin/memtrack" record -o "$out/cuda.trace" -- \
  "$bin/memtrack_cuda_workload" "$out/cuda-workload.json" &&
  step replay-cuda 60 bash -c "'$bin/memtrack' replay '$out/cuda.trace' >'$out/cuda-replay.txt'"

step record-torch 180 "$bin/memtrack" record -o "$out/torch.trace" -- \
  "$python" traces/recorder/workloads/torch_workload.py \
  --report "$out/torch-workload.json" --snapshot "$out/torch-snapshot.pickle" &&
  step replay-torch 60 bash -c "'$bin/memtrack' replay '$out/torch.trace' >'$out/torch-replay.txt'" &&
  step import-snap 60 "$bin/memtrack" import --from pytorch "$out/torch-snapshot.pickle" \
    -o "$out/torch-snapshot.trace" &&
  step replay-snap 60 bash -c "'$bin/memtrack' replay '$out/torch-snapshot.trace' --profile '$out/probed.profile' >'$out/torch-snapshot-replay.txt'"

"$python" traces/recorder/gpu_compare.py "$out"
echo
echo "::: gpu-check: $((SECONDS - started)) s; outputs in $out"
if [ ${#failed[@]} -gt 0 ]; then
  echo "::: gpu-check: failed steps: ${failed[*]}"
  exit 1
fi
