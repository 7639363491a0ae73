#!/usr/bin/env bash
# A stream without a single candidate still advances the stored cursor
# (cursor-only commits at least once a second, also while the server pauses
# mid-stream); a resume cursor older than the server's window (the server
# "forgot" it, as Jetstream clamps silently) is detected, logged and counted;
# a silent server is dropped by the watchdog and the client reconnects.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/firehose_common.bash"

"$TOOLS/gen_stream" --start-us $START_US --count 6000 --seed 31 --rate 500 --no-candidates >"$T/q.jsonl"
expect_eq "stream has no candidates" "$("$TOOLS/ref_filter" <"$T/q.jsonl" | wc -l)" 0
maxt=$(max_time "$T/q.jsonl")
# The server pauses 4 s after 2000 events (of ~4800 it sends: likes are not wanted).
start_replay "$T/q.jsonl" --pause-after 2000 --pause-ms 4000
start_meadow --watchdog_s 6
i=0
while ! grep -q "replay: paused" "$T/replay.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1.5 # the client commits the cursor alone at least once a second
mid=$(qcursor)
resumed=$(grep -c "replay: resumed" "$T/replay.log")
# Time of the 2000th event the server sent (posts and identity; likes etc. are filtered out).
t2000=$(grep -E '"kind":"identity"|"collection":"app.bsky.feed.post"' "$T/q.jsonl" | sed -n 2000p |
  grep -o '"time_us":[0-9]*' | cut -d: -f2)
expect_eq "server still paused at the check" "$resumed" 0
check "cursor stored during the pause" test "${mid/none/0}" -ge $((t2000 - 40000))
expect_eq "no event queued" "$(qdepth)" 0
if wait_cursor "$maxt" 20; then ok "quiet stream: cursor reaches the end"; else bad "quiet stream: cursor reaches the end" "cursor $(qcursor) want $maxt"; fi
# Silence after the end of the file: the watchdog (6 s) reconnects.
i=0
while ! grep -q "jetstream silent" "$T/meadow.log" && [ $i -lt 90 ]; do sleep 0.1; i=$((i + 1)); done
expect_contains "watchdog reconnects a silent server" "$(cat "$T/meadow.log")" "jetstream silent"
stop_meadow
expect_eq "exit 0" "$MD_RC" 0
kill "$RP_PID"; wait "$RP_PID" 2>/dev/null

# Clamped cursor: the server now keeps only events 300 s newer than our cursor.
"$TOOLS/gen_stream" --start-us $((maxt + 300000000)) --count 2000 --seed 32 --rate 500 >"$T/later.jsonl"
cat "$T/q.jsonl" "$T/later.jsonl" >"$T/both.jsonl"
start_replay "$T/both.jsonl" --forget 6000
start_meadow
if wait_cursor "$(max_time "$T/later.jsonl")" 20; then ok "clamped: stream goes on"; else bad "clamped: stream goes on" "cursor $(qcursor)"; fi
stop_meadow
expect_contains "clamped cursor detected" "$(cat "$T/meadow.log")" "resume cursor was clamped"
expect_eq "clamp logged once" "$(grep -c 'resume cursor was clamped' "$T/meadow.log")" 1
finish
