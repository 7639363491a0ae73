#!/usr/bin/env bash
# Service-auth against a REAL PDS: @atproto/pds 0.5.35 with its in-memory PLC
# directory (tests/e2e/pds.sh). Tokens are minted by the PDS itself through
# com.atproto.server.getServiceAuth (aud = Meadow's DID, lxm =
# getFeedSkeleton) for two accounts, and verified by build/tools/auth_check,
# which builds the verifier exactly as the server does (mdw_auth_new_from_config)
# and resolves the issuers' did:plc documents from the PLC over HTTP.
cd "$(dirname "$0")/../.."
source tests/lib.sh
source tests/e2e/pds.sh

SVC="did:web:feeds.meadow.test"
LXM="app.bsky.feed.getFeedSkeleton"

if ! pds_start alice bob; then
  bad "real PDS starts"
  finish
  exit 1
fi
ALICE=$(pds_field alice did)
BOB=$(pds_field bob did)

tokens() { # account, SPEC... (AUD|LXM[|EXP]): one token (or ERROR {json}) a line
  "$NODE" tests/node/auth-service-token.mjs "$PDS_URL" "$(pds_field "$1" handle)" \
    "$(pds_field "$1" appPassword)" "${@:2}"
}
verify() { # mode, lines on stdin -> auth_check output
  "$TOOLS/auth_check" --auth "$1" --service_did "$SVC" --plc_url "$PLC_URL" \
    --jwt_leeway_s 0 --log_level error "${@:2}"
}

# All of alice's tokens in one login: the feed's, another service's, another
# method's, and one for the feed with aud#bsky_fg.
mapfile -t AT < <(tokens alice "$SVC|$LXM" "did:web:other.example|$LXM" \
  "$SVC|app.bsky.feed.getTimeline" "$SVC#bsky_fg|$LXM")
A1=${AT[0]:-} OTHER=${AT[1]:-} WRONGLXM=${AT[2]:-} FG=${AT[3]:-}
B1=$(tokens bob "$SVC|$LXM")
check "PDS mints service tokens" test -n "$A1" -a -n "$B1" -a -n "$OTHER" -a -n "$WRONGLXM"
case "$A1$B1$OTHER$WRONGLXM" in *ERROR*) bad "PDS refused a token: $A1 $B1 $OTHER $WRONGLXM" ;; esac
expect_contains "PDS tokens are ES256K (the account's #atproto key)" \
  "$(echo "$A1" | cut -d. -f1 | tr '_-' '/+' | base64 -d 2>/dev/null)" '"ES256K"'

# Accepted, then a cache hit; the other account; no header.
out=$(printf 'Bearer %s\nBearer %s\nBearer %s\n-\n' "$A1" "$A1" "$B1" | verify required)
expect_eq "alice's token accepted, viewer = her DID" "$(sed -n 1p <<<"$out")" "ok $ALICE"
expect_eq "the same token again (token cache)" "$(sed -n 2p <<<"$out")" "ok $ALICE"
expect_eq "bob's token accepted" "$(sed -n 3p <<<"$out")" "ok $BOB"
expect_contains "auth=required without a header" "$(sed -n 4p <<<"$out")" "refused AuthMissing"
expect_contains "one DID fetch per account, one token cache hit" "$(tail -1 <<<"$out")" \
  "fetches=2 token_cache_hits=1"

out=$(printf -- '-\nBearer %s\n' "$A1" | verify optional)
expect_eq "auth=optional without a header is anonymous" "$(sed -n 1p <<<"$out")" "anonymous"
expect_eq "auth=optional with a token names the viewer" "$(sed -n 2p <<<"$out")" "ok $ALICE"

# Refusals with the reference's error names.
SWAP="$(echo "$B1" | cut -d. -f1-2).$(echo "$A1" | cut -d. -f3)" # bob's claims, alice's signature
SIG=$(echo "$A1" | cut -d. -f3)
FLIP="${SIG:0:5}$([ "${SIG:5:1}" = A ] && echo B || echo A)${SIG:6}"
TAMPER_SIG="$(echo "$A1" | cut -d. -f1-2).$FLIP"
out=$(printf 'Bearer %s\n' "$OTHER" "$WRONGLXM" "$SWAP" "$TAMPER_SIG" | verify required)
expect_contains "token for another service" "$(sed -n 1p <<<"$out")" "refused BadJwtAudience"
expect_contains "token for another method" "$(sed -n 2p <<<"$out")" "refused BadJwtLexiconMethod"
expect_contains "claims of one account, signature of another" "$(sed -n 3p <<<"$out")" \
  "refused BadJwtSignature"
expect_contains "tampered signature" "$(sed -n 4p <<<"$out")" "refused BadJwtSignature"

# The same token presented for another method is refused (the cache is per method).
out=$(printf 'Bearer %s\nBearer %s\n' "$A1" "$A1" | verify required --lxm app.bsky.feed.getFeedSkeleton)
expect_eq "token valid for its method" "$(sed -n 1p <<<"$out")" "ok $ALICE"
out=$(printf 'Bearer %s\n' "$A1" | verify required --lxm app.bsky.feed.describeFeedGenerator)
expect_contains "token refused for another method" "$out" "refused BadJwtLexiconMethod"

