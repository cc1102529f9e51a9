#!/usr/bin/env bash
# memtrack's GPU check: on a machine with an NVIDIA GPU (no network needed), in a few minutes,
#   1. build with the cuda preset,           4. record a native CUDA workload (streams,
#   2. run the tests, the GPU ones included,    cudaMalloc, cudaMallocAsync, virtual memory),
#   3. probe the device into a profile and   5. record a PyTorch workload (embedding models
#      check it,                                 loaded, run and unloaded), SIGTERM to a recorded
#                                                program, and a torch.profiler inside one,
# replay each recording, and print last a table of where memtrack agrees with what the device
# (cudaMemGetInfo) and PyTorch (memory_allocated/reserved, its own snapshot) reported.
#
#   traces/recorder/gpu-check.sh [OUT]                   (default OUT: build/gpu-check)
#   traces/recorder/gpu-check.sh --dry-run [--build-dir DIR] [OUT]
#
# --dry-run needs no GPU: every step that can run without one does (the carried packages'
# links, the build, the installed library's exports and RUNPATH, probe and record saying there is
# no device, record and replay through a stand-in program, the PyTorch workload compiled, the
# comparison table); the GPU steps are listed as skipped. With --build-dir it uses that build
# instead of building (the cuda preset's ctest runs it so).
#
# Everything it writes goes to OUT: logs, traces, the probed profile, summary.txt.
# Without the Debian -dev packages memtrack builds with (a machine that is not a memtrack dev
# machine), unpack them first with traces/recorder/gpu-deps.sh DIR (or DIR.tar.gz) on a networked
# machine and set MEMTRACK_DEPS=DIR (or the archive) here. PYTHON (default python3) must have torch
# for the PyTorch steps. MEMTRACK_BUILD_TARGETS limits what is built (default: everything).
set -uo pipefail
dry_run=0
build_dir=
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=1; shift ;;
    --build-dir) build_dir=$(cd "${2:?--build-dir DIR}" && pwd) || exit 2; shift 2 ;;
    -*) echo "usage: $0 [--dry-run [--build-dir DIR]] [OUT]" >&2; exit 2 ;;
    *) break ;;
  esac
done
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
  # an archive made before gpu-deps.sh repaired its links: repair them here (absolute links
  # dangle off Debian 12 and CMake would take the non-PIC libz.a)
  "$root/traces/recorder/gpu-deps.sh" --relink "$deps" >"$out/deps.log" 2>&1 ||
    { cat "$out/deps.log"; exit 1; }
  export PATH="$deps/usr/bin:$PATH"
  export CPATH="$deps/usr/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:$deps/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
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
skipped() { printf '::: gpu-check: %-14s skipped (%s)\n' "$1" "$2"; }
targets=()
if [ -n "${MEMTRACK_BUILD_TARGETS:-}" ]; then
  read -r -a names <<<"$MEMTRACK_BUILD_TARGETS"
  targets=(--target "${names[@]}")
elif [ "$dry_run" = 1 ]; then
  targets=(--target memtrack_cli memtrack_inject memtrack_cuda_workload)
fi
if [ -n "$build_dir" ]; then
  skipped build "using $build_dir"
else
  build_dir=$root/build/cuda
  step build 2400 bash -c "cmake --preset cuda ${configure_args[*]:+$(printf '%q ' "${configure_args[@]}")} && cmake --build --preset cuda -j $jobs ${targets[*]:+$(printf '%q ' "${targets[@]}")}"
fi
bin=$build_dir/bin
library=$build_dir/lib/libmemtrack_inject.so

