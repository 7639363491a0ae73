#!/usr/bin/env bash
# Crash safety of the whole pipeline: `meadow serve` is killed with SIGKILL
# at random moments during a replay (at least KILLS times, restarted each time
# on the same data directory; the replay server keeps serving the same file
# and honours the resume cursor). After the final restart and drain, every
# feed equals that of an uninterrupted run beside it: getFeedSkeleton pages
# (limit 7) of every community, and `meadow index dump` (with and without
# --records) of both data directories: no loss, no duplicate.
#
# Stream: gen_stream noise (30,000 events stamped over the last ~25 s) woven
# with ~2,000 community events by pipeline_gen (3 communities, 30 members:
# posts, late joins, hides/unhides, blocks/unblocks, deletes, edits, inactive
# memberships, account deactivation), ending with a sentinel post. The replay
# server paces each connection (--rate) so that the kills land mid-replay.
. "$(dirname "$0")/../lib.sh"
T_DIR=$T
. "$(dirname "$0")/pipeline_lib.bash"
cd "$T"
KILLS=${PIPELINE_KILLS:-20}
RATE=${PIPELINE_RATE:-4000}
SERVE_LOG_LEVEL=warn
note() { [ -n "${TEST_VERBOSE:-}" ] && echo "# ${SECONDS}s: $*"; return 0; }

now=$(now_us)
"$TOOLS/gen_stream" --start-us $((now - 25000000)) --count 30000 --rate 1500 --seed 11 |
  "$TOOLS/pipeline_gen" --every 15 --communities 3 --members 30 --summary "$T/summary" >"$STREAM"
check "stream generated" test -s "$T/summary"
SENTINEL=$(awk '$1 == "sentinel" {print $2}' "$T/summary")
OWNER0=$(awk '$1 == "feed" {print $2; exit}' "$T/summary")
TAG0=$(awk '$1 == "feed" {print $3; exit}' "$T/summary")

RPORT=$(free_port)
check "replay server up" replay_start --rate "$RATE" --quiet


# The uninterrupted reference run, beside the killed one.
REFPORT=$(free_port)
check "reference meadow serve up" serve_start "$T/ref" "$REFPORT" "$T/ref.log"
REFPID=$SPID

PORT=$(free_port)
kills=0
start=$SECONDS
while [ $kills -lt $KILLS ] && [ $((SECONDS - start)) -lt 90 ]; do
  "$MEADOW" serve --data "$T/killed" --port "$PORT" --log_level warn \
    --jetstream_urls "ws://127.0.0.1:$RPORT/subscribe" --backoff_min_ms 20 --backoff_max_ms 200 \
    --rewind_s 1 --index_map_mb 256 --queue_map_mb 256 >>"$T/killed.log" 2>&1 &
  pid=$!
  # A random moment: from right after exec (LMDB opening) to ~1.2 s later.
  sleep "0.$(printf %03d $((RANDOM % 1000)))"
  [ $((RANDOM % 3)) -eq 0 ] && sleep 0.$((RANDOM % 3))
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  kills=$((kills + 1))
done
note "kill loop done"
expect_eq "SIGKILLed $KILLS times" "$kills" "$KILLS"
# Progress is monotone: if the last kill came before the sentinel was applied, all did.
"$MEADOW" --data "$T/killed" --log_level warn index dump >"$T/mid.dump" 2>>"$T/killed.log"
midposts=$(grep -c "app.bsky.feed.post" "$T/mid.dump")
case "$(cat "$T/mid.dump")" in
*"$SENTINEL"*) bad "every kill landed before the replay was drained" "sentinel already applied" ;;
*) ok "every kill landed before the replay was drained" ;;
esac
[ "$midposts" -gt 0 ] && ok "the killed instances made progress ($midposts post lines indexed)" || bad "progress between kills" "nothing indexed"

check "killed instance restarted a last time" serve_start "$T/killed" "$PORT" "$T/killed.log"
kill -0 "$SPID" 2>/dev/null || tail -5 "$T/killed.log"
KPID=$SPID
check "killed instance drains to the sentinel" wait_sentinel "$PORT" 90
note "killed instance drained"
check "reference run drains to the sentinel" wait_sentinel "$REFPORT" 90
note "reference drained"

total=0
while read -r kind owner tag; do
  [ "$kind" = feed ] || continue
  want=$(feed_all "$REFPORT" "$owner" "$tag" 7)
  got=$(feed_all "$PORT" "$owner" "$tag" 7)
  n=$(wc -w <<<"$want")
  total=$((total + n))
  expect_eq "feed $tag (paged by 7): killed run equals the uninterrupted run ($n posts)" \
    "$got" "$want"
  dups=$(tr ' ' '\n' <<<"$got" | sort | uniq -d | wc -l)
  expect_eq "feed $tag: no post twice" "$dups" 0
done <"$T/summary"
[ "$total" -ge 300 ] && ok "feeds are not trivial ($total posts)" || bad "feeds not trivial" "$total posts"

note "feeds compared"
kill -TERM "$KPID" "$REFPID"
wait "$KPID"
expect_eq "killed instance exits 0 on SIGTERM" "$?" 0
wait "$REFPID"
expect_eq "reference instance exits 0 on SIGTERM" "$?" 0
replay_stop
note "stopped"

"$MEADOW" --data "$T/ref" --log_level warn index dump >"$T/ref.dump" 2>>"$T/ref.log"
"$MEADOW" --data "$T/killed" --log_level warn index dump >"$T/killed.dump" 2>>"$T/killed.log"
check "index dump is not empty" test "$(wc -l <"$T/ref.dump")" -gt 100
check "index dump equal to the uninterrupted run's" cmp -s "$T/ref.dump" "$T/killed.dump"
"$MEADOW" --data "$T/ref" --log_level warn index dump --records >"$T/ref.rdump" 2>>"$T/ref.log"
"$MEADOW" --data "$T/killed" --log_level warn index dump --records >"$T/killed.rdump" 2>>"$T/killed.log"
check "index dump --records (revs, first seen, tombstones) equal" cmp -s "$T/ref.rdump" "$T/killed.rdump"
if ! cmp -s "$T/ref.rdump" "$T/killed.rdump"; then diff "$T/ref.rdump" "$T/killed.rdump" | head -20; fi
note "dumps compared"
finish
