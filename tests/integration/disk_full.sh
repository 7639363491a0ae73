#!/usr/bin/env bash
# A full disk is the environment's fault, never the events'. `meadow serve`
# runs on a 20 MB tmpfs whose free space a filler file has cut to a fraction
# of what the stream needs (~60,000 Jetstream events woven with community
# life, as pipeline_kill.sh), so queue and index commits fail with ENOSPC
# (LMDB's short writes, which it reports as EIO) mid-stream. Then:
#   - the processor pauses (logged once) and keeps every event: no dead
#     letter, nothing "giving up"; ingest pauses reading; serve stays up;
#   - the errno logged is ENOSPC, never EIO; log lines while full are bounded
#     (rate limits and backoff, not one line per retry);
#   - stopped and restarted while full, it exits 0 and comes back up paused;
#   - the filler is removed: everything resumes by itself, and every feed
#     equals that of an uninterrupted run on a roomy disk;
#   - a queue error no retry cures (an envelope version no build knows)
#     makes the processor give up and `meadow serve` exit non-zero.
# Needs root for the tmpfs (CI runs as root): skipped with a message otherwise.
. "$(dirname "$0")/../lib.sh"
T_DIR=$T
. "$(dirname "$0")/pipeline_lib.bash"
cd "$T"
HOLD=${DISK_FULL_HOLD_S:-10}
note() { [ -n "${TEST_VERBOSE:-}" ] && echo "# ${SECONDS}s: $*"; return 0; }

FULL=$T/full
mkdir -p "$FULL"
if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o size=20m tmpfs "$FULL" 2>/dev/null; then
  echo "# disk_full.sh skipped: cannot mount a tmpfs (needs root; CI runs it as root)"
  finish
  exit $?
fi
full_cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  umount "$FULL" 2>/dev/null
  cleanup
}
trap full_cleanup EXIT

now=$(now_us)
"$TOOLS/gen_stream" --start-us $((now - 25000000)) --count 57000 --rate 3000 --seed 7 |
  "$TOOLS/pipeline_gen" --every 20 --communities 3 --members 30 --summary "$T/summary" >"$STREAM"
check "stream of ~60,000 events" test "$(wc -l <"$STREAM")" -gt 59000
SENTINEL=$(awk '$1 == "sentinel" {print $2}' "$T/summary")
OWNER0=$(awk '$1 == "feed" {print $2; exit}' "$T/summary")
TAG0=$(awk '$1 == "feed" {print $3; exit}' "$T/summary")
RPORT=$(free_port)
check "replay server up" replay_start --quiet

SMALL_MAPS=(--index_map_mb 64 --queue_map_mb 64)

# The uninterrupted run on a roomy disk: the feeds to compare with, and how
# much room the stream takes.
REFPORT=$(free_port)
check "reference meadow serve up" serve_start "$T/ref" "$REFPORT" "$T/ref.log" "${SMALL_MAPS[@]}"
REFPID=$SPID
check "reference run drains to the sentinel" wait_sentinel "$REFPORT" 120
: >"$T/ref.feeds"
while read -r kind owner tag; do
  [ "$kind" = feed ] && echo "$tag $(feed_all "$REFPORT" "$owner" "$tag" 7)" >>"$T/ref.feeds"
done <"$T/summary"
kill -TERM "$REFPID"
wait "$REFPID"
need_kb=$(du -sk "$T/ref" | cut -f1)
note "reference done, data directory ${need_kb} KB"

# Leave a third of what the stream needs free: commits start failing mid-stream.
avail_kb=$(df -k --output=avail "$FULL" | tail -1)
room_kb=$((need_kb / 3))
[ $room_kb -lt 512 ] && room_kb=512
head -c $(((avail_kb - room_kb) * 1024)) /dev/zero >"$FULL/filler" 2>/dev/null
note "filler written, $(df -k --output=avail "$FULL" | tail -1) KB free"
PORT=$(free_port)
check "meadow serve up on the small tmpfs" serve_start "$FULL/data" "$PORT" "$T/full.log" \
  "${SMALL_MAPS[@]}"
FPID=$SPID
i=0
until grep -q "paused: storage refuses writes" "$T/full.log"; do
  i=$((i + 1))
  [ $i -gt 900 ] && break
  sleep 0.1