# The installed library: only InitializeInjection exported, and a RUNPATH that finds libcupti.
inject_check() {
  rm -rf "$out/install"
  cmake --install "$build_dir" --prefix "$out/install" --component recorder >/dev/null || return 1
  local installed=$out/install/lib/libmemtrack_inject.so
  [ -f "$installed" ] || installed=$(find "$out/install" -name libmemtrack_inject.so | head -1)
  echo "installed: $installed"
  local exported
  exported=$(nm -D --defined-only "$installed" | awk '$2 ~ /^[TWV]$/ {print $3}' | sort -u | tr '\n' ' ')
  echo "exported: $exported"
  [ "$exported" = "InitializeInjection " ] || { echo "exports more than InitializeInjection"; return 1; }
  readelf -d "$installed" | grep -E 'RUNPATH|RPATH' || { echo "no RUNPATH"; return 1; }
  env -u LD_LIBRARY_PATH ldd "$installed" | grep cupti
  env -u LD_LIBRARY_PATH ldd "$installed" | grep -q 'libcupti.* => /' || { echo "libcupti not found through the RUNPATH"; return 1; }
}
export -f inject_check
export build_dir out
step inject-lib 120 bash -c inject_check

if [ "$dry_run" = 1 ]; then
  skipped tests "a dry run: ctest runs the tests that need no GPU itself"
  # without a GPU, probe and record say so; with one (this dry run as a test on a GPU machine)
  # they measure and record: either is right, anything else is not
  step probe 60 bash -c "'$bin/memtrack' probe --device 0 -o '$out/probed.profile'; code=\$?; echo \"probe exited \$code\"; [ \$code -eq 0 ] || [ \$code -eq 1 ]"
  if ! [ -s "$out/probed.profile" ] && ! grep -q 'no CUDA device' "$out/probe.log"; then
    echo "::: gpu-check: probe neither measured nor said 'no CUDA device'"; failed+=(probe)
  fi
  # the native workload through record, the real library named: without a driver nothing is
  # recorded and record says why (the workload fails and its code is record's)
  step record-cuda 60 bash -c "'$bin/memtrack' record --inject '$library' -o '$out/cuda.trace' -- '$bin/memtrack_cuda_workload' '$out/cuda-workload.json'; code=\$?; echo \"record exited \$code\"; exit 0"
  if ! grep -q 'events on 1 device' "$out/record-cuda.log" && ! grep -q 'nothing recorded' "$out/record-cuda.log"; then
    echo "::: gpu-check: record neither recorded nor said why not"; failed+=(record-cuda)
  fi
  # record, its status file and a child's .pidN trace, then replay, through a stand-in program
  cat >"$out/standin.sh" <<'STANDIN'
#!/bin/sh
# what libmemtrack_inject.so leaves: the trace, the status; a child process's own trace
trace='memtrack-trace 1
source gpu-check dry run
gpu 0 total=1073741824 name=Stand-in GPU
events
baseline gpu:0 104857600 t=1
alloc gpu:0 4096 t=2 addr=0x1000
alloc gpu:0 2097152 t=3 tag=pool-reserve
free gpu:0 t=4 addr=0x1000
end 4'
printf '%s\n' "$trace" >"$MEMTRACK_RECORD_OUTPUT"
printf 'ok 4 1\n' >"$MEMTRACK_RECORD_STATUS"
sh -c 'printf "%s\n" "$1" >"${MEMTRACK_RECORD_OUTPUT%.trace}.pid$$.trace"' child "$trace"
STANDIN
  chmod +x "$out/standin.sh"
  step record-standin 60 bash -c "'$bin/memtrack' record --inject '$library' -o '$out/standin.trace' -- '$out/standin.sh' 2>&1 | tee /dev/stderr | grep -q 'also .*standin.pid[0-9]*.trace (a child process)'"
  step replay-standin 60 bash -c "'$bin/memtrack' replay '$out/standin.trace' >'$out/standin-replay.txt' && cat '$out/standin-replay.txt'"
  step torch-compiles 60 "$python" -m py_compile traces/recorder/workloads/torch_workload.py
  if "$python" -c 'import torch' 2>/dev/null; then torch_note="torch importable"; else torch_note="no torch here"; fi
  skipped record-teardown "a dry run: cudaDeviceReset needs a device"
  for name in record-torch record-signal record-profiler; do skipped "$name" "a dry run; $torch_note"; done
