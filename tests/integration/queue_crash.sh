#!/usr/bin/env bash
# The queue survives kill -9: a writer appending numbered events with their
# cursor (durable sync) and a consumer claiming and acking them are each
# SIGKILLed at random moments, QUEUE_CRASH_ROUNDS times (default 24; at least
# 20, fewer than 24 only when the first 20 took over 35 s). After
# every kill, before restarting, `queue_crash check` verifies: the stored
# cursor is not behind any commit the writer saw return; no event exists past
# the cursor; every event 1..cursor is queued or was delivered (none lost);
# the queue is in order and intact. At the end everything left is drained and
# every committed event must have been delivered at least once.
. "$(dirname "$0")/../lib.sh"
Q="$T/queue" W="$T/writer.log" C="$T/consumer.log"
rounds=${QUEUE_CRASH_ROUNDS:-24}
min_rounds=20 budget_s=${QUEUE_CRASH_BUDGET_S:-35} # stop early (after 20) on a slow machine
start=$SECONDS
# Random sleep of $1..$2 milliseconds.
rsleep() { sleep "$(awk -v a="$1" -v b="$2" -v r="$RANDOM" 'BEGIN { printf "%.3f", (a + (b - a) * r / 32767) / 1000 }')"; }

# A holder keeps the environment open throughout, so LMDB's lock table (reader
# slots, write mutex) carries over every kill instead of being reset on open.
"$TOOLS/queue_crash" hold "$Q" & hpid=$!
kills_w=0 kills_c=0 checks_ok=0 stale=0
done_rounds=0
for r in $(seq 1 "$rounds"); do
  if [ "$r" -gt "$min_rounds" ] && [ $((SECONDS - start)) -ge "$budget_s" ]; then break; fi
  done_rounds=$r
  "$TOOLS/queue_crash" writer "$Q" "$W" 2>"$T/writer.err" & wpid=$!
  "$TOOLS/queue_crash" consumer "$Q" "$C" 2>"$T/consumer.err" & cpid=$!
  PIDS=("$hpid" "$wpid" "$cpid")
  # Kill mid-work, not mid-startup: wait for this writer's first commit (a
  # loaded machine can take a second to start a sanitized binary).
  wsize=$(stat -c %s "$W" 2>/dev/null || echo 0) i=0
  while [ "$(stat -c %s "$W" 2>/dev/null || echo 0)" -le "$wsize" ] && [ $i -lt 500 ]; do
    sleep 0.01; i=$((i + 1))
  done
  rsleep 20 200
  # Which one dies first is random too; the other keeps running a little longer.
  if [ $((RANDOM % 2)) -eq 0 ]; then first=$wpid second=$cpid; else first=$cpid second=$wpid; fi
  kill -9 "$first" 2>/dev/null
  rsleep 0 80
  kill -9 "$second" 2>/dev/null
  { wait "$wpid"; wrc=$?; wait "$cpid"; crc=$?; } 2>/dev/null
  PIDS=("$hpid")
  # 137 = killed by SIGKILL; anything else means the process failed on its own.
  if [ "$wrc" -eq 137 ]; then kills_w=$((kills_w + 1)); else bad "round $r writer killed" "exit $wrc after ${i}0 ms start wait: $(cat "$T/writer.err")"; fi
  if [ "$crc" -eq 137 ]; then kills_c=$((kills_c + 1)); else bad "round $r consumer killed" "exit $crc: $(cat "$T/consumer.err")"; fi
  out=$("$TOOLS/queue_crash" check "$Q" "$W" "$C" 2>&1); rc=$?
  n=$(echo "$out" | sed -n 's/.*stale_readers_cleared=\([0-9]*\).*/\1/p'); stale=$((stale + ${n:-0}))
  if [ $rc -eq 0 ]; then checks_ok=$((checks_ok + 1)); ok "round $r invariants"; else bad "round $r invariants" "$out"; fi
  [ -n "${TEST_VERBOSE:-}" ] && echo "round $r: $out"
done
expect_eq "writer SIGKILLed every round" "$kills_w" "$done_rounds"
expect_eq "consumer SIGKILLed every round" "$kills_c" "$done_rounds"
check "holder still running" kill -0 "$hpid"
check "at least 20 kills each" test "$kills_w" -ge 20 -a "$kills_c" -ge 20

out=$("$TOOLS/queue_crash" check "$Q" "$W" "$C" --drain 2>&1); rc=$?
expect_eq "drain: every committed event delivered at least once" "$rc" 0
echo "$out"
committed=$(tail -1 "$W" 2>/dev/null || echo 0)
check "writer made progress ($committed events committed)" test "${committed:-0}" -gt 100
delivered=$(wc -l <"$C")
check "delivered >= committed ($delivered >= $committed)" test "$delivered" -ge "$committed"
echo "queue crash: $done_rounds rounds, $kills_w writer kills, $kills_c consumer kills, $committed events, $delivered deliveries, $stale stale reader slots cleared by checks, $((SECONDS - start))s"
finish
