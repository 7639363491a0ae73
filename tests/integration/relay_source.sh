#!/usr/bin/env bash
# `meadow firehose --source relay` against a local subscribeRepos replay of
# the corpus's 150 real frames: the queue ends up holding exactly the
# lightweight filter's candidates among the decoded events (the reference
# filter over `meadow relay decode`), the stored cursor is the last seq, a
# server dropping every connection is resumed by seq without losing
# anything, a restart asks for the stored cursor and gets nothing twice,
# FutureCursor is handled, and a forged signature is refused with
# verify_commits while the rest of the stream goes on.
. "$(dirname "$0")/../lib.sh"
C="$PWD/../shared/testdata/atproto-corpus"
[ -n "${MEADOW_CORPUS:-}" ] && C=$MEADOW_CORPUS
F="$C/relay_frames.bin.zst"
LAST=31527015471

start_replay() { # FILE [flags]: sets RP_PID, RP_PORT
  local file=$1; shift
  : >"$T/replay.port"
  "$TOOLS/relay_replay" --file "$file" --max-seconds 120 "$@" >"$T/replay.port" 2>>"$T/replay.log" &
  RP_PID=$!
  PIDS+=("$RP_PID")
  local i=0
  while ! grep -q '^port=' "$T/replay.port" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "replay did not start"; return 1; }; sleep 0.05
  done
  RP_PORT=$(sed -n 's/^port=//p' "$T/replay.port")
}
start_meadow() { # DATA [settings]
  local data=$1; shift
  "$MEADOW" --data "$data" --source relay --relay_url "ws://127.0.0.1:$RP_PORT" \
    --backoff_min_ms 20 --backoff_max_ms 200 "$@" firehose 2>>"$T/meadow.log" &
  MD_PID=$!
  PIDS+=("$MD_PID")
}
stop_meadow() { kill -TERM "$MD_PID" 2>/dev/null; wait "$MD_PID"; MD_RC=$?; }
qcursor() { "$TOOLS/fh_qtool" cursor "$1/queue" 2 2>/dev/null || echo none; }
wait_grep() { # FILE PATTERN SECONDS: until FILE has a line with PATTERN
  local i=0
  until grep -q -- "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt $(($3 * 10)) ] && return 1; sleep 0.1
  done
}
wait_cursor() { # DATA WANT SECONDS
  local i=0
  while [ "$(qcursor "$1")" != "$2" ]; do
    i=$((i + 1)); [ $i -gt $(($3 * 10)) ] && return 1; sleep 0.1
  done
}

"$MEADOW" relay decode "$F" 2>/dev/null | "$TOOLS/ref_filter" >"$T/want.jsonl"
check "the window has candidates" test -s "$T/want.jsonl"

# 1. A server that drops every connection after 37 frames: resumed by seq.
start_replay "$F" --drop-after 37
start_meadow "$T/d1"
if wait_cursor "$T/d1" $LAST 30; then ok "cursor reaches the last seq"; else bad "cursor reaches the last seq" "cursor $(qcursor "$T/d1")"; fi
stop_meadow
expect_eq "SIGTERM exits 0" "$MD_RC" 0
"$TOOLS/fh_qtool" dump "$T/d1/queue" >"$T/got.jsonl"
check "queue holds exactly the filter's candidates, in order" cmp -s "$T/got.jsonl" "$T/want.jsonl"
nconn=$(grep -c 'connection cursor=' "$T/replay.log")
check "reconnected several times" test "$nconn" -ge 4
check "reconnects asked for the seq cursor" grep -q 'connection cursor=3152701' "$T/replay.log"
kill -TERM "$RP_PID"; wait "$RP_PID" 2>/dev/null

# 2. Restart: the stored cursor is asked for; nothing is stored twice.
: >"$T/replay.log"
start_replay "$F"
start_meadow "$T/d1"
wait_grep "$T/replay.log" "connection cursor=" 30
sleep 0.5 # time for anything (wrongly) sent to arrive
stop_meadow
expect_contains "restart asks for the stored cursor" "$(cat "$T/replay.log")" "connection cursor=$LAST"
"$TOOLS/fh_qtool" dump "$T/d1/queue" >"$T/got2.jsonl"
check "nothing stored twice after a restart" cmp -s "$T/got2.jsonl" "$T/want.jsonl"
kill -TERM "$RP_PID"; wait "$RP_PID" 2>/dev/null

# 3. A relay behind our cursor (e.g. reset): FutureCursor, then the live tail.
"$TOOLS/relay_frames" head "$F" "$T/head.bin" 100
: >"$T/meadow.log"
start_replay "$T/head.bin"
start_meadow "$T/d1"
wait_grep "$T/replay.log" "connection cursor=-1" 30
stop_meadow
expect_contains "FutureCursor logged" "$(cat "$T/meadow.log")" "error=FutureCursor"
check "reconnected without a cursor after FutureCursor" grep -q 'connection cursor=-1' "$T/replay.log"
expect_eq "the cursor never moves back" "$(qcursor "$T/d1")" $LAST
kill -TERM "$RP_PID"; wait "$RP_PID" 2>/dev/null

# 4. verify_commits: a forged signature is refused, the stream goes on.
"$TOOLS/relay_frames" forge-sig "$F" "$T/forged.bin" 3
: >"$T/meadow.log"
start_replay "$T/forged.bin"
start_meadow "$T/d2" --verify_commits true --did_docs_file "$C/did_docs.json.zst"
if wait_cursor "$T/d2" $LAST 30; then ok "verified stream reaches the last seq"; else bad "verified stream reaches the last seq" "cursor $(qcursor "$T/d2")"; fi
stop_meadow
expect_contains "forged frame refused" "$(cat "$T/meadow.log")" "relay frame refused"
expect_contains "refusal names the signature" "$(cat "$T/meadow.log")" "commit signature: does not verify"
"$MEADOW" --verify_commits true --did_docs_file "$C/did_docs.json.zst" relay decode "$T/forged.bin" \
  2>/dev/null | "$TOOLS/ref_filter" >"$T/want_verified.jsonl"
"$TOOLS/fh_qtool" dump "$T/d2/queue" >"$T/got3.jsonl"
check "stored = candidates of the verified frames" cmp -s "$T/got3.jsonl" "$T/want_verified.jsonl"
finish