else
  nvidia-smi --query-gpu=name,uuid,memory.total,driver_version --format=csv >"$out/nvidia-smi.csv" 2>&1 || true
  # (the dry run's own test is left out: this run does what it stands in for)
  step tests 180 ctest --test-dir "$build_dir" -j "$jobs" --output-on-failure -E memtrack_gpu_check_dry_run
  step probe 90 "$bin/memtrack" probe --device 0 --samples -o "$out/probed.profile"
  step probe-check 90 "$bin/memtrack" probe --device 0 --check "$out/probed.profile"
  # the built-in h200 profile's estimates against the device: differences are expected, reported
  timeout 90 "$bin/memtrack" probe --device 0 --check h200 >"$out/probe-check-h200.log" 2>&1 || true

  step record-cuda 60 "$bin/memtrack" record -o "$out/cuda.trace" -- \
    "$bin/memtrack_cuda_workload" "$out/cuda-workload.json" &&
    step replay-cuda 60 bash -c "'$bin/memtrack' replay '$out/cuda.trace' >'$out/cuda-replay.txt'"

  # cudaDeviceReset with 64 MiB + 32 MiB live: both freed by the teardown, and the allocations
  # and frees of the program balance at the end (baselines aside)
  step record-teardown 60 bash -c "'$bin/memtrack' record -o '$out/teardown.trace' -- '$bin/memtrack_cuda_workload' --teardown && grep '^free gpu:0 .*tag=teardown' '$out/teardown.trace' && [ \$(grep -c '^free gpu:0 .*tag=teardown' '$out/teardown.trace') -eq 2 ] && awk '\$1 == \"alloc\" && \$2 == \"gpu:0\" {held += \$3} \$1 == \"free\" && \$2 == \"gpu:0\" {held -= \$3} END {print \"held at the end:\", held; exit held != 0}' '$out/teardown.trace'"

  step record-torch 180 "$bin/memtrack" record -o "$out/torch.trace" -- \
    "$python" traces/recorder/workloads/torch_workload.py \
    --report "$out/torch-workload.json" --snapshot "$out/torch-snapshot.pickle" &&
    step replay-torch 60 bash -c "'$bin/memtrack' replay '$out/torch.trace' >'$out/torch-replay.txt'" &&
    step import-snap 60 "$bin/memtrack" import --from pytorch "$out/torch-snapshot.pickle" \
      -o "$out/torch-snapshot.trace" &&
    step replay-snap 60 bash -c "'$bin/memtrack' replay '$out/torch-snapshot.trace' --profile '$out/probed.profile' >'$out/torch-snapshot-replay.txt'"

  # SIGTERM to memtrack, passed on to a recorded program holding 1 GiB: the program ends by the
  # signal (exit 143) once its trace is written, and the trace holds the 1 GiB.
  step record-signal 90 bash -c "timeout --preserve-status -s TERM 25 '$bin/memtrack' record -o '$out/signal.trace' -- '$python' -c 'import time, torch; x = torch.empty(1 << 30, dtype=torch.uint8, device=\"cuda\"); torch.cuda.synchronize(); time.sleep(600)'; code=\$?; echo \"record exited \$code\"; [ \$code -eq 143 ] && grep -q '^alloc gpu:0 1073741824' '$out/signal.trace'"
  # a torch.profiler inside the recorded program: either CUPTI keeps our buffers (ok) or the
  # subscriber check says the trace is incomplete (exit 1); anything else fails
  step record-profiler 120 bash -c "'$bin/memtrack' record -o '$out/profiler.trace' -- '$python' -c 'import torch; from torch.profiler import profile, ProfilerActivity
a = torch.empty(1 << 20, device=\"cuda\")
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
    xs = [torch.empty(1 << 22, device=\"cuda\") for _ in range(8)]
    del xs
torch.cuda.synchronize()' >'$out/profiler-record.txt' 2>&1; code=\$?; cat '$out/profiler-record.txt'; [ \$code -eq 0 ] || grep -q 'is incomplete: CUPTI delivered' '$out/profiler-record.txt'"
fi

"$python" traces/recorder/gpu_compare.py "$out"
echo
echo "::: gpu-check: $((SECONDS - started)) s; outputs in $out"
if [ ${#failed[@]} -gt 0 ]; then
  echo "::: gpu-check: failed steps: ${failed[*]}"
  exit 1
fi
