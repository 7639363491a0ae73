#!/usr/bin/env bash
# `meadow queue stats` and `meadow queue dead list|requeue|purge [seq]` on a
# queue seeded by the real queue code (queue_crash fill: 10 events, the first
# 3 dead-lettered with errors "test failure 1..3").
. "$(dirname "$0")/../lib.sh"
cd "$T"
D="$T/data"

"$MEADOW" --data "$D" queue stats >out 2>err; rc=$?
expect_eq "stats without a queue exits 1" "$rc" 1
expect_contains "stats names the missing dir" "$(cat err)" "no queue at $D/queue"
check "no queue created by stats" test ! -e "$D/queue"

check "seed queue" "$TOOLS/queue_crash" fill "$D/queue" 10 3

out=$("$MEADOW" --data "$D" queue stats); rc=$?
expect_eq "stats exits 0" "$rc" 0
expect_contains "stats depth" "$out" "depth: 7"
expect_contains "stats dead" "$out" "dead: 3"
expect_contains "stats next_seq" "$out" "next_seq: 11"
expect_contains "stats cursor" "$out" "cursor_test: 10"
expect_contains "stats oldest time (event 4, time_us 4 s)" "$out" "oldest_time: 1970-01-01T00:00:04.000Z"
# The filler made a 64 MiB map; the CLI (queue_map_mb 1024) must report and keep it.
expect_contains "stats map size is the queue's own" "$out" "map_bytes: 67108864"
expect_contains "stats usage" "$out" "map_usage: 0.0"

out=$("$MEADOW" --data "$D" queue dead list); rc=$?
expect_eq "dead list exits 0" "$rc" 0
expect_contains "dead list first" "$out" 'seq=1 attempts=1 bytes='
expect_contains "dead list error" "$out" 'error="test failure 1" event=n=1;'
expect_contains "dead list third" "$out" 'seq=3 attempts=1'
expect_contains "dead list count" "$out" "3 dead letters"

out=$("$MEADOW" --data "$D" queue dead requeue 2); rc=$?
expect_eq "requeue one exits 0" "$rc" 0
expect_contains "requeue one" "$out" "requeued 1 dead letters"
out=$("$MEADOW" --data "$D" queue stats)
expect_contains "requeued to the queue" "$out" "depth: 8"
expect_contains "requeued at the tail" "$out" "next_seq: 12"
expect_contains "two left dead" "$out" "dead: 2"

"$MEADOW" --data "$D" queue dead requeue 2 >out 2>err; rc=$?
expect_eq "requeue unknown seq exits 1" "$rc" 1
expect_contains "requeue unknown seq message" "$(cat err)" "no dead letter with seq 2"
"$MEADOW" --data "$D" queue dead purge abc 2>err; rc=$?
expect_eq "bad seq exits 2" "$rc" 2
expect_contains "bad seq message" "$(cat err)" 'bad seq "abc"'
"$MEADOW" --data "$D" queue frobnicate 2>err; rc=$?
expect_eq "unknown subcommand exits 2" "$rc" 2
expect_contains "usage shown" "$(cat err)" "usage: meadow queue stats"

out=$("$MEADOW" --data "$D" queue stats)
expect_contains "a CLI write did not resize the map" "$out" "map_bytes: 67108864"

out=$("$MEADOW" --data "$D" queue dead purge); rc=$?
expect_eq "purge all exits 0" "$rc" 0
expect_contains "purge all" "$out" "purged 2 dead letters"
out=$("$MEADOW" --data "$D" queue dead list)
expect_contains "none left" "$out" "0 dead letters"
out=$("$MEADOW" --data "$D" queue stats)
expect_contains "events untouched by purge" "$out" "depth: 8"
finish
