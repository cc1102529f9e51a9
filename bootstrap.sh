#!/usr/bin/env bash
# Installs everything memtrack needs to build and test on Debian 12 (bookworm), with apt-get.
# Idempotent and quick when everything is present: it asks apt only for what is missing.
#
#   ./bootstrap.sh          build and test dependencies
#   ./bootstrap.sh --check  only report what is missing; exit 1 if anything is
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache git python3   # toolchain and the mutation-check driver
  clang-19 libclang-rt-19-dev clang-format               # the second compiler; libFuzzer, sanitizers
  libgtest-dev libgmock-dev libbenchmark-dev             # GoogleTest, Google Benchmark
  librapidcheck-dev                                      # RapidCheck (static, not PIC)
  libboost-dev                                           # Boost.Multiprecision (reference model)
  libcli11-dev nlohmann-json3-dev libsimdjson-dev        # command line, JSON (output; Kineto)
  libzstd-dev zlib1g-dev libsqlite3-dev                  # .zst/.gz traces, Nsight SQLite exports
  chromium chromium-driver fonts-dejavu-core             # memtrack report's headless browser test
  python3-dev pybind11-dev python3-pybind11 python3-pytest  # the Python package and its tests
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#packages[@]} packages are installed"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "bootstrap: missing: ${missing[*]}"
  exit 1
fi

if [ ! -r /etc/debian_version ]; then
  echo "bootstrap: this script installs Debian packages; on another system install: ${missing[*]}" >&2
  exit 2
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: run as root or install sudo" >&2; exit 2; }
  sudo="sudo"
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "bootstrap: done"
