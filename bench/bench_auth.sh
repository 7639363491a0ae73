#!/usr/bin/env bash
# bench_auth.sh — getFeedSkeleton over HTTP with service auth beside the same
# requests without it, in the same run (wrk, loopback, wrk and the server
# sharing this machine's cores). The server is the real feed server
# (feedgen/http.c) over the in-memory feed source of the feedgen unit tests
# (build/tools/auth_server serve), so the ratio isolates what auth adds per
# request (a real index read would make it look cheaper).
#   baseline: auth = off, the same requests (Authorization headers included,
#     ignored), so wrk's per-request work and the header bytes are the same
#   auth=required, pool of 2000 valid tokens from 20 issuers, keys cached
#     (after the first round every token is a verified-token cache hit)
#   auth=required, same pool, verified-token cache off: every request a full
#     ES256K verification with cached DID keys
# Goal (issue 9): authenticated >= 80% of the unauthenticated rate.
set -u
cd "$(dirname "$0")/.."
TOOLS=${TOOLS:-$PWD/build/tools}
DUR=${BENCH_AUTH_SECONDS:-5}
T=$(mktemp -d "${TMPDIR:-/tmp}/meadow-bench-auth-XXXXXX")
SRV=""
trap '[ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
command -v wrk >/dev/null || { echo "bench_auth.sh: wrk missing"; exit 1; }

SVC=did:web:feeds.meadow.test
"$TOOLS/auth_server" mint 2000 20 "$T/docs.json" "$T/tokens" --service_did "$SVC" || exit 1
URL_PATH="/xrpc/app.bsky.feed.getFeedSkeleton?feed=at://did:plc:fakeowner0000000000000/app.bsky.feed.generator/0a1b2c3d&limit=30"

start() { # settings...: starts the server, sets PORT and SRV
  "$TOOLS/auth_server" serve --http_threads 2 --service_did "$SVC" \
    --did_docs_file "$T/docs.json" --log_level warn "$@" >"$T/srv.out" 2>"$T/srv.err" &
  SRV=$!
  local i=0
  while ! grep -q '^PORT ' "$T/srv.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "auth_server serve did not start"; cat "$T/srv.err"; exit 1; }
    sleep 0.1
  done
  PORT=$(sed -n 's/^PORT //p' "$T/srv.out")
}
stop() { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; SRV=""; }
rate() { # label [tokens file]: prints requests/s; fails on non-2xx answers
  local label=$1 out
  local url="http://127.0.0.1:$PORT$URL_PATH"
  if [ $# -gt 1 ]; then
    out=$(wrk -t2 -c32 -d"${DUR}s" -s bench/bench_auth.lua "$url" -- "$2" 2>&1)
  else
    out=$(wrk -t2 -c32 -d"${DUR}s" "$url" 2>&1)
  fi
  if grep -q "Non-2xx" <<<"$out" || ! grep -q "^Requests/sec" <<<"$out"; then
    echo "bench_auth.sh: $label: failed or non-2xx answers:" >&2
    echo "$out" >&2
    return 1
  fi
  awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}
report() { # name, value, baseline name, baseline value
  awk -v n="$1" -v v="$2" -v bn="$3" -v b="$4" 'BEGIN {
    printf "%-44s %12.0f %-10s | baseline %-30s %12.0f %-10s | ratio %.2f\n", n, v, "req/s", bn, b, "req/s", (b > 0 ? v / b : 0) }'
}

start --auth off
# Warm-up, then the baseline.
DUR=1 rate warmup "$T/tokens" >/dev/null
base=$(rate "auth=off" "$T/tokens") || exit 1
stop

start --auth required
DUR=1 rate warmup "$T/tokens" >/dev/null
cached=$(rate "auth=required" "$T/tokens") || exit 1
stop

start --auth required --no_token_cache
full=$(rate "auth=required no token cache" "$T/tokens") || exit 1
stop

report "getFeedSkeleton auth=required (token pool)" "$cached" "auth=off" "$base"
report "getFeedSkeleton auth=required, no token cache" "$full" "auth=off" "$base"
