#!/usr/bin/env bash
# The `meadow` CLI against a REAL @atproto/pds (tests/e2e/pds.sh): community
# create / join / leave, moderation actions, feed publish, each record read
# back from the PDS; then the failures: wrong password, unreachable PDS,
# expired access token (refreshed transparently), 429 with ratelimit-reset,
# 5xx retried, owner-only password file, secrets kept out of the logs.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../e2e/pds.sh"
cd "$T"

if ! pds_start alice bob carol; then
  bad "the PDS starts" "see above"
  finish
  exit 1
fi
ok "the PDS starts"

export MEADOW_PDS_URL=$PDS_URL MEADOW_PLC_URL=$PLC_URL MEADOW_DATA=$T/data
export MEADOW_SERVICE_DID=did:web:feeds.example.test
ALICE_DID=$(pds_field alice did)
BOB_DID=$(pds_field bob did)
CAROL_DID=$(pds_field carol did)
ALICE_PW=$(pds_field alice appPassword)
BOB_PW=$(pds_field bob appPassword)
# Each person has their own session cache, as on their own machine.
as() { # name, meadow args...: runs meadow logged in as <name>.test
  local who=$1; shift
  MEADOW_IDENTIFIER="$who.test" MEADOW_APP_PASSWORD=$(pds_field "$who" appPassword) \
    MEADOW_SESSION_FILE="$T/$who.session.json" "$MEADOW" "$@"
}
get_record() { # repo collection rkey -> JSON of {uri,cid,value} (or an XRPC error)
  xrpc_get com.atproto.repo.getRecord "repo=$1&collection=$2&rkey=$3"
}
count_records() { # repo collection -> number of records
  xrpc_get com.atproto.repo.listRecords "repo=$1&collection=$2&limit=100" | json_get - 'j.records.length'
}
rkey_of() { echo "${1##*/}"; }

