#!/usr/bin/env bash
# Unpacks the Debian 12 packages memtrack builds with into DIR, for a GPU machine that has the CUDA
# toolkit and CMake but neither these packages nor a network: run it here (a Debian machine that
# reaches Debian's mirrors), copy DIR there, and run MEMTRACK_DEPS=DIR traces/recorder/gpu-check.sh.
#
#   traces/recorder/gpu-deps.sh DIR              the packages unpacked (about 180 MB)
#   traces/recorder/gpu-deps.sh DIR.tar.gz      the same as one archive (about 18 MB) that
#                                                gpu-check.sh unpacks itself
#   traces/recorder/gpu-deps.sh --relink DIR     only the symlink repair below, on a folder
#
# Debian's packages hold absolute symlinks (libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) that
# dangle on another machine, where CMake then takes the non-PIC libz.a and the injection library
# fails to link. Every absolute link is rewritten to the same file inside DIR, relatively; the
# script fails if a link then points outside DIR or nowhere.
set -euo pipefail

# relink DIR: absolute symlinks under DIR -> relative ones to DIR's copy of their target
relink() {
  local dir link target rewritten=0 broken=()
  dir=$(cd "$1" && pwd)
  while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    [[ "$target" == /* ]] || continue
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$dir$target")" "$link"
    rewritten=$((rewritten + 1))
    [ -e "$link" ] || broken+=("$link -> $target (not in the carried packages)")
  done < <(find "$dir" -type l -print0)
  while IFS= read -r link; do
    broken+=("$link -> $(readlink "$link") (still absolute)")
  done < <(find "$dir" -type l -lname '/*')
  if [ ${#broken[@]} -gt 0 ]; then
    echo "gpu-deps: links that would dangle on another machine:" >&2
    printf '    %s\n' "${broken[@]}" >&2
    return 1
  fi
  echo "gpu-deps: $rewritten absolute links made relative inside $dir"
}

if [ "${1:-}" = --relink ]; then
  [ $# -eq 2 ] || { echo "usage: $0 --relink DIR" >&2; exit 2; }
  relink "$2"
  exit 0
fi
[ $# -eq 1 ] || { echo "usage: $0 DIR|ARCHIVE.tar.gz|--relink DIR" >&2; exit 2; }
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
relink "$dir"
if [ -n "$archive" ]; then
  tar -C "$dir" -cf - . | gzip -9 >"$archive"
  rm -rf "$dir"
  echo "gpu-deps: ${#packages[@]} packages in $archive"
else
  echo "gpu-deps: ${#packages[@]} packages unpacked into $dir"
fi
