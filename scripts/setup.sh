#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/debian-packages.txt (only those missing).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
mapfile -t PACKAGES < <(grep -v '^\s*#' "$HERE/debian-packages.txt" | grep -v '^\s*$')
MISSING=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || MISSING+=("$p")
done
if [ ${#MISSING[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
echo "installing: ${MISSING[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
