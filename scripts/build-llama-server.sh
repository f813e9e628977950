#!/usr/bin/env bash
# Build llama.cpp's `llama-server` once per machine, for the embedded backend.
#
#   build-llama-server.sh DEST VERSION PYTHON JOBS CMAKE_ARGS...
#
# The source is the pinned llama-cpp-python sdist from the package registry, which vendors the
# whole llama.cpp tree (vendor/llama.cpp, tools/server included); only the llama-server target is
# compiled. Concurrent builds (two checkouts, CI beside a developer) wait for one another on a
# lock instead of compiling twice, and DEST appears only once it is complete.
set -euo pipefail

dest=$1 version=$2 python=$3 jobs=$4
shift 4

mkdir -p "$(dirname "$dest")"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dest.lock"
  flock 9
fi
if [ -x "$dest" ]; then
  exit 0  # built by whoever held the lock before us
fi

work=$(mktemp -d "$(dirname "$dest")/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

echo "llmbench: building llama-server from llama-cpp-python $version (once per machine)"
"$python" -m pip download -q --no-deps --no-binary :all: -d "$work" \
  "llama-cpp-python==$version"
tar -xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work" \
  "llama_cpp_python-$version/vendor/llama.cpp"
src="$work/llama_cpp_python-$version/vendor/llama.cpp"

# A static, CPU-only server without the web UI (which would be downloaded), TLS or curl: it only
# ever serves loopback requests from the plugin.
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
  "$@" >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; exit 1; }
cmake --build "$work/build" --target llama-server -j "$jobs" >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; exit 1; }

"$work/build/bin/llama-server" --version >/dev/null 2>&1 \
  || { echo "llmbench: the built llama-server does not run" >&2; exit 1; }
install -m 755 "$work/build/bin/llama-server" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "llmbench: llama-server built in $(( $(date +%s) - started ))s: $dest"
