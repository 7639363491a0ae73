#!/usr/bin/env bash
# The whole system through real processes (issue 8): ONE real @atproto/pds
# (tests/e2e/pds.sh) on 127.0.0.1, `meadow serve --source relay` following
# that PDS's own com.atproto.sync.subscribeRepos, the `meadow` CLI writing
# community / membership / moderation / feed records, @atproto/api posting
# and calling app.bsky.feed.getFeedSkeleton on Meadow. Then `meadow rebuild`
# from the PDS into an empty data directory must give the live index.
#
# Waits are bounded polls (tests/node/e2e-feed.mjs, every 50 ms). Where a
# test must show that something does NOT happen, a later "marker" post by the
# member is awaited: the PDS's firehose is ordered by seq and the processor
# applies in queue order, so once the marker is listed every earlier event
# has been applied — no sleeping and hoping.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e/pds.sh"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$T"
t0=$SECONDS

pds_start alice bob carol || { bad "the PDS starts" "see above"; finish; exit 1; }
ok "the PDS starts"
export MEADOW_PDS_URL=$PDS_URL MEADOW_PLC_URL=$PLC_URL
ALICE_DID=$(pds_field alice did)
BOB_DID=$(pds_field bob did)
CAROL_DID=$(pds_field carol did)
quiet() { "$@" >/dev/null; }
as() { # name, meadow args...: the CLI logged in as <name>.test, own session cache
  local who=$1; shift
  MEADOW_IDENTIFIER="$who.test" MEADOW_APP_PASSWORD=$(pds_field "$who" appPassword) \
    MEADOW_SESSION_FILE="$T/$who.session.json" MEADOW_DATA="$T/cli-$who" "$MEADOW" "$@" 2>>"$T/cli.err"
}

# meadow serve follows the PDS's firehose directly (no relay in between).
port=$(free_port)
start_serve() { # waits until it listens and has connected to the PDS's firehose
  local n i=0
  n=$(grep -c 'relay connected' "$T/serve.log" 2>/dev/null)
  "$MEADOW" serve --source relay --relay_url "ws://127.0.0.1:${PDS_URL##*:}" --port "$port" \
    --data "$T/live" --backoff_max_ms 500 --log_level info >>"$T/serve.log" 2>&1 &
  SERVE_PID=$!
  PIDS+=("$SERVE_PID")
  wait_port "$port" 30 || return 1
  while [ "$(grep -c 'relay connected' "$T/serve.log")" -le "${n:-0}" ]; do
    i=$((i + 1)); [ $i -gt 300 ] && return 1; sleep 0.1
  done
}
stop_serve() {
  kill -TERM "$SERVE_PID"
  wait "$SERVE_PID"
}
start_serve || { bad "meadow serve listens and connects" "$(tail -20 "$T/serve.log")"; finish; exit 1; }
ok "meadow serve listens and connects to the PDS's subscribeRepos"
SVC="http://127.0.0.1:$port"
feed_has()   { "$NODE" "$NODE_DIR/e2e-feed.mjs" "$SVC" "$feed" --until has "$1" --timeout-ms "${2:-2000}" >/dev/null; }
feed_lacks() { "$NODE" "$NODE_DIR/e2e-feed.mjs" "$SVC" "$feed" --until lacks "$1" --timeout-ms 2000 >/dev/null; }
feed_list()  { "$NODE" "$NODE_DIR/e2e-feed.mjs" "$SVC" "$feed"; }
post() { pds_post "$1" "$2" | json_get - j.uri; }
marker_n=0
marker() { # a member's post, awaited: every earlier firehose event is then applied
  marker_n=$((marker_n + 1))
  local m
  m=$(post bob "marker $marker_n $tag")
  feed_has "$m" 5000
}

# ---- the owner creates; the member joins ----
# A name with a quote, markup and non-ASCII text: its record must be stored
# as the same text whether it came from the firehose or from a rebuild.
out=$(as alice community create --name 'Garden "club" <b>— ferns & ñ</b>' --description 'plants')
tag=$(echo "$out" | sed -n 's/^hashtag: //p')
cfg=$(echo "$out" | sed -n 's/^config: //p')
feed=$(echo "$out" | sed -n 's/^feed: //p')
check "the owner creates a community with the CLI" test -n "$tag" -a -n "$cfg" -a -n "$feed"
check "the member joins with the CLI" quiet as bob community join "$cfg"

