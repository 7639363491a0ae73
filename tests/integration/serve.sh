#!/usr/bin/env bash
# `meadow serve` on an empty data directory and no reachable firehose: it
# stays up (retrying the source with backoff), serves HTTP, and exits 0 on
# SIGINT and on SIGTERM, closing LMDB cleanly (a second start reopens it).
. "$(dirname "$0")/../lib.sh"
cd "$T"

start_serve() { # log file
  port=$(free_port)
  "$MEADOW" serve --data "$T/data" --port "$port" --log_level info \
    --jetstream_urls ws://127.0.0.1:1/subscribe --backoff_max_ms 500 >"$1" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port "$port" 30
}

for sig in INT TERM; do
  check "serve ($sig run) listens" start_serve "$T/serve-$sig.log"
  # Wait (bounded) for the firehose to fail and retry twice.
  for _ in $(seq 1 100); do
    [ "$(grep -c 'reconnecting' "$T/serve-$sig.log")" -ge 2 ] && break
    sleep 0.1
  done
  check "process still up while the source is unreachable ($sig run)" kill -0 "$pid"
  out=$(curl -s "http://127.0.0.1:$port/xrpc/_health")
  expect_contains "health answers ($sig run)" "$out" '"version"'
  n=$(grep -c 'reconnecting' "$T/serve-$sig.log")
  [ "$n" -ge 2 ] && ok "firehose retries with backoff ($sig run)" || bad "firehose retries ($sig run)" "$n reconnect lines"
  kill -"$sig" "$pid"
  wait "$pid"; rc=$?
  expect_eq "exit 0 on SIG$sig" "$rc" 0
  expect_contains "clean stop logged ($sig run)" "$(cat "$T/serve-$sig.log")" 'msg="stopped"'
done
check "queue opened again after the stops" "$MEADOW" --data "$T/data" queue stats
finish
