#!/usr/bin/env bash
# `meadow feedgen` over a real index (filled through the processor's write
# path by tests/tools/feedgen_fill), called with curl and with the official
# @atproto/api client: every bad parameter gets the right status and XRPC
# error name, an unknown feed gets UnknownFeed, describeFeedGenerator,
# did.json, _health and /metrics have their shapes, XRPC conventions (501,
# wrong verb, 404), CORS, limits (414/431), clean exit on SIGINT and SIGTERM.
. "$(dirname "$0")/../lib.sh"

OWNER=did:plc:feedgenhttpowner0000000
ID=0a1b2c3d
FEED="at://$OWNER/app.bsky.feed.generator/$ID"
D=$T/data
mkdir -p "$D/index"
out=$("$TOOLS/feedgen_fill" "$D/index" --owner "$OWNER" --id $ID --posts 40 --members 3 \
  --expect "$T/expect" 2>&1)
expect_contains "index filled" "$out" "filled"

PORT=$(free_port)
"$MEADOW" feedgen --data "$D" --port "$PORT" --hostname feeds.example.org --log_level warn \
  2>"$T/server.log" &
SERVER=$!
PIDS+=("$SERVER")
check "server listens" wait_port "$PORT" 20
BASE="http://127.0.0.1:$PORT"

