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
DUR=${BENCH_AUTH_SECONDS:-3}
T=$(mktemp -d "${TMPDIR:-/tmp}/meadow-bench-auth-XXXXXX")
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"' EXIT
command -v wrk >/dev/null || { echo "bench_auth.sh: wrk missing"; exit 1; }

SVC=did:web:feeds.meadow.test
"$TOOLS/auth_server" mint 2000 20 "$T/docs.json" "$T/tokens" --service_did "$SVC" || exit 1
URL_PATH="/xrpc/app.bsky.feed.getFeedSkeleton?feed=at://did:plc:fakeowner0000000000000/app.bsky.feed.generator/0a1b2c3d&limit=30"

start() { # name, settings...: starts a server, sets PORT_<name>
  local name=$1
  shift
  "$TOOLS/auth_server" serve --http_threads 2 --service_did "$SVC" \
    --did_docs_file "$T/docs.json" --log_level warn "$@" >"$T/$name.out" 2>"$T/$name.err" &
  PIDS+=("$!")
  local i=0
  while ! grep -q '^PORT ' "$T/$name.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "auth_server serve did not start"; cat "$T/$name.err"; exit 1; }
    sleep 0.1
  done
  printf -v "PORT_$name" '%s' "$(sed -n 's/^PORT //p' "$T/$name.out")"
}
rate() { # port, label: requests/s with the token pool; fails on errors or non-2xx answers
  local out
  out=$(wrk -t2 -c32 -d"${DUR}s" -s bench/bench_auth.lua "http://127.0.0.1:$1$URL_PATH" \
    -- "$T/tokens" 2>&1)
  if grep -q "Non-2xx" <<<"$out" || ! grep -q "^Requests/sec" <<<"$out"; then
    echo "bench_auth.sh: $2: failed or non-2xx answers:" >&2
    echo "$out" >&2
    return 1
  fi
  awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
report() { # name, value, baseline name, baseline value
  awk -v n="$1" -v v="$2" -v bn="$3" -v b="$4" 'BEGIN {
    printf "%-44s %12.0f %-10s | baseline %-30s %12.0f %-10s | ratio %.2f\n", n, v, "req/s", bn, b, "req/s", (b > 0 ? v / b : 0) }'
}

start off --auth off
start pool --auth required
start full --auth required --no_token_cache
# Warm-up (the first round of the pool verifies each token once), then
# ROUNDS rounds alternating the three servers so load from elsewhere on the
# machine falls on all of them alike; medians are reported.
for p in "$PORT_off" "$PORT_pool" "$PORT_full"; do DUR=1 rate "$p" warmup >/dev/null || exit 1; done
offs=() pools=() fulls=()
for r in $(seq "${BENCH_AUTH_ROUNDS:-3}"); do
  offs+=("$(rate "$PORT_off" "auth=off")") || exit 1
  pools+=("$(rate "$PORT_pool" "auth=required")") || exit 1
  fulls+=("$(rate "$PORT_full" "auth=required, no token cache")") || exit 1
done
base=$(median "${offs[@]}")
report "getFeedSkeleton auth=required (token pool)" "$(median "${pools[@]}")" "auth=off" "$base"
report "getFeedSkeleton auth=required, no token cache" "$(median "${fulls[@]}")" "auth=off" "$base"
echo "rounds (req/s): off ${offs[*]} | pool ${pools[*]} | no cache ${fulls[*]}"
