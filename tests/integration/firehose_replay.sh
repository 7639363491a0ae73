#!/usr/bin/env bash
# Replay server + `meadow firehose`: the queue holds exactly the candidates
# of the input (compared with tests/tools/ref_filter, an independent cJSON
# implementation), in stream order, despite fragmented messages and garbage
# frames (counted and logged, rate-limited); SIGTERM exits 0 with the cursor
# stored; a refused URL is skipped by failover.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/firehose_common.bash"

"$TOOLS/gen_stream" --start-us $START_US --count 20000 --seed 11 >"$T/s.jsonl"
"$TOOLS/ref_filter" <"$T/s.jsonl" >"$T/want.jsonl"
want_n=$(wc -l <"$T/want.jsonl")
maxt=$(max_time "$T/s.jsonl")
check "stream has candidates" test "$want_n" -gt 50

start_replay "$T/s.jsonl" --garbage-every 1500 --fragment-every 7
dead_port=$(free_port)
# The first URL refuses connections: failover must reach the second.
"$MEADOW" --data "$DATA" --jetstream_urls "ws://127.0.0.1:$dead_port/subscribe, ws://127.0.0.1:$RP_PORT/subscribe" \
  --backoff_min_ms 50 --backoff_max_ms 200 firehose 2>>"$T/meadow.log" &
MD_PID=$!; PIDS+=("$MD_PID")
if wait_cursor "$maxt" 30; then ok "cursor reaches the last time_us"; else bad "cursor reaches the last time_us" "cursor $(qcursor) want $maxt"; fi
stop_meadow
expect_eq "SIGTERM exits 0" "$MD_RC" 0

"$TOOLS/fh_qtool" dump "$QDIR" >"$T/got.jsonl"
expect_eq "candidate count" "$(wc -l <"$T/got.jsonl")" "$want_n"
if cmp -s "$T/got.jsonl" "$T/want.jsonl"; then ok "queue == reference, in order"; else
  bad "queue == reference, in order" "$(diff "$T/got.jsonl" "$T/want.jsonl" | head -5)"; fi
expect_eq "stored cursor after exit" "$(qcursor)" "$maxt"

log=$(cat "$T/meadow.log")
expect_contains "failover after refused url" "$log" "connection error"
expect_contains "garbage counted: not json" "$log" "reason=not_json"
expect_contains "garbage counted: no time_us" "$log" "reason=no_time_us"
expect_contains "garbage counted: oversize" "$log" "reason=oversize"
# ~10 garbage frames of 4 kinds: each kind logged once (at most once a minute).
expect_eq "malformed log rate-limited" "$(grep -c 'reason=not_json' "$T/meadow.log")" 1
expect_contains "stopped cleanly" "$log" "jetstream stopped"
finish