done
check "the processor paused on the full disk (logged)" grep -q "paused: storage refuses writes" "$T/full.log"
note "paused"
check "the errno logged is ENOSPC" grep -q "No space left on device" "$T/full.log"
lines0=$(wc -l <"$T/full.log")
sleep "$HOLD"
lines1=$(wc -l <"$T/full.log")
check "serve still running while the disk is full" kill -0 "$FPID"
case "$(curl -s --max-time 5 "http://127.0.0.1:$PORT/xrpc/_health")" in
*version*) ok "serve answers while the disk is full" ;;
*) bad "serve answers while the disk is full" "no /xrpc/_health reply" ;;
esac
held=$((lines1 - lines0))
note "$held log lines in ${HOLD}s while full"
check "log lines while full are bounded ($held in ${HOLD} s, at most $((HOLD * 2)))" \
  test "$held" -le $((HOLD * 2))
check "the processor did not apply the whole stream while full" test "$(sentinel_seen "$PORT" && echo y || echo n)" = n

# Stopped and started again while the disk is still full: it stops cleanly
# (nothing lost: what could not be stored is read again) and comes back up,
# paused, rather than refusing to start.
kill -TERM "$FPID"
wait "$FPID"
expect_eq "serve exits 0 on SIGTERM while the disk is full" "$?" 0
check "serve starts again while the disk is full" serve_start "$FULL/data" "$PORT" "$T/full.log" \
  "${SMALL_MAPS[@]}"
FPID=$SPID
i=0
until [ "$(grep -c "paused: storage refuses writes" "$T/full.log")" -ge 2 ]; do
  i=$((i + 1))
  [ $i -gt 300 ] && break
  sleep 0.1
done
check "paused again after the restart" test "$(grep -c "paused: storage refuses writes" "$T/full.log")" -ge 2

rm -f "$FULL/filler"
note "space freed"
check "resumes by itself when space returns: drains to the sentinel" wait_sentinel "$PORT" 120
check "resumption logged" grep -q "resumed: storage accepts writes again" "$T/full.log"
while read -r tag want; do
  owner=$(awk -v t="$tag" '$1 == "feed" && $3 == t {print $2}' "$T/summary")
  got=$(feed_all "$PORT" "$owner" "$tag" 7)
  expect_eq "feed $tag after the full disk equals the uninterrupted run ($(wc -w <<<"$want") posts)" \
    "$got" "$want"
done <"$T/ref.feeds"
kill -TERM "$FPID"
wait "$FPID"
expect_eq "serve exits 0 on SIGTERM after the full disk" "$?" 0
out=$("$MEADOW" --data "$FULL/data" --log_level warn queue stats 2>&1)
expect_contains "no dead letters" "$out" "dead: 0"
# index/write.c leaves the environment's failures to the processor, which
# logs them with the errno corrected: no line may say EIO.
if grep -q "Input/output error" "$T/full.log"; then
  bad "no EIO reported for the full disk" "$(grep -m2 "Input/output error" "$T/full.log")"
else ok "no EIO reported for the full disk"; fi
if grep -Eq "giving up|dead-letter|dead letter" "$T/full.log"; then
  bad "nothing given up or dead-lettered" "$(grep -Em2 "giving up|dead-letter|dead letter" "$T/full.log")"
else ok "nothing given up or dead-lettered"; fi
note "$(wc -l <"$T/full.log") log lines in all"

# A stage that truly cannot go on ends the process with a non-zero status.
check "queue poisoned (envelope version 99)" "$TOOLS/fh_qtool" poison "$FULL/data/queue"
"$MEADOW" serve --data "$FULL/data" --port "$PORT" --log_level info --source none \
  --index_map_mb 64 --queue_map_mb 64 >>"$T/fatal.log" 2>&1 &
pid=$!
PIDS+=("$pid")
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$pid" 2>/dev/null; then
  bad "serve ends by itself when the processor gives up" "still running after 60 s"
  kill -TERM "$pid"
fi
wait "$pid"
rc=$?
check "serve exits non-zero when a stage cannot go on (rc $rc)" test "$rc" -ne 0
expect_contains "why is logged" "$(cat "$T/fatal.log")" "a stage stopped on an error"
replay_stop
[ $fail -gt 0 ] && tail -20 "$T/full.log"
finish