# ---- post -> listed, measured strictly from createRecord's answer ----
# 5 posts, each after 1 s idle (the PDS's sequencer then polls its database
# at its slowest), polled every 20 ms.
lat=$("$NODE" "$NODE_DIR/e2e-latency.mjs" "$PDS_URL" bob.test "$(pds_field bob appPassword)" \
  "$SVC" "$feed" "$tag" 5 20 2000 1000)
expect_eq "each of 5 member posts listed within 2 s of createRecord's answer" "$?" 0
echo "e2e_feed: post -> listed (ms after createRecord answered): $(json_get - 'j.ms.join(" ")' <<<"$lat");" \
  "of which frame -> listed (Meadow): $(json_get - 'j.meadowMs.join(" ")' <<<"$lat")" >&2
p1=$(post bob "first post $tag")
check "a member's tagged post is listed within 2 s" feed_has "$p1"

# ---- moderation by the owner ----
as alice moderate hide "$p1" --community "$cfg" >/dev/null
check "hidden by the owner: gone" feed_lacks "$p1"
as alice moderate unhide "$p1" --community "$cfg" >/dev/null
check "unhidden: back" feed_has "$p1"
as alice moderate block bob.test --community "$cfg" >/dev/null
check "member blocked: gone" feed_lacks "$p1"
as alice moderate unblock bob.test --community "$cfg" >/dev/null
check "member unblocked: back" feed_has "$p1"

# ---- the member deletes a post ----
p2=$(post bob "second post $tag")
check "second post listed" feed_has "$p2"
pds_delete_post bob "$p2" >/dev/null
check "deleted by the member: gone" feed_lacks "$p2"

# ---- an outsider's tagged post is never listed ----
p3=$(post carol "outsider $tag")
check "an outsider's post is not listed while polling" \
  "$NODE" "$NODE_DIR/e2e-feed.mjs" "$SVC" "$feed" --never "$p3" --for-ms 1000
check "marker after the outsider's post listed" marker
check "the outsider's post reached the index (seen, tagged)" \
  bash -c "'$MEADOW' index dump --data '$T/live' 2>/dev/null | grep -qF 'tagged $p3 '"
feed_list >"$T/list" 2>&1
check "... and is still not in the feed" bash -c "! grep -qF '$p3' '$T/list'"

# ---- a member's own moderation action has no effect ----
as bob moderate hide "$p1" --community "$cfg" >/dev/null
as bob moderate block alice.test --community "$cfg" >/dev/null
expect_contains "the CLI warns the member that Meadow will ignore it" "$(tail -5 "$T/cli.err")" "ignore this action"
check "marker after the member's actions listed" marker
check "the member's actions reached the index" \
  bash -c "'$MEADOW' index dump --data '$T/live' 2>/dev/null | grep -c 'author=$BOB_DID action=' | grep -qx 2"
check "a member's own hide has no effect" feed_has "$p1"

# ---- restart: the PDS's seq cursor resumes where serve stopped ----
stop_serve
expect_eq "serve stops cleanly (exit 0)" "$?" 0
p4=$(post bob "written while meadow was down $tag")
start_serve || bad "serve restarts" "$(tail -5 "$T/serve.log")"
check "a post written while serve was down is listed after the restart" feed_has "$p4" 5000
expect_contains "the restart resumed from the stored seq cursor" \
  "$(grep 'relay connected' "$T/serve.log" | tail -1)" "cursor="
check "... a non-zero one" bash -c "! grep 'relay connected' '$T/serve.log' | tail -1 | grep -q 'cursor=0$'"
n=$(feed_list | sort | uniq -d | wc -l)
expect_eq "no post listed twice after the restart" "$n" 0

# An account created while serve follows the PDS (after the
# restart, so this process's counters see them): its #identity, #account
# (and first #commit) frames go through the relay source too
# (checked on /metrics at the end, after the last marker).
check "a fourth account is created while serve follows" quiet pds_account dave

