#!/usr/bin/env bash
# A queue error no retry cures ends ingest, and the process says so: with a
# queue whose next_seq is damaged (fh_qtool break-appends: every append
# fails with "stored data corrupt"), `meadow firehose` stops reading and
# exits non-zero by itself, and so does `meadow serve` (the firehose thread
# ends, serve stops the other stages). The cursor stays where it was:
# nothing is claimed as stored. (A full map or disk only pauses ingest:
# firehose_backpressure.sh, disk_full.sh.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/firehose_common.bash"

"$TOOLS/gen_stream" --start-us $START_US --count 2000 --seed 5 --tag-permille 1000 >"$T/s.jsonl"
start_replay "$T/s.jsonl"
"$TOOLS/fh_qtool" depth "$QDIR" >/dev/null 2>&1 # creates the queue
check "queue damaged" "$TOOLS/fh_qtool" break-appends "$QDIR"

# wait_exit PID SECONDS: until the process ends; its status in EXIT_RC (-1 on timeout).
wait_exit() {
  local i=0
  while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$1" 2>/dev/null; then kill -TERM "$1"; wait "$1"; EXIT_RC=-1; return; fi
  wait "$1"
  EXIT_RC=$?
}

start_meadow
wait_exit "$MD_PID" 30
check "meadow firehose ends by itself with a non-zero status (rc $EXIT_RC)" test "$EXIT_RC" -gt 0
log=$(cat "$T/meadow.log")
expect_contains "the queue error is logged" "$log" "stored data corrupt"
expect_contains "ingest says it stops" "$log" "queue failed: ingest stops"
n=$(grep -c 'msg="queue failed: ingest stops' "$T/meadow.log")
expect_eq "logged once" "$n" 1
expect_eq "no cursor stored" "$(qcursor)" none

PORT=$(free_port)
"$MEADOW" serve --data "$DATA" --port "$PORT" --jetstream_urls "ws://127.0.0.1:$RP_PORT/subscribe" \
  --backoff_min_ms 50 --backoff_max_ms 400 >"$T/serve.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
wait_exit "$SPID" 30
check "meadow serve exits non-zero by itself when ingest cannot go on (rc $EXIT_RC)" test "$EXIT_RC" -gt 0
expect_contains "serve says which stage stopped" "$(cat "$T/serve.log")" "stage=firehose"
finish
