#!/usr/bin/env bash
# Development build: compiles the extension into src/fastplace so that
# PYTHONPATH=src runs the tests without reinstalling. Extra args go to cmake.
set -euo pipefail
cd "$(dirname "$0")"
cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTPLACE_PYTHON=ON -DFASTPLACE_WERROR=ON \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" "$@" >/dev/null
cmake --build build/dev
# Copy then rename: overwriting a loaded .so in place would crash running processes.
for so in build/dev/_core*.so; do
    cp "$so" "src/fastplace/.$(basename "$so").tmp"
    mv "src/fastplace/.$(basename "$so").tmp" "src/fastplace/$(basename "$so")"
done
