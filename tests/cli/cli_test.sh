#!/usr/bin/env bash
# The command line as a CI pipeline sees it: --help for every verb, exit codes, the JSON report.
#   cli_test.sh IOTMARK SAMPLE_IMAGE
set -uo pipefail
IOTMARK=$1
SAMPLE=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0
passes=0
check() {  # check NAME EXPECTED_EXIT COMMAND...
  local name=$1 expected=$2; shift 2
  "$@" >"$WORK/stdout" 2>"$WORK/stderr"
  local got=$?
  if [ "$got" -ne "$expected" ]; then
    echo "FAIL $name: exit $got, expected $expected"; sed 's/^/  | /' "$WORK/stderr" | head -5
    failures=$((failures + 1))
  else
    echo "ok   $name"; passes=$((passes + 1))
  fi
}

check "--help" 0 "$IOTMARK" --help
for verb in scan unpack formats; do
  check "$verb --help" 0 "$IOTMARK" "$verb" --help
  grep -q "Usage" "$WORK/stdout" || { echo "FAIL $verb --help prints no usage"; failures=$((failures+1)); }
done
check "--version" 0 "$IOTMARK" --version
check "no verb is a usage error" 2 "$IOTMARK"
check "unknown flag is a usage error" 2 "$IOTMARK" scan --no-such-flag "$SAMPLE"
check "missing image" 3 "$IOTMARK" scan "$WORK/does-not-exist.bin"
check "a directory is not an image" 3 "$IOTMARK" scan "$WORK"

check "scan the sample" 0 "$IOTMARK" scan "$SAMPLE" --json "$WORK/report.json"
grep -q "squashfs" "$WORK/stdout" || { echo "FAIL summary does not mention squashfs"; failures=$((failures+1)); }
python3 - "$WORK/report.json" <<'PY' || failures=$((failures + 1))
import json, sys
r = json.load(open(sys.argv[1]))
for key in ("tree", "inventory", "gaps", "image", "tool", "stats"):
    assert key in r, key
assert any(e["path"].endswith("/bin/busybox") and len(e["sha256"]) == 64 for e in r["inventory"])
assert all(set(("path", "kind", "size", "mode")) <= set(e) for e in r["inventory"])
print("ok   JSON report has tree, inventory and gaps")
PY
check "scan leaves no work directory behind" 0 test -z "$(ls -A "${TMPDIR:-/tmp}" | grep '^iotmark-scan-' || true)"
check "JSON to stdout is the only output" 0 "$IOTMARK" scan "$SAMPLE" --json -
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/stdout" \
  || { echo "FAIL --json - is not pure JSON"; failures=$((failures+1)); }

check "unpack the sample" 0 "$IOTMARK" unpack "$SAMPLE" -o "$WORK/tree" --no-progress
[ -f "$WORK/tree/firmware.bin_extract/0x110000.squashfs/bin/busybox" ] \
  || { echo "FAIL unpack left no busybox"; failures=$((failures+1)); }
check "unpack refuses a non-empty output directory" 4 "$IOTMARK" unpack "$SAMPLE" -o "$WORK/tree"
check "nothing printed in a pipe but the summary" 0 "$IOTMARK" scan "$SAMPLE"
grep -q $'\r' "$WORK/stderr" && { echo "FAIL progress bar drawn in a pipe"; failures=$((failures+1)); }

head -c $(( $(stat -c %s "$SAMPLE") * 3 / 5 )) "$SAMPLE" > "$WORK/truncated.bin"
check "a truncated image reports gaps with exit 1" 1 "$IOTMARK" scan "$WORK/truncated.bin"
check "limits are flags" 1 "$IOTMARK" scan "$SAMPLE" --max-bytes 100000

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
