#!/usr/bin/env bash
# WebSocket protocol handling of our own framing against the lws replay
# server: its pings are answered with pongs carrying the same data; a frame
# with a reserved bit set (no extension was negotiated) fails the connection
# with the reason logged, and the client reconnects from its cursor; every
# candidate of the input still reaches the queue (duplicates only from the
# rewind), with fragments and garbage frames in the stream too.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/firehose_common.bash"

"$TOOLS/gen_stream" --start-us $START_US --count 12000 --seed 23 >"$T/s.jsonl"
"$TOOLS/ref_filter" <"$T/s.jsonl" | sort -u >"$T/want.txt"
maxt=$(max_time "$T/s.jsonl")
check "stream has candidates" test "$(wc -l <"$T/want.txt")" -gt 30

start_replay "$T/s.jsonl" --ping-every 700 --bad-frame-after 4000 --fragment-every 9 --garbage-every 3000
start_meadow
if wait_cursor "$maxt" 30; then ok "cursor reaches the last time_us"; else bad "cursor reaches the last time_us" "cursor $(qcursor) want $maxt"; fi
stop_meadow
expect_eq "SIGTERM exits 0" "$MD_RC" 0

"$TOOLS/fh_qtool" dump "$QDIR" | sort -u >"$T/got.txt"
if cmp -s "$T/got.txt" "$T/want.txt"; then ok "every candidate queued (as a set)"; else
  bad "every candidate queued (as a set)" "$(diff "$T/got.txt" "$T/want.txt" | head -5)"; fi
log=$(cat "$T/meadow.log")
rlog=$(cat "$T/replay.log")
expect_contains "bad frame was sent" "$rlog" "replay: bad frame sent after 4000 events"
expect_contains "protocol error logged with its reason" "$log" "reserved bits 0x40 set"
expect_contains "reconnect names the error" "$log" 'why="protocol error: reserved bits'
expect_eq "connected twice" "$(grep -c 'jetstream connected' "$T/meadow.log")" 2
expect_contains "pings answered with the same data" "$rlog" 'replay: pong "meadow?"'
check "many pongs" test "$(grep -c 'replay: pong' "$T/replay.log")" -ge 10
finish