# Expiry: the PDS sets exp 60 s ahead by default; check as if the clock were
# 50 s ahead (still valid) and 61 s ahead (expired, leeway 0 here).
out=$(printf 'Bearer %s\n' "$B1" | verify required --clock_offset_s 50)
expect_eq "token valid until its exp" "$(sed -n 1p <<<"$out")" "ok $BOB"
out=$(printf 'Bearer %s\n' "$B1" | verify required --clock_offset_s 61)
expect_contains "expired token" "$out" "refused JwtExpired"
out=$(printf 'Bearer %s\n' "$B1" | verify required --clock_offset_s 61 --jwt_leeway_s 30)
expect_eq "expired within jwt_leeway_s still accepted" "$(sed -n 1p <<<"$out")" "ok $BOB"

# The feed record names the service DID; AppViews may send aud with #bsky_fg.
if [[ "$FG" != ERROR* ]]; then
  out=$(printf 'Bearer %s\n' "$FG" | verify required)
  expect_eq "aud with #bsky_fg accepted" "$(sed -n 1p <<<"$out")" "ok $ALICE"
else
  expect_contains "the PDS refuses aud with a fragment (InvalidRequest)" "$FG" "InvalidRequest"
fi

# An unreachable PLC directory: refused (BadJwtIss), quickly, not hung.
start=$SECONDS
out=$(printf 'Bearer %s\n' "$B1" | "$TOOLS/auth_check" --auth required --service_did "$SVC" \
  --plc_url "http://127.0.0.1:$(free_port)" --log_level off)
expect_contains "PLC down: refused BadJwtIss" "$out" "refused BadJwtIss"
check "PLC down: answered within the fetch timeout" test $((SECONDS - start)) -le 5

# Through the real feed server (feedgen/http.c, auth_server: the feedgen unit
# tests' in-memory feed source, mdw_auth as its service-auth hook), auth=required.
"$TOOLS/auth_server" serve --auth required --service_did "$SVC" --plc_url "$PLC_URL" \
  --log_level warn >"$T/srv.out" 2>"$T/srv.err" &
SRV=$!
PIDS+=("$SRV")
i=0
while ! grep -q '^PORT ' "$T/srv.out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(sed -n 's/^PORT //p' "$T/srv.out")
FEED="http://127.0.0.1:$PORT/xrpc/app.bsky.feed.getFeedSkeleton?feed=at://did:plc:fakeowner0000000000000/app.bsky.feed.generator/0a1b2c3d&limit=2"
get() { # [Authorization value]: "<status> <body>"
  if [ $# -gt 0 ]; then
    curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: $1" "$FEED"
  else
    curl -s -o "$T/body" -w '%{http_code}' "$FEED"
  fi
  echo " $(cat "$T/body")"
}
r=$(get "Bearer $A1")
expect_contains "getFeedSkeleton with alice's PDS token: 200" "$r" '200 {"cursor":"2","feed":['
r=$(get)
expect_contains "getFeedSkeleton without a token: 401 AuthMissing" "$r" '401 {"error":"AuthMissing"'
r=$(get "Bearer $SWAP")
expect_contains "getFeedSkeleton with a forged token: 401 BadJwtSignature" "$r" \
  '401 {"error":"BadJwtSignature"'
r=$(get "Bearer $OTHER")
expect_contains "getFeedSkeleton with another service's token: 401 BadJwtAudience" "$r" \
  '401 {"error":"BadJwtAudience"'
metrics=$(curl -s "http://127.0.0.1:$PORT/metrics")
expect_contains "auth metrics at /metrics" "$metrics" 'meadow_auth_requests_total{result="verified"} 1'
expect_contains "refusals counted by error" "$metrics" 'meadow_auth_refused_total{error="AuthMissing"} 1'
kill "$SRV" 2>/dev/null
wait "$SRV" 2>/dev/null

# The meadow binary itself: `meadow feedgen --auth required` over a real index
# (filled by tests/tools/feedgen_fill), the wiring in mdw_feedgen_start.
OWNER=did:plc:authpdsowner000000000000
D=$T/data
mkdir -p "$D/index"
out=$("$TOOLS/feedgen_fill" "$D/index" --owner "$OWNER" --id 0a1b2c3d --posts 5 --members 2 2>&1)
expect_contains "index filled" "$out" "filled"
MPORT=$(free_port)
"$MEADOW" feedgen --data "$D" --port "$MPORT" --auth required --service_did "$SVC" \
  --plc_url "$PLC_URL" --log_level debug 2>"$T/meadow.log" &
MSRV=$!
PIDS+=("$MSRV")
check "meadow feedgen listens" wait_port "$MPORT" 20
FEED="http://127.0.0.1:$MPORT/xrpc/app.bsky.feed.getFeedSkeleton?feed=at://$OWNER/app.bsky.feed.generator/0a1b2c3d&limit=3"
r=$(get "Bearer $B1")
expect_contains "meadow feedgen, bob's PDS token: 200 with posts" "$r" '200 {"cursor":'
expect_contains "meadow feedgen, the page lists posts" "$r" '"feed":[{"post":"at://'
r=$(get)
expect_contains "meadow feedgen, no token: 401 AuthMissing" "$r" '401 {"error":"AuthMissing"'
r=$(get "Bearer $TAMPER_SIG")
expect_contains "meadow feedgen, tampered token: 401 BadJwtSignature" "$r" \
  '401 {"error":"BadJwtSignature"'
kill "$MSRV" 2>/dev/null
wait "$MSRV" 2>/dev/null
# Debug logging on: the verified and refused lines name the viewer by a hash only.
expect_contains "the verification is logged (debug)" "$(cat "$T/meadow.log")" 'msg="token verified" viewer='
if grep -q "$BOB" "$T/meadow.log"; then bad "the viewer DID appears in clear in the log"; else ok "logs carry no clear viewer DID"; fi

pds_stop
finish
