#!/usr/bin/env bash
# gpu-deps.sh --relink: Debian's absolute symlinks (libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13)
# become relative links to the same file inside the folder, so they resolve wherever it is carried;
# a link to a file the folder lacks is refused.
set -euo pipefail
script=$(cd "$(dirname "$0")/.." && pwd)/gpu-deps.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
deps=$work/deps
mkdir -p "$deps/usr/lib/x86_64-linux-gnu" "$deps/lib/x86_64-linux-gnu"
echo zlib >"$deps/lib/x86_64-linux-gnu/libz.so.1.2.13"
ln -s libz.so.1.2.13 "$deps/lib/x86_64-linux-gnu/libz.so.1"
ln -s /lib/x86_64-linux-gnu/libz.so.1.2.13 "$deps/usr/lib/x86_64-linux-gnu/libz.so"
"$script" --relink "$deps"
link=$(readlink "$deps/usr/lib/x86_64-linux-gnu/libz.so")
[ "$link" = ../../../lib/x86_64-linux-gnu/libz.so.1.2.13 ] || { echo "FAIL: libz.so -> $link"; exit 1; }
[ "$(readlink "$deps/lib/x86_64-linux-gnu/libz.so.1")" = libz.so.1.2.13 ] || { echo "FAIL: a relative link changed"; exit 1; }
# carried elsewhere, it still resolves to the folder's own file
mv "$deps" "$work/moved"
[ "$(cat "$work/moved/usr/lib/x86_64-linux-gnu/libz.so")" = zlib ] || { echo "FAIL: does not resolve once moved"; exit 1; }
# a link to a file the packages do not hold is refused, naming it
ln -s /lib/x86_64-linux-gnu/libmissing.so.1 "$work/moved/usr/lib/x86_64-linux-gnu/libmissing.so"
if "$script" --relink "$work/moved" 2>"$work/err"; then echo "FAIL: a dangling link was accepted"; exit 1; fi
grep -q 'libmissing.so -> /lib/x86_64-linux-gnu/libmissing.so.1 (not in the carried packages)' "$work/err" ||
  { echo "FAIL: the refusal does not name the link:"; cat "$work/err"; exit 1; }
echo "gpu-deps relink: ok"