# req PATH [curl args...]: prints the status; body in $T/body, headers in $T/headers
req() {
  local path=$1; shift
  curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@" "$BASE$path"
}
# The distribution's python starts in 0.2 s; a pyenv shim may take seconds.
py() { if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"; else python3 "$@"; fi; }
# json EXPR: evaluates a python expression over the parsed body `j`
json() { py -c "import json,sys; j=json.load(open('$T/body')); print($1)"; }
# expect_err NAME PATH STATUS ERROR [curl args...]: the body must be exactly
# {"error":"<ERROR>","message":"<text>"}
expect_err() {
  local name=$1 path=$2 status=$3 error=$4; shift 4
  local got; got=$(req "$path" "$@")
  local body; body=$(cat "$T/body")
  local re='^\{"error":"([A-Za-z]+)","message":"([^"\\]|\\.)*"\}$'
  if [[ $body =~ $re ]]; then got+=" ${BASH_REMATCH[1]}"; else got+=" (body: ${body:0:120})"; fi
  expect_eq "$name" "$got" "$status $error"
}
enc() { py -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
FS=/xrpc/app.bsky.feed.getFeedSkeleton
F=$(enc "$FEED")

# --- getFeedSkeleton: success and shape
st=$(req "$FS?feed=$F&limit=5")
expect_eq "feed 200" "$st" 200
expect_eq "feed shape" "$(json "sorted(j.keys()), len(j['feed']), [sorted(x.keys()) for x in j['feed']][0]")" \
  "['cursor', 'feed'] 5 ['post']"
expect_eq "feed first posts" "$(json "'\n'.join(x['post'] for x in j['feed'])")" "$(head -5 "$T/expect")"
expect_contains "CORS on GET" "$(cat "$T/headers")" "Access-Control-Allow-Origin: *"
expect_contains "JSON content type" "$(cat "$T/headers")" "Content-Type: application/json"
st=$(req "$FS?feed=$F")
expect_eq "default limit 50 (40 posts: all, no cursor)" "$st $(json "len(j['feed']), 'cursor' in j")" \
  "200 $(wc -l <"$T/expect") False"

# --- every bad parameter
expect_err "missing feed" "$FS" 400 InvalidRequest
expect_err "empty feed" "$FS?feed=" 400 InvalidRequest
expect_err "feed not at-uri" "$FS?feed=https%3A%2F%2Fexample.com" 400 InvalidRequest
expect_err "feed handle" "$FS?feed=$(enc "at://alice.example.com/app.bsky.feed.generator/$ID")" 400 InvalidRequest
expect_err "feed wrong collection" "$FS?feed=$(enc "at://$OWNER/app.bsky.feed.post/$ID")" 400 InvalidRequest
expect_err "feed id uppercase" "$FS?feed=$(enc "at://$OWNER/app.bsky.feed.generator/0A1B2C3D")" 400 InvalidRequest
expect_err "feed id short" "$FS?feed=$(enc "at://$OWNER/app.bsky.feed.generator/0a1b2c3")" 400 InvalidRequest
expect_err "feed twice" "$FS?feed=$F&feed=$F" 400 InvalidRequest
expect_err "limit 0" "$FS?feed=$F&limit=0" 400 InvalidRequest
expect_err "limit 101" "$FS?feed=$F&limit=101" 400 InvalidRequest
expect_err "limit -1" "$FS?feed=$F&limit=-1" 400 InvalidRequest
expect_err "limit abc" "$FS?feed=$F&limit=abc" 400 InvalidRequest
expect_err "limit 2.5" "$FS?feed=$F&limit=2.5" 400 InvalidRequest
expect_err "limit empty" "$FS?feed=$F&limit=" 400 InvalidRequest
expect_err "cursor bad chars" "$FS?feed=$F&cursor=a%2Fb" 400 InvalidRequest
expect_err "cursor too long" "$FS?feed=$F&cursor=$(printf 'A%.0s' {1..80})" 400 InvalidRequest
expect_err "cursor undecodable" "$FS?feed=$F&cursor=AAAA" 400 InvalidRequest
expect_err "bad escape" "$FS?feed=$F%zz" 400 InvalidRequest
expect_err "unknown feed (id)" "$FS?feed=$(enc "at://$OWNER/app.bsky.feed.generator/ffffffff")" 400 UnknownFeed
expect_err "unknown feed (owner)" "$FS?feed=$(enc "at://did:plc:someoneelse/app.bsky.feed.generator/$ID")" 400 UnknownFeed

# --- XRPC conventions
expect_err "unknown method" /xrpc/app.bsky.feed.getTimeline 501 MethodNotImplemented
expect_err "unknown method POST" /xrpc/com.atproto.repo.createRecord 501 MethodNotImplemented -X POST
expect_err "wrong verb" "$FS?feed=$F" 400 InvalidRequest -X POST
expect_err "wrong verb describe" /xrpc/app.bsky.feed.describeFeedGenerator 400 InvalidRequest -X PUT
expect_err "invalid xrpc path" "/xrpc/not%20an%20nsid" 400 InvalidRequest
expect_err "outside xrpc" /index.html 404 NotFound
expect_err "root" / 404 NotFound

# --- describeFeedGenerator, did.json, health, metrics
st=$(req /xrpc/app.bsky.feed.describeFeedGenerator)
expect_eq "describe" "$st $(json "j['did'], j['feeds'], sorted(j.keys())")" \
  "200 did:web:feeds.example.org [{'uri': '$FEED'}] ['did', 'feeds']"
st=$(req /.well-known/did.json)
expect_eq "did.json" "$st $(cat "$T/body")" \
  '200 {"@context":["https://www.w3.org/ns/did/v1"],"id":"did:web:feeds.example.org","service":[{"id":"#bsky_fg","type":"BskyFeedGenerator","serviceEndpoint":"https://feeds.example.org"}]}'
st=$(req /xrpc/_health)
expect_eq "health" "$st $(cat "$T/body")" "200 {\"version\":\"$("$MEADOW" version | cut -d' ' -f2)\"}"
st=$(req /metrics)
m=$(cat "$T/body")
expect_eq "metrics 200" "$st" 200
expect_contains "metrics requests" "$m" 'meadow_feedgen_requests_total{route="getFeedSkeleton",status="400"}'
expect_contains "metrics unknown method" "$m" 'meadow_feedgen_requests_total{route="xrpc_other",status="501"} 2'
expect_contains "metrics latency" "$m" '# TYPE meadow_feedgen_request_seconds histogram'
expect_contains "metrics index posts" "$m" "meadow_index_posts 40"
expect_contains "metrics index communities" "$m" "meadow_index_communities 1"

# --- CORS preflight, HEAD
st=$(req "$FS" -X OPTIONS -H 'Origin: https://bsky.app' -H 'Access-Control-Request-Method: GET' \
  -H 'Access-Control-Request-Headers: authorization')
h=$(cat "$T/headers")
expect_eq "preflight 204" "$st" 204
expect_contains "preflight origin" "$h" "Access-Control-Allow-Origin: *"
expect_contains "preflight methods" "$h" "Access-Control-Allow-Methods: GET,HEAD,OPTIONS"
expect_contains "preflight headers" "$h" "Access-Control-Allow-Headers: authorization"
st=$(curl -s -o "$T/body" -w "%{http_code} %{size_download}" -I "$BASE/xrpc/_health")
expect_eq "HEAD" "$st" "200 0"

# --- limits: our 414 (target over 8 KiB), libmicrohttpd's 414 and 431
long=$(head -c 9000 /dev/zero | tr '\0' a)
expect_err "target over 8 KiB" "/xrpc/_health?x=$long" 414 InvalidRequest
huge=$(head -c 40000 /dev/zero | tr '\0' a)
st=$(req "/xrpc/_health?x=$huge")
expect_eq "request line over the connection buffer" "$st" 414
hdr=()
for i in $(seq 1 40); do hdr+=(-H "X-Pad-$i: $(head -c 1000 /dev/zero | tr '\0' b)"); done
st=$(req /xrpc/_health "${hdr[@]}")
expect_eq "headers over the connection buffer" "$st" 431

# --- the official client
NODE=$(cd "$(dirname "$0")/../node" && ./setup.sh 2>"$T/npm.log") || NODE=
if [ -n "$NODE" ]; then
  nout=$("$NODE" "$(dirname "$0")/../node/feedgen-client.mjs" errors "$BASE" "$FEED" \
    "at://$OWNER/app.bsky.feed.generator/ffffffff" did:web:feeds.example.org 2>&1)
  line=$(echo "$nout" | tail -1)
  p=$(echo "$line" | grep -oE '^[0-9]+ passed' | grep -oE '[0-9]+')
  f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-1}))
  [ "${f:-1}" -eq 0 ] || echo "$nout"
else
  bad "@atproto/api client" "tests/node/setup.sh failed: $(tail -3 "$T/npm.log")"
fi

# --- clean stop
kill -INT "$SERVER"
wait "$SERVER"; rc=$?
expect_eq "SIGINT exits 0" "$rc" 0
check "port closed after stop" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null"

"$MEADOW" feedgen --data "$D" --port "$PORT" --log_level warn 2>>"$T/server.log" &
SERVER=$!
PIDS+=("$SERVER")
wait_port "$PORT" 20
kill -TERM "$SERVER"
wait "$SERVER"; rc=$?
expect_eq "SIGTERM exits 0" "$rc" 0

"$MEADOW" feedgen --data "$T/nothing-here" --port "$PORT" 2>"$T/err"; rc=$?
expect_eq "missing index exits 1" "$rc" 1
expect_contains "missing index message" "$(cat "$T/err")" "cannot open the index"
if grep -q 'level=error' "$T/server.log"; then bad "no server errors" "$(grep level=error "$T/server.log" | head -3)"; else ok "no server errors"; fi
finish
