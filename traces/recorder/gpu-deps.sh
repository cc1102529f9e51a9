#!/usr/bin/env bash
# Unpacks the Debian 12 packages memtrack builds with into DIR, for a GPU machine that has the CUDA
# toolkit and CMake but neither these packages nor a network: run it here (a Debian machine that
# reaches Debian's mirrors), copy DIR there, and run MEMTRACK_DEPS=DIR traces/recorder/gpu-check.sh.
#
#   traces/recorder/gpu-deps.sh DIR              the packages unpacked (about 180 MB)
#   traces/recorder/gpu-deps.sh DIR.tar.gz      the same as one archive (about 18 MB) that
#                                                gpu-check.sh unpacks itself
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR|ARCHIVE.tar.gz" >&2; exit 2; }
target=$1
archive=
if [[ "$target" == *.tar.gz ]]; then
  archive=$(cd "$(dirname "$target")" && pwd)/$(basename "$target")
  target=$(mktemp -d)
fi
mkdir -p "$target"
dir=$(cd "$target" && pwd)
packages=(
  libboost1.74-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev librapidcheck-dev
  libbenchmark-dev libbenchmark1debian libzstd-dev libzstd1 zlib1g-dev zlib1g libsqlite3-dev
  libsqlite3-0 ninja-build
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "${packages[@]}")
for deb in "$work"/*.deb; do
  dpkg -x "$deb" "$dir"
done
rm -rf "$dir/usr/share/doc" "$dir/usr/share/man"
if [ -n "$archive" ]; then
  tar -C "$dir" -cf - . | gzip -9 >"$archive"
  rm -rf "$dir"
  echo "gpu-deps: ${#packages[@]} packages in $archive"
else
  echo "gpu-deps: ${#packages[@]} packages unpacked into $dir"
fi
