#!/usr/bin/env bash
# Kill and restart the client (SIGKILL and SIGTERM) and the replay server
# several times mid-stream, with the server also dropping every connection
# after 3000 events: no candidate is lost, duplicates appear only inside the
# rewind window of some reconnect, and whenever the client is stopped the
# stored cursor is >= the time_us of every stored event, <= the largest
# time_us in the stream, and never moves backwards.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/firehose_common.bash"

"$TOOLS/gen_stream" --start-us $START_US --count 30000 --seed 21 --rate 200 \
  --tag-permille 40 >"$T/s.jsonl"
"$TOOLS/ref_filter" <"$T/s.jsonl" >"$T/want.jsonl"
maxt=$(max_time "$T/s.jsonl")

start_replay "$T/s.jsonl" --drop-after 3000 --rate 6000
start_meadow --watchdog_s 3
prev=0 inv_ok=1
check_invariants() { # client stopped: compare the stored cursor with the stored events
  local c dmax
  c=$(qcursor)
  [ "$c" = none ] && c=0
  dmax=$("$TOOLS/fh_qtool" dump "$QDIR" | grep -o '"time_us":[0-9]*' | cut -d: -f2 | sort -n | tail -1)
  dmax=${dmax:-0}
  if [ "$c" -lt "$dmax" ] || [ "$c" -gt "$maxt" ] || [ "$c" -lt "$prev" ]; then
    inv_ok=0; echo "  invariant broken: cursor=$c max_event=$dmax prev=$prev max_stream=$maxt"
  fi
  prev=$c
}
for round in 1 2 3 4 5 6 7; do
  sleep 0.$((3 + round % 4))
  case $((round % 3)) in
  1) kill -KILL "$MD_PID"; wait "$MD_PID" 2>/dev/null; check_invariants; start_meadow --watchdog_s 3 ;;
  2) stop_meadow; expect_eq "round $round: SIGTERM exits 0" "$MD_RC" 0; check_invariants; start_meadow --watchdog_s 3 ;;
  0) kill -KILL "$RP_PID"; wait "$RP_PID" 2>/dev/null; sleep 0.2; start_replay "$T/s.jsonl" --drop-after 3000 --rate 6000 ;;
  esac
done
if wait_cursor "$maxt" 60; then ok "cursor reaches the end after restarts"; else bad "cursor reaches the end after restarts" "cursor $(qcursor) want $maxt"; fi
stop_meadow
check_invariants
expect_eq "cursor invariants at every stop" "$inv_ok" 1

"$TOOLS/fh_qtool" dump "$QDIR" >"$T/got.jsonl"
sort -u "$T/got.jsonl" >"$T/got.u"
sort -u "$T/want.jsonl" >"$T/want.u"
expect_eq "no candidate lost" "$(comm -23 "$T/want.u" "$T/got.u" | wc -l)" 0
expect_eq "nothing but candidates" "$(comm -13 "$T/want.u" "$T/got.u" | wc -l)" 0
nconn=$(grep -c 'replay: connection cursor=' "$T/replay.log")
check "several reconnects happened" test "$nconn" -ge 8
# Each duplicate's time_us lies inside [X, X + rewind] for the cursor X of some reconnect.
sort "$T/got.jsonl" | uniq -d | grep -o '"time_us":[0-9]*' | cut -d: -f2 >"$T/dups"
grep -o 'connection cursor=[0-9]*' "$T/replay.log" | cut -d= -f2 >"$T/asked"
outside=$(awk -v rw=5000000 'NR==FNR { a[n++] = $1; next }
  { ok = 0; for (i = 0; i < n; i++) if ($1 >= a[i] && $1 <= a[i] + rw + 40000) ok = 1; if (!ok) bad++ }
  END { print bad + 0 }' "$T/asked" "$T/dups")
expect_eq "duplicates only inside the rewind window" "$outside" 0
echo "  (events stored $(wc -l <"$T/got.jsonl"), candidates $(wc -l <"$T/want.jsonl"), duplicates $(wc -l <"$T/dups"), connections $nconn)"
finish