# ---- feed publish: a valid app.bsky.feed.generator, read back ----
f=$(as alice --service_did did:web:feeds.example.test feed publish "$cfg" --display-name "Garden")
expect_eq "feed publish prints the feed URI" "$f" "$feed"
xrpc_get com.atproto.repo.getRecord "repo=$ALICE_DID&collection=app.bsky.feed.generator&rkey=${feed##*/}" >"$T/gen.json"
mapfile -t g < <(json_fields "$T/gen.json" 'j.value.$type' j.value.did j.value.displayName 'typeof j.value.createdAt')
expect_eq "generator record: \$type" "${g[0]}" app.bsky.feed.generator
expect_eq "generator record: did" "${g[1]}" did:web:feeds.example.test
expect_eq "generator record: displayName" "${g[2]}" Garden
expect_eq "generator record: createdAt" "${g[3]}" string
json_get "$T/gen.json" "JSON.stringify({id: 'gen', nsid: 'app.bsky.feed.generator', record: j.value})" >"$T/gen.jsonl"
(cd "$NODE_DIR" && "$NODE" lexicon-judge.mjs "$T/gen.jsonl" "$REPO/lexicon" "$REPO/tests/lexicon/docs") >"$T/gen.tsv" 2>&1
expect_eq "generator record valid for @atproto/lexicon (assertValidRecord)" "$(cut -f2 "$T/gen.tsv")" valid
json_get "$T/gen.json" j.value >"$T/gen-value.json"
check "generator record valid for meadow's validator" quiet "$MEADOW" lexicon validate app.bsky.feed.generator "$T/gen-value.json"

# ---- rebuild from the PDS equals the live index ----
check "last marker listed (the live index has every event)" marker
"$MEADOW" index dump --data "$T/live" >"$T/live.dump" 2>"$T/err"
check "live index dump" test -s "$T/live.dump"
"$MEADOW" rebuild --data "$T/rebuilt" >"$T/rebuild.log" 2>&1
expect_eq "rebuild into an empty data directory exits 0" "$?" 0
"$MEADOW" index dump --data "$T/rebuilt" >"$T/rebuilt.dump" 2>>"$T/err"
# A config's rev legitimately differs: live, it is the rev of the commit that
# wrote the record; a rebuild knows only the repository's head rev
# (listRecords gives no per-record rev), which is newer. Either is a correct
# staleness mark (a later firehose event has a newer rev than both).
# An `account ... visible=1 status=active` row (from an #account frame, with
# that frame's seq) is the default state, the same as no row: a rebuild
# learns accounts only from listRepos and writes no rows for them.
strip_rev() { sed -e 's/ rev=[a-z2-7]* / rev=- /' -e '/^account [^ ]* visible=1 status=active seq=[0-9]*$/d' "$1"; }
if cmp -s <(strip_rev "$T/live.dump") <(strip_rev "$T/rebuilt.dump"); then
  ok "rebuilt index dump equals the live one (revs aside)"
else
  bad "rebuilt index dump equals the live one (revs aside)" "$(diff <(strip_rev "$T/live.dump") <(strip_rev "$T/rebuilt.dump") | head -20)"
fi
revs_ok() {
  local lv rv
  lv=$(grep -o '^config .* rev=[a-z2-7]*' "$T/live.dump" | sed 's/.* rev=//')
  rv=$(grep -o '^config .* rev=[a-z2-7]*' "$T/rebuilt.dump" | sed 's/.* rev=//')
  [ -n "$lv" ] && [ -n "$rv" ] && [[ ! "$rv" < "$lv" ]]
}
check "rebuilt config rev is the head rev, not older than the live one" revs_ok
check "the dump holds the community, both members and the feed's posts" \
  bash -c "grep -q '^  member $BOB_DID' '$T/live.dump' && grep -q '^  post .*$p1' '$T/live.dump' && ! grep -q '$p2' '$T/live.dump' && ! grep -q '^  post .*$p3' '$T/live.dump'"

curl -s "$SVC/metrics" >"$T/metrics"
for ty in commit identity account; do
  check "the PDS's #$ty frames were received" \
    grep -qE "^meadow_firehose_relay_frames_total\{type=\"$ty\"\} [1-9]" "$T/metrics"
done
check "no relay frame refused by the decoder" \
  grep -qE '^meadow_firehose_relay_decode_errors_total 0$' "$T/metrics"
stop_serve
expect_eq "serve stops cleanly at the end" "$?" 0
check "serve logged no decode error or warning for the PDS's frames" \
  bash -c "! grep -E 'level=(warn|error)' '$T/serve.log'"
pds_stop
echo "e2e_feed: $((SECONDS - t0)) s" >&2
finish
