#!/usr/bin/env bash
# Without any network (a fresh network namespace: no DNS, nothing leaves the
# machine), `meadow firehose` on the default public Jetstream URLs keeps
# retrying with backoff across the hosts: it neither exits nor spins, and
# SIGTERM still ends it with 0. Also a refused 127.0.0.1 port, as fallback
# where namespaces are not available.
. "$(dirname "$0")/../lib.sh"

run_offline() { # wrapper command...: runs meadow 3 s, prints "rc cpu_ticks"
  "$@" "$MEADOW" --data "$T/d" --backoff_min_ms 100 --backoff_max_ms 800 firehose 2>"$T/off.log" &
  local pid=$!
  # CPU is sampled from second 1 to second 3, so start-up (sanitizer runtime,
  # LMDB open) does not count: a spinning loop would burn ~200 ticks there.
  sleep 1
  local mpid
  mpid=$(pgrep -f -n "$MEADOW --data $T/d" || echo "$pid")
  local cpu0
  cpu0=$(awk '{print $14 + $15}' "/proc/$mpid/stat" 2>/dev/null || echo 0)
  sleep 2
  local cpu
  cpu=$(awk '{print $14 + $15 - '"$cpu0"'}' "/proc/$mpid/stat" 2>/dev/null || echo 999)
  kill -TERM "$mpid" 2>/dev/null
  wait "$pid"
  echo "$? $cpu"
}

if unshare -rn true 2>/dev/null; then
  read -r rc cpu < <(run_offline unshare -rn)
  expect_eq "offline: exits 0 on SIGTERM" "$rc" 0
  check "offline: no spinning (cpu ticks $cpu < 50)" test "$cpu" -lt 50
  log=$(cat "$T/off.log")
  expect_contains "offline: retries" "$log" "reconnecting"
  expect_contains "offline: fails over to the next host" "$log" "next_url=wss://jetstream2.us-east.bsky.network/subscribe"
  n=$(grep -c reconnecting "$T/off.log")
  check "offline: backoff bounds the attempts ($n in 3 s)" test "$n" -ge 3 -a "$n" -le 12
else
  echo "  (unshare -rn not available: namespace part skipped)"
fi

port=$(free_port)
"$MEADOW" --data "$T/d2" --jetstream_urls "ws://127.0.0.1:$port/subscribe" --backoff_min_ms 100 \
  --backoff_max_ms 800 firehose 2>"$T/refused.log" &
pid=$!
sleep 2
check "refused: still running" kill -0 "$pid"
kill -TERM "$pid"; wait "$pid"; rc=$?
expect_eq "refused: exits 0" "$rc" 0
n=$(grep -c reconnecting "$T/refused.log")
check "refused: retries with backoff ($n in 2 s)" test "$n" -ge 2 -a "$n" -le 10
finish
