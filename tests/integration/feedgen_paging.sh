#!/usr/bin/env bash
# Paging through `meadow feedgen` over a real index: a 1,000-post community
# read with limit 7 by curl and by the official @atproto/api client returns
# every post exactly once and in order; the same while another process
# indexes new posts (newer ones and ones dated in between); hidden posts,
# blocked members' and non-members' posts never shorten a page.
. "$(dirname "$0")/../lib.sh"
# The distribution's python starts in 0.2 s; a pyenv shim may take seconds.
py() { if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"; else python3 "$@"; fi; }

D=$T/data
mkdir -p "$D/index"
NEWEST=$(( ($(date +%s) - 3600) * 1000000 ))
A_OWNER=did:plc:pagingownera000000000000; A_ID=00aa00aa
B_OWNER=did:plc:pagingownerb000000000000; B_ID=00bb00bb
A_FEED="at://$A_OWNER/app.bsky.feed.generator/$A_ID"
B_FEED="at://$B_OWNER/app.bsky.feed.generator/$B_ID"

out=$("$TOOLS/feedgen_fill" "$D/index" --owner $A_OWNER --id $A_ID --posts 1000 --members 6 \
  --newest-us "$NEWEST" --expect "$T/a.expect" 2>&1)
expect_contains "community A filled" "$out" "filled"
expect_eq "community A has 1000 visible posts" "$(wc -l <"$T/a.expect")" 1000
# B: every 3rd post hidden, every 5th by a non-member, member 2's posts blocked
out=$("$TOOLS/feedgen_fill" "$D/index" --owner $B_OWNER --id $B_ID --posts 1500 --members 4 \
  --hide-every 3 --outsider-every 5 --block-every 2 --newest-us "$NEWEST" \
  --expect "$T/b.expect" 2>&1)
expect_contains "community B filled" "$out" "filled"
nb=$(wc -l <"$T/b.expect")

PORT=$(free_port)
"$MEADOW" feedgen --data "$D" --port "$PORT" --log_level warn 2>"$T/server.log" &
SERVER=$!
PIDS+=("$SERVER")
check "server listens" wait_port "$PORT" 20
BASE="http://127.0.0.1:$PORT"

# curl_pages FEED LIMIT OUT: pages with curl; URIs to OUT, "size cursor" per page
# to OUT.sizes. The bodies are compact JSON read with bash regexes: one curl
# per page and no other process (this machine is shared and slow).
curl_pages() {
  local feed=$1 limit=$2 out=$3 cursor="" pages=0 fq body rest n
  fq=$(py -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$feed")
  : >"$out"; : >"$out.sizes"
  local re_cursor='^\{"cursor":"([A-Za-z0-9_-]+)",' re_post='^[^{]*\{"post":"([^"]*)"\}(.*)$'
  while :; do
    local url="$BASE/xrpc/app.bsky.feed.getFeedSkeleton?limit=$limit&feed=$fq"
    [ -n "$cursor" ] && url+="&cursor=$cursor"
    body=$(curl -sf "$url") || { echo "curl failed: $url" >&2; return 1; }
    cursor=
    [[ $body =~ $re_cursor ]] && cursor=${BASH_REMATCH[1]}
    rest=${body#*\"feed\":[}
    n=0
    while [[ $rest =~ $re_post ]]; do
      echo "${BASH_REMATCH[1]}" >>"$out"
      rest=${BASH_REMATCH[2]}
      n=$((n + 1))
    done
    echo "$n $cursor" >>"$out.sizes"
    pages=$((pages + 1))
    [ -z "$cursor" ] && break
    [ $pages -gt 2000 ] && { echo "too many pages" >&2; return 1; }
  done
}
# full_pages_ok SIZES_FILE LIMIT: every page but the last has exactly LIMIT posts
full_pages_ok() {
  py - "$1" "$2" <<'EOF'
import sys
sizes = [int(l.split()[0]) for l in open(sys.argv[1])]
limit = int(sys.argv[2])
short = [i for i, s in enumerate(sizes[:-1]) if s != limit]
sys.exit(1 if short or not (0 < sizes[-1] <= limit) else 0)
EOF
}

check "curl pages A" curl_pages "$A_FEED" 7 "$T/a.curl"
expect_eq "curl: A = every post once, in order" "$(cmp -s "$T/a.expect" "$T/a.curl" && echo same)" same
expect_eq "curl: A page count" "$(wc -l <"$T/a.curl.sizes")" 143
check "curl: A pages full" full_pages_ok "$T/a.curl.sizes" 7
check "curl pages B" curl_pages "$B_FEED" 7 "$T/b.curl"
expect_eq "curl: B = visible posts once, in order ($nb)" "$(cmp -s "$T/b.expect" "$T/b.curl" && echo same)" same
check "curl: B pages full despite hidden/blocked/outsider posts" full_pages_ok "$T/b.curl.sizes" 7

NODE=$(cd "$(dirname "$0")/../node" && ./setup.sh 2>"$T/npm.log") || NODE=
CLIENT="$(cd "$(dirname "$0")/../node" && pwd)/feedgen-client.mjs"
if [ -z "$NODE" ]; then
  bad "@atproto/api client" "tests/node/setup.sh failed: $(tail -3 "$T/npm.log")"
else
  "$NODE" "$CLIENT" page "$BASE" "$A_FEED" 7 >"$T/a.node" 2>"$T/a.node.err"
  expect_eq "client: A = every post once, in order" "$(cmp -s "$T/a.expect" "$T/a.node" && echo same)" same
  expect_contains "client: A 143 pages" "$(cat "$T/a.node.err")" "pages=143 "
  "$NODE" "$CLIENT" page "$BASE" "$B_FEED" 7 >"$T/b.node" 2>"$T/b.node.err"
  expect_eq "client: B = visible posts" "$(cmp -s "$T/b.expect" "$T/b.node" && echo same)" same
  sizes=$(sed -n 's/.*sizes=//p' "$T/b.node.err" | tr ',' '\n')
  short=$(echo "$sizes" | head -n -1 | grep -vc '^7$')
  expect_eq "client: B pages full" "$short" 0

  # While another process indexes 400 more posts into A (half newer than all,
  # half dated between existing posts), page A again with the client.
  "$TOOLS/feedgen_fill" "$D/index" --owner $A_OWNER --id $A_ID --posts 0 --span 1000 --members 6 \
    --newest-us "$NEWEST" --stream 400 --stream-ms 12 --stream-out "$T/a.stream" \
    >"$T/stream.log" 2>&1 &
  WRITER=$!
  PIDS+=("$WRITER")
  for _ in $(seq 1 100); do [ -s "$T/a.stream" ] && break; sleep 0.05; done
  live_start_lines=$(wc -l <"$T/a.stream")
  "$NODE" "$CLIENT" page "$BASE" "$A_FEED" 7 >"$T/a.live" 2>"$T/a.live.err"
  live_done_lines=$(wc -l <"$T/a.stream")
  wait "$WRITER"; rc=$?
  expect_eq "writer finished" "$rc" 0
  expect_eq "writer wrote 400" "$(wc -l <"$T/a.stream")" 400
  # posts were indexed between the first and the last page (whatever the speeds)
  expect_eq "paging overlapped the writes ($live_start_lines..$live_done_lines)" \
    "$([ "$live_done_lines" -gt "$live_start_lines" ] && echo yes)" yes
  check "curl pages A after the writes" curl_pages "$A_FEED" 100 "$T/a.final"
  expect_eq "final A = 1400 posts" "$(wc -l <"$T/a.final")" 1400
  res=$(py - "$T/a.expect" "$T/a.stream" "$T/a.live" "$T/a.final" <<'EOF'
import sys
exp, stream, live, final = ([l.strip() for l in open(p)] for p in sys.argv[1:5])
errs = []
if len(set(live)) != len(live):
    errs.append("duplicates in live paging")
missing = set(exp) - set(live)
if missing:
    errs.append(f"{len(missing)} original posts skipped")
extra = set(live) - set(exp) - set(stream)
if extra:
    errs.append(f"{len(extra)} unknown posts")
pos = {u: i for i, u in enumerate(final)}
idx = [pos.get(u, -1) for u in live]
if any(i < 0 for i in idx) or idx != sorted(idx):
    errs.append("live order differs from the index order")
print("ok" if not errs else "; ".join(errs), len(live) - len(exp))
EOF
)
  expect_contains "client during writes: each original post once, in order" "$res" "ok "
fi

kill -INT "$SERVER"; wait "$SERVER"; rc=$?
expect_eq "server exits 0" "$rc" 0
if grep -q 'level=error' "$T/server.log"; then bad "no server errors" "$(grep level=error "$T/server.log" | head -3)"; else ok "no server errors"; fi
finish
