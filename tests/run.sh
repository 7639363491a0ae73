#!/usr/bin/env bash
# Runs the whole suite: every unit test binary in $BUILD/tests, then every
# tests/integration/*.sh (each prints "N passed, N failed" as its last line).
# Ends with one total line of that form; exits non-zero if anything failed.
# A ThreadSanitizer report from any process a test started (tests/tsan.supp
# applies) fails that test.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD MEADOW="$PWD/$BUILD/meadow" TOOLS="$PWD/$BUILD/tools"
# Every test's scratch space lives under the build directory, not /tmp: a
# shared /tmp was seen emptied under running tests on the development machines.
export TMPDIR="$PWD/$BUILD/tmp"
mkdir -p "$TMPDIR"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
total_pass=0 total_fail=0
logdir=$(mktemp -d "${TMPDIR:-/tmp}/meadow-run-XXXXXX")
# TSan reports go to files, not stderr: integration scripts keep the servers'
# stderr in their own logs, so a race there would otherwise pass unseen.
tsandir="$logdir/tsan"
mkdir -p "$tsandir"
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$PWD/tests/tsan.supp:second_deadlock_stack=1:history_size=4}:log_path=$tsandir/report

run_one() { # name, command...
  local name=$1; shift
  local log="$logdir/$(echo "$name" | tr '/' '_').log" start=$SECONDS
  "$@" >"$log" 2>&1
  local rc=$?
  local line
  line=$(grep -E '^[A-Za-z]*:? ?[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  local p f
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
  f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
  p=${p:-0}; f=${f:-0}
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  local reports
  reports=$(find "$tsandir" -type f 2>/dev/null)
  if [ -n "$reports" ]; then
    f=$((f + 1)) rc=66
    { echo "ThreadSanitizer reports (kept in $TMPDIR/tsan-reports):"; cat $reports
      grep -h '^SUMMARY' $reports; } >>"$log"
    mkdir -p "$TMPDIR/tsan-reports" && mv $reports "$TMPDIR/tsan-reports/"
  fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  if [ $rc -ne 0 ] || [ "$f" -ne 0 ]; then
    echo "FAIL $name ($p passed, $f failed, rc=$rc, $((SECONDS - start))s); log:"
    tail -40 "$log" | sed 's/^/    /'
  else
    echo "ok   $name ($p passed, $((SECONDS - start))s)"
  fi
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  run_one "unit/$(basename "$t")" "$t"
done
for s in tests/integration/*.sh; do
  [ -f "$s" ] || continue
  if [ -n "${TEST_ONLY:-}" ] && [[ "$s" != *"$TEST_ONLY"* ]]; then continue; fi
  run_one "integration/$(basename "$s" .sh)" bash "$s"
done
rm -rf "$logdir"
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
