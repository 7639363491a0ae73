# Sourced by integration scripts: assertions that count, and helpers.
# Each script ends with `finish`, which prints "N passed, N failed".
set -u
pass=0 fail=0
MEADOW=${MEADOW:-$PWD/build/meadow}
TOOLS=${TOOLS:-$PWD/build/tools}
T=$(mktemp -d "${TMPDIR:-/tmp}/meadow-it-XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${MEADOW_KEEP_TMP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
ok()   { pass=$((pass + 1)); [ -n "${TEST_VERBOSE:-}" ] && echo "ok $1"; return 0; }
bad()  { fail=$((fail + 1)); echo "not ok $1"; [ $# -gt 1 ] && echo "  $2"; return 0; }
check() { # name, command...: passes when the command succeeds
  local name=$1; shift
  if "$@"; then ok "$name"; else bad "$name" "command failed: $*"; fi
}
expect_eq() { # name, got, want
  if [ "$2" == "$3" ]; then ok "$1"; else bad "$1" "got [$2] want [$3]"; fi
}
expect_contains() { # name, haystack, needle
  case "$2" in *"$3"*) ok "$1" ;; *) bad "$1" "[$2] lacks [$3]" ;; esac
}
# A free TCP port on 127.0.0.1, below the kernel's ephemeral range (so an
# outgoing connection cannot take it between the check and the bind).
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((15000 + (RANDOM * 32768 + RANDOM) % 17000))
    (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}
# Waits until a TCP port accepts connections (max $2 seconds).
wait_port() {
  local port=$1 max=${2:-20} i=0
  while ! (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; do
    i=$((i + 1)); [ $i -gt $((max * 10)) ] && return 1; sleep 0.1
  done
}
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
