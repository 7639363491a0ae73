#!/usr/bin/env bash
# The whole system through real processes: a real PDS, `meadow serve`
# following that PDS's own com.atproto.sync.subscribeRepos, the `meadow` CLI
# writing community records, @atproto/api posting and calling the feed.
#
# NOT YET RUN BY `make test`: it needs the relay source, the processor and
# feedgen. When they are on main, move it to tests/integration/e2e_feed.sh
# (it is written to the interfaces DESIGN.md and the issues give: settings
# source=relay, relay_url, port, data; `meadow index dump`; `meadow rebuild`).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pds.sh"
cd "$T"

pds_start alice bob carol || { bad "the PDS starts"; finish; exit 1; }
ok "the PDS starts"
export MEADOW_PDS_URL=$PDS_URL MEADOW_PLC_URL=$PLC_URL
BOB_DID=$(pds_field bob did)
as() { # name, meadow args...
  local who=$1; shift
  MEADOW_IDENTIFIER="$who.test" MEADOW_APP_PASSWORD=$(pds_field "$who" appPassword) \
    MEADOW_SESSION_FILE="$T/$who.session.json" MEADOW_DATA="$T/cli" "$MEADOW" "$@"
}

# meadow serve follows the PDS's firehose directly.
port=$(free_port)
"$MEADOW" serve --source relay --relay_url "ws://127.0.0.1:${PDS_URL##*:}" --port "$port" \
  --data "$T/live" --plc_url "$PLC_URL" >"$T/serve.log" 2>&1 &
PIDS+=("$!")
wait_port "$port" 20 || { bad "meadow serve listens" "$(tail -20 "$T/serve.log")"; finish; exit 1; }
SVC="http://127.0.0.1:$port"
feed_has()   { "$NODE" "$NODE_DIR/e2e-feed.mjs" "$SVC" "$feed" --until has "$1" --timeout-ms 2000 >/dev/null; }
feed_lacks() { "$NODE" "$NODE_DIR/e2e-feed.mjs" "$SVC" "$feed" --until lacks "$1" --timeout-ms 2000 >/dev/null; }
feed_never() { "$NODE" "$NODE_DIR/e2e-feed.mjs" "$SVC" "$feed" --never "$1" --for-ms 1500; }

out=$(as alice community create --name "Garden club")
tag=$(echo "$out" | sed -n 's/^hashtag: //p')
cfg=$(echo "$out" | sed -n 's/^config: //p')
feed=$(echo "$out" | sed -n 's/^feed: //p')
check "community created" test -n "$tag" -a -n "$cfg" -a -n "$feed"
check "bob joins" as bob community join "$cfg"

p1=$(pds_post bob "first post $tag" | json_get - j.uri)
check "a member's tagged post is listed within 2 s" feed_has "$p1"
as alice moderate hide "$p1" --community "$tag" >/dev/null
check "hidden post leaves the feed" feed_lacks "$p1"
as alice moderate unhide "$p1" --community "$tag" >/dev/null
check "unhidden post returns" feed_has "$p1"
as alice moderate block bob.test --community "$tag" >/dev/null
check "blocked member's post leaves" feed_lacks "$p1"
as alice moderate unblock bob.test --community "$tag" >/dev/null
check "unblocked member's post returns" feed_has "$p1"

p2=$(pds_post bob "second post $tag" | json_get - j.uri)
check "second post listed" feed_has "$p2"
pds_delete_post bob "$p2" >/dev/null
check "deleted post leaves" feed_lacks "$p2"

p3=$(pds_post carol "outsider $tag" | json_get - j.uri)
check "an outsider's tagged post is never listed" feed_never "$p3"

as bob moderate hide "$p1" --community "$cfg" >/dev/null 2>&1
sleep 1.5 # time for the action to reach the index, were it (wrongly) applied
check "a member's own moderation action has no effect" feed_has "$p1"

# The CLI's feed record.
f=$(as alice feed publish "$tag" --display-name "Garden")
expect_eq "feed publish prints the feed URI" "$f" "$feed"

# Rebuild from the PDS equals the live index.
sleep 1
"$MEADOW" index dump --data "$T/live" >"$T/live.dump" 2>"$T/err"
check "live index dump" test -s "$T/live.dump"
"$MEADOW" rebuild --data "$T/rebuilt" --pds_url "$PDS_URL" --plc_url "$PLC_URL" >"$T/rebuild.log" 2>&1
expect_eq "rebuild exits 0" "$?" 0
"$MEADOW" index dump --data "$T/rebuilt" >"$T/rebuilt.dump" 2>>"$T/err"
check "rebuilt index dump equals the live one" cmp -s "$T/live.dump" "$T/rebuilt.dump"

pds_stop
finish