# ---- community create ----
out=$(as alice community create --name "Garden club" --description "plants and people" 2>"$T/err")
rc=$?
expect_eq "create exits 0" "$rc" 0
tag=$(echo "$out" | sed -n 's/^hashtag: //p')
cfg=$(echo "$out" | sed -n 's/^config: //p')
feed=$(echo "$out" | sed -n 's/^feed: //p')
id=${tag#\#atr_}
check "create prints an 8-hex hashtag" grep -qE '^hashtag: #atr_[0-9a-f]{8}$' <<<"$out"
expect_contains "config URI is in alice's repo" "$cfg" "at://$ALICE_DID/net.atrarium.community.config/"
expect_eq "feed URI names the owner and the hashtag" "$feed" "at://$ALICE_DID/app.bsky.feed.generator/$id"
mapfile -t f < <(get_record "$ALICE_DID" net.atrarium.community.config "$(rkey_of "$cfg")" |
  json_fields - j.value.hashtag j.value.name j.value.stage)
expect_eq "config record read back: hashtag" "${f[0]}" "$tag"
expect_eq "config record read back: name" "${f[1]}" "Garden club"
expect_eq "config record read back: stage" "${f[2]}" "theme"
expect_eq "session file is 0600" "$(stat -c %a "$T/alice.session.json")" 600
out2=$(as alice community create --name "Second" 2>/dev/null | sed -n 's/^hashtag: //p')
check "a second community gets another hashtag" test -n "$out2" -a "$out2" != "$tag"
expect_eq "alice has two configs" "$(count_records "$ALICE_DID" net.atrarium.community.config)" 2

# Without session_file the session is cached as <data>/session.json, 0600.
MEADOW_IDENTIFIER=carol.test MEADOW_APP_PASSWORD=$(pds_field carol appPassword) \
  "$MEADOW" community create --name "Carol's" >/dev/null 2>&1
expect_eq "default session file is <data>/session.json, 0600" "$(stat -c %a "$T/data/session.json" 2>&1)" 600

# ---- join / leave ----
m1=$(as bob community join "$cfg" 2>"$T/err")
expect_eq "join by config URI exits 0" "$?" 0
expect_contains "join prints the membership URI" "$m1" "at://$BOB_DID/net.atrarium.community.membership/"
mapfile -t f < <(get_record "$BOB_DID" net.atrarium.community.membership "$(rkey_of "$m1")" |
  json_fields - j.value.community j.value.role)
expect_eq "membership read back: community" "${f[0]}" "$cfg"
expect_eq "membership read back: role" "${f[1]}" member
m2=$(as bob community join "$tag" --owner alice.test 2>"$T/err")
expect_eq "join again by hashtag + owner exits 0" "$?" 0
expect_eq "join again writes nothing new" "$m2" "$m1"
expect_contains "join again says so" "$(cat "$T/err")" "already a member"
expect_eq "bob has one membership" "$(count_records "$BOB_DID" net.atrarium.community.membership)" 1
as bob community join "$tag" >/dev/null 2>"$T/err"
expect_eq "hashtag not owned by bob: exit 1" "$?" 1
expect_contains "hashtag lookup failure explains" "$(cat "$T/err")" "give the community's config AT-URI"
as carol community join "at://$CAROL_DID/net.atrarium.community.config/3zzzzzzzzzzzz" >/dev/null 2>"$T/err"
expect_eq "join of a missing config exits 1" "$?" 1
expect_contains "missing config named" "$(cat "$T/err")" "no community config at"
as carol community join "not-a-community" >/dev/null 2>"$T/err"
expect_eq "join of garbage exits 2" "$?" 2

# ---- moderation ----
mapfile -t f < <(pds_post bob "hello $tag from bob" | json_fields - j.uri j.cid)
post_uri=${f[0]} post_cid=${f[1]}
for verb in hide unhide; do
  a=$(as alice moderate "$verb" "$post_uri" --community "$tag" --reason "off topic" 2>"$T/err")
  expect_eq "moderate $verb exits 0" "$?" 0
  mapfile -t f < <(get_record "$ALICE_DID" net.atrarium.moderation.action "$(rkey_of "$a")" |
    json_fields - j.value.action j.value.target.uri j.value.target.cid j.value.community)
  expect_eq "$verb read back: action" "${f[0]}" "${verb}_post"
  expect_eq "$verb read back: target uri" "${f[1]}" "$post_uri"
  expect_eq "$verb read back: target cid" "${f[2]}" "$post_cid"
  expect_eq "$verb read back: community" "${f[3]}" "$cfg"
done
for verb in block unblock; do
  a=$(as alice moderate "$verb" bob.test --community "$cfg" 2>"$T/err")
  expect_eq "moderate $verb exits 0" "$?" 0
  mapfile -t f < <(get_record "$ALICE_DID" net.atrarium.moderation.action "$(rkey_of "$a")" |
    json_fields - j.value.action j.value.target.did)
  expect_eq "$verb read back: action" "${f[0]}" "${verb}_user"
  expect_eq "$verb read back: target did" "${f[1]}" "$BOB_DID"
done
a=$(as alice moderate hide "at://bob.test/app.bsky.feed.post/${post_uri##*/}" --community "$tag" 2>"$T/err")
expect_eq "hide by a handle URI exits 0" "$?" 0
mapfile -t f < <(get_record "$ALICE_DID" net.atrarium.moderation.action "$(rkey_of "$a")" |
  json_fields - j.value.target.uri j.value.target.cid)
expect_eq "hide by a handle URI: the target is the DID URI" "${f[0]}" "$post_uri"
expect_eq "hide by a handle URI: the post's CID" "${f[1]}" "$post_cid"
as alice moderate unhide "$post_uri" --community "$tag" >/dev/null 2>&1 # visible again
as alice moderate hide "$cfg" --community "$tag" >/dev/null 2>"$T/err"
expect_eq "hide of a non-post URI exits 2" "$?" 2
as bob moderate hide "$post_uri" --community "$cfg" >/dev/null 2>"$T/err"
expect_contains "a member's own action is flagged as ineffective" "$(cat "$T/err")" "neither the owner nor a moderator"
as alice moderate hide "$post_uri" >/dev/null 2>"$T/err"
expect_eq "moderate without --community exits 2" "$?" 2

# ---- feed publish ----
f=$(as alice feed publish "$tag" --display-name "Garden" --description "the club's feed" 2>"$T/err")
expect_eq "feed publish exits 0" "$?" 0
expect_eq "feed publish prints the feed URI" "$f" "$feed"
mapfile -t f < <(get_record "$ALICE_DID" app.bsky.feed.generator "$id" |
  json_fields - j.value.did j.value.displayName 'j.value["$type"]')
expect_eq "feed record read back: did" "${f[0]}" did:web:feeds.example.test
expect_eq "feed record read back: displayName" "${f[1]}" Garden
expect_eq "feed record read back: \$type" "${f[2]}" app.bsky.feed.generator
as bob feed publish "$cfg" --display-name "Not mine" >/dev/null 2>"$T/err"
expect_eq "publishing another's feed exits 1" "$?" 1
expect_contains "publishing another's feed explains" "$(cat "$T/err")" "only its owner"

# ---- leave ----
l=$(as bob community leave "$cfg" 2>"$T/err")
expect_eq "leave exits 0" "$?" 0
expect_eq "leave deletes the membership" "$l" "deleted $m1"
expect_eq "bob has no membership" "$(count_records "$BOB_DID" net.atrarium.community.membership)" 0

# ---- records refused by lexicon/ before anything is written ----
n_cfg=$(count_records "$ALICE_DID" net.atrarium.community.config)
long=$(printf 'n%.0s' $(seq 201))
as alice community create --name "$long" >"$T/out" 2>"$T/err"
expect_eq "name over 200 bytes: exits 1" "$?" 1
expect_contains "name over 200 bytes: the lexicon reason" "$(cat "$T/err")" "refusing to write an invalid net.atrarium.community.config record: "
as alice community create --name ok --stage bogus >"$T/out" 2>"$T/err"
expect_eq "unknown stage: exits 1" "$?" 1
expect_contains "unknown stage: names the field" "$(cat "$T/err")" "stage"
expect_eq "refused configs: nothing written" "$(count_records "$ALICE_DID" net.atrarium.community.config)" "$n_cfg"
n_act=$(count_records "$ALICE_DID" net.atrarium.moderation.action)
as alice moderate block bob.test --community "$tag" --reason "$(printf 'r%.0s' $(seq 4001))" >"$T/out" 2>"$T/err"
expect_eq "reason over 4000 bytes: exits 1" "$?" 1
expect_contains "reason over 4000 bytes: refused" "$(cat "$T/err")" "invalid net.atrarium.moderation.action record"
expect_eq "refused action: nothing written" "$(count_records "$ALICE_DID" net.atrarium.moderation.action)" "$n_act"
as alice feed publish "$tag" --display-name "$(printf 'd%.0s' $(seq 100))" >"$T/out" 2>"$T/err"
expect_eq "display name over 24 graphemes: exits 1" "$?" 1
expect_contains "display name: refused" "$(cat "$T/err")" "invalid app.bsky.feed.generator record"
expect_eq "refused feed record: the published one unchanged" "$(get_record "$ALICE_DID" app.bsky.feed.generator "$id" | json_get - j.value.displayName)" Garden

# ---- rebuild input: the PDS's records as Jetstream events ----
m3=$(as bob community join "$cfg" 2>/dev/null) # bob is a member again for the rebuilt feed
# A tagged post dated 30 days ago (its TID record key says so) is outside
# retention; an untagged recent post is not a candidate.
old_rkey=$("$NODE" -e '
  const t = BigInt(Date.now() - 30 * 86400e3) * 1000n, a = "234567abcdefghijklmnopqrstuvwxyz";
  let v = t << 10n, s = ""; for (let i = 0; i < 13; i++) { s = a[Number(v & 31n)] + s; v >>= 5n; }
  console.log(s)')
bob_tok=$(json_get "$T/bob.session.json" j.accessJwt)
curl -s -o /dev/null -X POST -H "Authorization: Bearer $bob_tok" -H 'Content-Type: application/json' \
  -d "{\"repo\":\"$BOB_DID\",\"collection\":\"app.bsky.feed.post\",\"rkey\":\"$old_rkey\",\"record\":{\"\$type\":\"app.bsky.feed.post\",\"text\":\"old $tag\",\"createdAt\":\"2020-01-01T00:00:00.000Z\"}}" \
  "$PDS_URL/xrpc/com.atproto.repo.createRecord"
expect_eq "the old tagged post exists" "$(get_record "$BOB_DID" app.bsky.feed.post "$old_rkey" | json_get - j.value.text)" "old $tag"
untagged=$(pds_post bob "no tag here" | json_get - j.uri)
# 150 tagged posts by carol in one applyWrites: listRecords pages (100 each) are all followed.
carol_tok=$(json_get "$T/data/session.json" j.accessJwt)
"$NODE" -e '
  const [did, tag] = process.argv.slice(1), now = Date.now();
  const writes = Array.from({ length: 150 }, (_, i) => ({ $type: "com.atproto.repo.applyWrites#create",
    collection: "app.bsky.feed.post",
    value: { $type: "app.bsky.feed.post", text: `bulk ${i} ${tag}`, createdAt: new Date(now - i).toISOString() } }));
  console.log(JSON.stringify({ repo: did, writes }))' "$CAROL_DID" "$tag" >"$T/bulk.json"
code=$(curl -s -o "$T/bulk.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $carol_tok" \
  -H 'Content-Type: application/json' --data-binary @"$T/bulk.json" "$PDS_URL/xrpc/com.atproto.repo.applyWrites")
expect_eq "150 posts written in one applyWrites" "$code" 200
"$MEADOW" rebuild --events >"$T/events.jsonl" 2>"$T/err"
expect_eq "rebuild --events exits 0" "$?" 0
"$NODE" -e 'const fs=require("fs");const l=fs.readFileSync(process.argv[1],"utf8").trim().split("\n");
  fs.writeFileSync(process.argv[1],JSON.stringify(l.map(x=>JSON.parse(x))))' "$T/events.jsonl"
uri_of='e => "at://" + e.did + "/" + e.commit.collection + "/" + e.commit.rkey'
mapfile -t f < <(json_fields "$T/events.jsonl" \
  "j.filter(e => e.commit.collection === 'net.atrarium.community.config').length" \
  "j.filter(e => e.commit.collection === 'net.atrarium.moderation.action').length" \
  "j.find(e => ($uri_of)(e) === '$post_uri').commit.cid" \
  "j.find(e => ($uri_of)(e) === '$cfg').commit.record.hashtag" \
  "j.filter(e => ($uri_of)(e) === '$untagged').length" \
  "j.filter(e => e.commit.rkey === '$old_rkey').length" \
  "j.every(e => e.kind === 'commit' && e.commit.operation === 'create' && /^[2-7a-z]{13}\$/.test(e.commit.rev))" \
  "j.length" \
  "new Set(j.filter(e => e.did === '$CAROL_DID' && e.commit.collection === 'app.bsky.feed.post').map(e => e.commit.record.text)).size")
expect_eq "events: every config of every repo" "${f[0]}" \
  "$(($(count_records "$ALICE_DID" net.atrarium.community.config) + $(count_records "$CAROL_DID" net.atrarium.community.config)))"
expect_eq "events: every moderation action" "${f[1]}" \
  "$(($(count_records "$ALICE_DID" net.atrarium.moderation.action) + $(count_records "$BOB_DID" net.atrarium.moderation.action)))"
expect_eq "events: the tagged post, with its CID" "${f[2]}" "$post_cid"
expect_eq "events: the config record as on the PDS" "${f[3]}" "$tag"
expect_eq "events: no untagged post" "${f[4]}" 0
expect_eq "events: no post older than retention" "${f[5]}" 0
expect_eq "events: all commit creates with the repo rev" "${f[6]}" true
expect_eq "events: all 150 of carol's posts (two listRecords pages)" "${f[8]}" 150
expect_contains "rebuild: plain progress lines off a terminal" "$(cat "$T/err")" "rebuild: repos 3/3"
# On a terminal (script(1) gives it one): a bar redrawn in place.
script -qec "'$MEADOW' rebuild --events >/dev/null" /dev/null >"$T/tty.out" 2>&1
check "rebuild: a progress bar on a terminal" grep -qa $'\rrebuild \[#*' "$T/tty.out"
check "rebuild: the bar reaches 3/3" grep -qa 'repos 3/3, records' "$T/tty.out"
"$MEADOW" rebuild --events --relay --from "$PDS_URL" >/dev/null 2>"$T/err"
expect_eq "rebuild --relay on a PDS (no listReposByCollection) exits 1" "$?" 1
expect_contains "rebuild --relay: the XRPC error named" "$(cat "$T/err")" "listReposByCollection"

# Relay mode: listReposByCollection (here a shim in front of the PDS, since a
# PDS does not serve it), each DID's PDS from the PLC, its rev from
# getLatestCommit: the same records as the PDS walk.
RESP_RELAY_SHIM=1 responder_start 503 0 0 || { bad "responder starts"; finish; exit 1; }
"$MEADOW" rebuild --events --relay --from "$RESP_URL" >"$T/relay.jsonl" 2>"$T/err"
expect_eq "rebuild --relay exits 0" "$?" 0
check "relay mode asked listReposByCollection" grep -q 'listReposByCollection.* 200 shim' "$RESP_LOG"
"$NODE" -e 'const fs=require("fs");
  const keys=(f)=>fs.readFileSync(f,"utf8").trim().split("\n").map(x=>JSON.parse(x))
    .map(e=>[e.did,e.commit.collection,e.commit.rkey,e.commit.cid,e.commit.rev].join(" ")).sort().join("\n");
  const a=keys(process.argv[1]), b=JSON.parse(fs.readFileSync(process.argv[2],"utf8"))
    .map(e=>[e.did,e.commit.collection,e.commit.rkey,e.commit.cid,e.commit.rev].join(" ")).sort().join("\n");
  process.exit(a===b?0:1)' "$T/relay.jsonl" "$T/events.jsonl"
expect_eq "relay mode: the same records, CIDs and revs as the PDS walk" "$?" 0

# rebuild (without --events): the same events through the processor into an
# empty data directory; the feed holds what the PDS records say.
n_ev=${f[7]}
out=$("$MEADOW" rebuild --data "$T/rebuilt" 2>"$T/err")
expect_eq "rebuild into an empty data dir exits 0" "$?" 0
expect_contains "rebuild says what it applied" "$out" "rebuild: $n_ev events from 3 repositories applied"
"$MEADOW" index dump "$feed" --data "$T/rebuilt" >"$T/feed.dump" 2>"$T/err"
expect_eq "rebuilt index: the community's feed dumps" "$?" 0
check "rebuilt feed: the member's tagged post" grep -qF "$post_uri" "$T/feed.dump"
check "rebuilt feed: no outsider post" bash -c "! grep -q '$CAROL_DID/app.bsky.feed.post' '$T/feed.dump'"
check "rebuilt feed: no post older than retention" bash -c "! grep -qF '$old_rkey' '$T/feed.dump'"
"$MEADOW" rebuild --data "$T/rebuilt2" >/dev/null 2>&1
"$MEADOW" index dump --data "$T/rebuilt" >"$T/r1.dump" 2>&1
"$MEADOW" index dump --data "$T/rebuilt2" >"$T/r2.dump" 2>&1
check "two rebuilds give equal index dumps" cmp -s "$T/r1.dump" "$T/r2.dump"
"$MEADOW" rebuild --data "$T/rebuilt" >/dev/null 2>"$T/err"
expect_eq "rebuild into a used data dir exits 1" "$?" 1
expect_contains "rebuild into a used data dir: refused" "$(cat "$T/err")" "needs an empty data directory"

# ---- failures ----
n_cfg=$(count_records "$ALICE_DID" net.atrarium.community.config)
MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=wrong-pass-word MEADOW_SESSION_FILE="$T/none.json" \
  "$MEADOW" community create --name X >"$T/out" 2>"$T/err"
expect_eq "wrong password exits 1" "$?" 1
expect_contains "wrong password: XRPC error named" "$(cat "$T/err")" "AuthenticationRequired: Invalid identifier or password"
check "wrong password: no session file" test ! -e "$T/none.json"
expect_eq "wrong password: nothing written" "$(count_records "$ALICE_DID" net.atrarium.community.config)" "$n_cfg"

dead=$(free_port)
start=$SECONDS
MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=$ALICE_PW MEADOW_SESSION_FILE="$T/dead.json" \
  "$MEADOW" --pds_url "http://127.0.0.1:$dead" community create --name X >"$T/out" 2>"$T/err"
expect_eq "unreachable PDS exits 1" "$?" 1
expect_contains "unreachable PDS: clear message" "$(cat "$T/err")" "cannot reach http://127.0.0.1:$dead"
expect_contains "unreachable PDS: retried" "$(cat "$T/err")" "retrying"
check "unreachable PDS: gives up within 30 s" test $((SECONDS - start)) -lt 30

# Expired access token: the cached session's access JWT is replaced by one
# minted with PDS_JWT_SECRET that expired a minute ago; the refresh JWT stays.
sess="$T/alice.session.json"
expired=$(mint_expired_jwt "$ALICE_DID")
json_get "$sess" "Object.assign(j, {accessJwt: \"$expired\"})" >"$sess.new" && chmod 600 "$sess.new" && mv "$sess.new" "$sess"
code=$(curl -s -o "$T/xr" -w '%{http_code}' -X POST -H "Authorization: Bearer $expired" \
  -H 'Content-Type: application/json' -d "{\"repo\":\"$ALICE_DID\",\"collection\":\"x.y.z\",\"record\":{}}" \
  "$PDS_URL/xrpc/com.atproto.repo.createRecord")
expect_eq "the PDS answers the minted token with 400" "$code" 400
expect_eq "the PDS answers ExpiredToken" "$(json_get "$T/xr" j.error)" ExpiredToken
n_act=$(count_records "$ALICE_DID" net.atrarium.moderation.action)
a=$(as alice --log_level info moderate block carol.test --community "$tag" 2>"$T/err")
expect_eq "expired token: the command succeeds" "$?" 0
expect_contains "expired token: refreshed" "$(cat "$T/err")" "session refreshed"
check "expired token: the session file holds a new token" test "$(json_get "$sess" j.accessJwt)" != "$expired"
expect_eq "expired token: session file still 0600" "$(stat -c %a "$sess")" 600
expect_eq "expired token: one record written" "$(count_records "$ALICE_DID" net.atrarium.moderation.action)" $((n_act + 1))
expect_eq "expired token: the block names carol" "$(get_record "$ALICE_DID" net.atrarium.moderation.action "$(rkey_of "$a")" | json_get - j.value.target.did)" "$CAROL_DID"

# 429 with a reset an hour away: no waiting, a clear message, nothing written.
responder_start 429 -1 3600 || { bad "responder starts"; finish; exit 1; }
start=$SECONDS
n_cfg=$(count_records "$ALICE_DID" net.atrarium.community.config)
MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=$ALICE_PW MEADOW_SESSION_FILE="$T/rl.json" \
  "$MEADOW" --pds_url "$RESP_URL" community create --name X >"$T/out" 2>"$T/err"
expect_eq "429: exits 1" "$?" 1
expect_contains "429: XRPC error named" "$(cat "$T/err")" "RateLimitExceeded: Rate Limit Exceeded (HTTP 429)"
expect_contains "429: says until when" "$(cat "$T/err")" "rate limited by $RESP_URL until 20"
check "429: does not wait for the reset" test $((SECONDS - start)) -lt 30
expect_eq "429: one attempt only" "$(wc -l <"$RESP_LOG")" 1
expect_eq "429: nothing written" "$(count_records "$ALICE_DID" net.atrarium.community.config)" "$n_cfg"
check "429: no stdout" test ! -s "$T/out"

# 429 twice with a reset 1 s ahead, then the real PDS: waits and succeeds.
responder_start 429 2 1 || { bad "responder starts"; finish; exit 1; }
start=$SECONDS
out=$(MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=$ALICE_PW MEADOW_SESSION_FILE="$T/rl2.json" \
  "$MEADOW" --pds_url "$RESP_URL" community create --name "Patient" 2>"$T/err")
expect_eq "429 then 200: exits 0" "$?" 0
expect_contains "429 then 200: waited" "$(cat "$T/err")" "rate limited, waiting"
check "429 then 200: honoured the reset (>= 1 s)" test $((SECONDS - start)) -ge 1
expect_eq "429 then 200: first two answered 429" "$(head -2 "$RESP_LOG" | grep -c ' 429$')" 2
expect_contains "429 then 200: created" "$out" "config: at://$ALICE_DID/"

# 503 once, then the real PDS: retried with backoff.
responder_start 503 1 0 || { bad "responder starts"; finish; exit 1; }
out=$(MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=$ALICE_PW MEADOW_SESSION_FILE="$T/rl3.json" \
  "$MEADOW" --pds_url "$RESP_URL" community create --name "Retried" 2>"$T/err")
expect_eq "503 then 200: exits 0" "$?" 0
expect_contains "503 then 200: retried" "$(cat "$T/err")" "server error, retrying"

# The PDS writes the record but its answer is lost (503 from a proxy): the
# retry with the same client-chosen key finds the record: success, one record.
responder_start 503 1 0 com.atproto.repo.createRecord || { bad "responder starts"; finish; exit 1; }
n_cfg=$(count_records "$ALICE_DID" net.atrarium.community.config)
out=$(MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=$ALICE_PW MEADOW_SESSION_FILE="$T/rl5.json" \
  "$MEADOW" --pds_url "$RESP_URL" community create --name "Lost answer" 2>"$T/err")
expect_eq "answer lost: exits 0" "$?" 0
check "answer lost: the first create reached the PDS" grep -q 'createRecord 200 lost 503' "$RESP_LOG"
expect_eq "answer lost: exactly one record written" "$(count_records "$ALICE_DID" net.atrarium.community.config)" $((n_cfg + 1))
expect_contains "answer lost: the printed URI exists" "$(get_record "$ALICE_DID" net.atrarium.community.config "$(rkey_of "$(echo "$out" | sed -n 's/^config: //p')")" | json_get - j.value.name)" "Lost answer"

# 503 always: gives up with the XRPC error, nothing written.
responder_start 503 -1 0 || { bad "responder starts"; finish; exit 1; }
n_cfg=$(count_records "$ALICE_DID" net.atrarium.community.config)
MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=$ALICE_PW MEADOW_SESSION_FILE="$T/rl4.json" \
  "$MEADOW" --pds_url "$RESP_URL" --pds_retries 2 community create --name X >/dev/null 2>"$T/err"
expect_eq "503 always: exits 1" "$?" 1
expect_contains "503 always: XRPC error named" "$(cat "$T/err")" "InternalServerError: Internal Server Error (HTTP 503)"
expect_eq "503 always: 3 attempts" "$(wc -l <"$RESP_LOG")" 3
expect_eq "503 always: nothing written" "$(count_records "$ALICE_DID" net.atrarium.community.config)" "$n_cfg"

# An answer over MDW_MAX_HTTP_BODY_BYTES (8 MiB) is refused, not truncated.
responder_start 200 -1 0 || { bad "responder starts"; finish; exit 1; }
MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=$ALICE_PW MEADOW_SESSION_FILE="$T/big.json" \
  "$MEADOW" --pds_url "$RESP_URL" community create --name X >/dev/null 2>"$T/err"
expect_eq "oversized answer: exits 1" "$?" 1
expect_contains "oversized answer: says so" "$(cat "$T/err")" "is over 8388608 bytes"
check "oversized answer: no session file" test ! -e "$T/big.json"

# did:web: the DID document comes from http://localhost:<port>/.well-known/did.json
# (http for localhost only) and its #atproto_pds is where the config is read.
RESP_DID_WEB='did:web:localhost%3APORT' responder_start 503 0 0 || { bad "responder starts"; finish; exit 1; }
web="did:web:localhost%3A${RESP_URL##*:}"
as carol community join "at://$web/net.atrarium.community.config/3n2xaaaaaaaaa" >/dev/null 2>"$T/err"
expect_eq "did:web owner without that config: exit 1" "$?" 1
check "did:web: the DID document was fetched" grep -q 'well-known/did.json 200 did-web' "$RESP_LOG"
expect_contains "did:web: the record was looked up on the PDS it names" "$(cat "$T/err")" "getRecord: "
expect_contains "did:web: ... which has no such repository" "$(cat "$T/err")" "$web"
RESP_DID_WEB='did:web:elsewhere.example' responder_start 503 0 0 || { bad "responder starts"; finish; exit 1; }
as carol community join "at://did:web:localhost%3A${RESP_URL##*:}/net.atrarium.community.config/3n2xaaaaaaaaa" >/dev/null 2>"$T/err"
expect_contains "did:web: a document naming another DID is refused" "$(cat "$T/err")" "names another DID"

# ---- the app password file ----
printf '%s\n' "$BOB_PW" >"$T/pw"
chmod 644 "$T/pw"
MEADOW_IDENTIFIER=bob.test MEADOW_SESSION_FILE="$T/pwf.json" \
  "$MEADOW" --app_password_file "$T/pw" community join "$cfg" >/dev/null 2>"$T/err"
expect_eq "group/world-readable password file: exits 1" "$?" 1
expect_contains "group/world-readable password file: refused" "$(cat "$T/err")" "readable only by you"
chmod 600 "$T/pw"
m=$(MEADOW_IDENTIFIER=bob.test MEADOW_SESSION_FILE="$T/pwf.json" \
  "$MEADOW" --app_password_file "$T/pw" community join "$cfg" 2>"$T/err")
expect_eq "0600 password file: join works" "$?" 0
expect_contains "0600 password file: membership written" "$m" "at://$BOB_DID/net.atrarium.community.membership/"
"$MEADOW" community join "$cfg" --app_password "$BOB_PW" >/dev/null 2>"$T/err"
expect_eq "--app_password on the command line is refused" "$?" 2
expect_contains "--app_password refusal explains" "$(cat "$T/err")" "never taken from the command line"

# A session file others can read is not used (and is replaced by a 0600 one).
chmod 644 "$T/bob.session.json"
as bob --log_level info community leave "$cfg" >/dev/null 2>"$T/err"
expect_contains "world-readable session file ignored" "$(cat "$T/err")" "session file readable by others"
expect_eq "session file rewritten 0600" "$(stat -c %a "$T/bob.session.json")" 600

# ---- secrets never logged ----
rm -f "$T/dbg.json"
MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=$ALICE_PW MEADOW_SESSION_FILE="$T/dbg.json" \
  "$MEADOW" --log_level debug moderate unblock carol.test --community "$tag" >"$T/dbg.out" 2>&1
expect_eq "debug run exits 0" "$?" 0
expired=$(mint_expired_jwt "$ALICE_DID")
json_get "$T/dbg.json" "Object.assign(j, {accessJwt: \"$expired\"})" >"$T/dbg.new" && chmod 600 "$T/dbg.new" && mv "$T/dbg.new" "$T/dbg.json"
old_refresh=$(json_get "$T/dbg.json" j.refreshJwt)
MEADOW_IDENTIFIER=alice.test MEADOW_APP_PASSWORD=$ALICE_PW MEADOW_SESSION_FILE="$T/dbg.json" \
  "$MEADOW" --log_level debug moderate block carol.test --community "$tag" >>"$T/dbg.out" 2>&1
expect_eq "debug run with a refresh exits 0" "$?" 0
check "debug log has request lines" grep -q 'msg="http"' "$T/dbg.out"
leaks=0
for s in "$ALICE_PW" "$expired" "$old_refresh" "$(json_get "$T/dbg.json" j.accessJwt)" \
  "$(json_get "$T/dbg.json" j.refreshJwt)" "$(pds_field alice password)"; do
  grep -qF -- "$s" "$T/dbg.out" && leaks=$((leaks + 1))
  # A token's signature part alone must not appear either.
  grep -qF -- "${s##*.}" "$T/dbg.out" && leaks=$((leaks + 1))
done
expect_eq "no password or token in debug output" "$leaks" 0

# The PDS's own firehose serves these commits on loopback (what `meadow serve`
# follows in the full scenario): frames carry the community records.
n=$(pds_capture_frames 0 "$T/frames.bin")
check "subscribeRepos from cursor 0 gives frames" test "${n:-0}" -gt 20
check "the frames carry net.atrarium records" grep -qa 'net.atrarium.community.config' "$T/frames.bin"

pds_stop
check "the PDS stopped" test -z "$PDS_PID"
finish
