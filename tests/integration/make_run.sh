#!/usr/bin/env bash
# The README's `make run` (issue 2): on an empty data directory, with no
# reachable firehose, `meadow serve` comes up, serves HTTP, stays up while
# the source retries, and exits 0 on SIGINT (and on SIGTERM) — make too.
# Settings come from MEADOW_* (data dir and port in a temp dir / free port;
# the Jetstream URL is a refused local port so nothing leaves the machine).
# SAN is passed through so an ASan (TSan) run reuses build-asan/meadow
# (build-tsan/meadow) instead of rebuilding with other flags.
. "$(dirname "$0")/../lib.sh"
T_DIR=$T
. "$(dirname "$0")/pipeline_lib.bash"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
case "${BUILD:-build}" in
build-asan) SANARG=SAN=asan ;;
build-tsan) SANARG=SAN=tsan ;;
*) SANARG=SAN= ;;
esac

for sig in INT TERM; do
  port=$(free_port)
  data="$T/data-$sig"
  log="$T/make-run-$sig.log"
  MEADOW_DATA="$data" MEADOW_PORT="$port" MEADOW_LOG_LEVEL=info \
    MEADOW_JETSTREAM_URLS=ws://127.0.0.1:1/subscribe MEADOW_BACKOFF_MAX_MS=500 \
    make --no-print-directory -C "$REPO" run "$SANARG" >"$log" 2>&1 &
  mk=$!
  PIDS+=("$mk")
  check "make run listens on MEADOW_PORT ($sig run)" wait_port "$port" 60
  # The recipe has no shell metacharacters: make runs meadow as its own child.
  mpid=$(pgrep -P "$mk" -x meadow | head -1)
  [ -n "$mpid" ] && ok "meadow serve is make's child ($sig run)" || bad "meadow child ($sig run)" "$(cat "$log")"
  out=$(curl -s "http://127.0.0.1:$port/xrpc/_health")
  expect_contains "health answers ($sig run)" "$out" '"version"'
  check "empty data directory created at MEADOW_DATA ($sig run)" test -d "$data/index"
  for ((i = 0; i < 100; i++)); do [ "$(grep -c reconnecting "$log")" -ge 2 ] && break; sleep 0.1; done
  check "firehose retries with backoff ($sig run)" test "$(grep -c reconnecting "$log")" -ge 2
  check "still up while the firehose is unreachable ($sig run)" kill -0 "${mpid:-0}"
  expect_contains "make run started ${BUILD:-build}/meadow ($sig run)" "$(cat "$log")" "${BUILD:-build}/meadow serve"
  check "make run rebuilt nothing ($sig run)" bash -c "! grep -q '^  CC ' '$log'"
  [ -n "$mpid" ] && kill -"$sig" "$mpid"
  wait "$mk"
  rc=$?
  expect_eq "make run exits 0 after SIG$sig" "$rc" 0
  expect_contains "clean stop logged ($sig run)" "$(cat "$log")" 'msg="stopped"'
  check "meadow gone after SIG$sig" bash -c "! kill -0 ${mpid:-0} 2>/dev/null"
done
finish
