#!/usr/bin/env bash
# The README's quick start.
#   scripts/quickstart.sh demo       install, build, scan the embedded sample product
#   scripts/quickstart.sh test       install, build, run the whole test suite
#   scripts/quickstart.sh test-asan  the same suite built with AddressSanitizer + UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-demo}
scripts/setup.sh
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
case "$MODE" in
  demo)
    cmake --preset release >/dev/null
    cmake --build --preset release
    tests/fixtures/make_sample_firmware.sh build/release/sample >/dev/null
    build/release/apps/cli/iotmark scan build/release/sample/firmware.bin \
      --json build/release/sample/report.json || [ $? -eq 1 ]
    echo "Full report: build/release/sample/report.json"
    ;;
  test) cmake --workflow --preset ci ;;
  test-asan) cmake --workflow --preset ci-asan ;;
  *) echo "usage: $0 demo|test|test-asan" >&2; exit 2 ;;
esac
