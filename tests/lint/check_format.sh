#!/usr/bin/env bash
# Every C++ file is clang-formatted (the house style); prints the files that are not.
set -uo pipefail
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || { echo "clang-format not installed; skipping"; exit 0; }
bad=$(git ls-files '*.cpp' '*.hpp' '*.h' 2>/dev/null | while read -r f; do
  [ -f "$f" ] && ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1 && echo "$f"; done)
if [ -n "$bad" ]; then echo "not clang-formatted:"; echo "$bad"; echo "0 passed, 1 failed"; exit 1; fi
echo "1 passed, 0 failed"
