#!/usr/bin/env bash
# Backpressure: with a small high-water mark and nothing consuming, ingest
# stops reading the socket (the queue stops growing, the cursor stops short
# of the end); drained by another process, it resumes below low water; in
# the end the queue delivered exactly the candidates, in order: nothing
# dropped, nothing duplicated.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/firehose_common.bash"

"$TOOLS/gen_stream" --start-us $START_US --count 4000 --seed 41 --tag-permille 1000 >"$T/s.jsonl"
"$TOOLS/ref_filter" <"$T/s.jsonl" >"$T/want.jsonl"
want_n=$(wc -l <"$T/want.jsonl")
maxt=$(max_time "$T/s.jsonl")
start_replay "$T/s.jsonl"
start_meadow --queue_high_water 100 --queue_low_water 20 --batch_max_events 20
i=0
while [ "$(qdepth)" -lt 100 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
d1=$(qdepth); c1=$(qcursor)
sleep 1
d2=$(qdepth); c2=$(qcursor)
check "queue reached high water" test "$d1" -ge 100
check "reading stopped: depth bounded" test "$d1" -lt 800
expect_eq "reading stopped: depth stable" "$d2" "$d1"
expect_eq "reading stopped: cursor stable" "$c2" "$c1"
check "stream not finished while paused" test "$d1" -lt "$want_n"
expect_contains "pause logged" "$(cat "$T/meadow.log")" "pausing reads"

# Drain from another process until the whole stream went through.
: >"$T/got.jsonl"
i=0
while [ $i -lt ${DRAIN_ITERS:-300} ]; do
  "$TOOLS/fh_qtool" take "$QDIR" >>"$T/got.jsonl"
  [ "$(qcursor)" = "$maxt" ] && [ "$(qdepth)" = 0 ] && break
  sleep 0.1; i=$((i + 1))
done
"$TOOLS/fh_qtool" take "$QDIR" >>"$T/got.jsonl"
expect_eq "cursor reached the end" "$(qcursor)" "$maxt"
stop_meadow
expect_eq "exit 0" "$MD_RC" 0
expect_contains "resume logged" "$(cat "$T/meadow.log")" "resuming reads"
expect_eq "every candidate delivered once" "$(wc -l <"$T/got.jsonl")" "$want_n"
if cmp -s "$T/got.jsonl" "$T/want.jsonl"; then ok "delivered == reference, in order"; else
  bad "delivered == reference, in order" "$(diff "$T/got.jsonl" "$T/want.jsonl" | head -3)"; fi
finish
