#!/usr/bin/env bash
# getFeedSkeleton under load: wrk against `meadow feedgen` serving a community
# of 100,000 posts (limit 50, cursors spread across the whole feed, picked
# round-robin by a wrk Lua script), beside the same server's /xrpc/_health
# measured in the same run. Prints req/s and p99 with the ratios to health.
# Goals: feed >= 80% of health's req/s, feed p99 <= 1.5x health's p99.
# Bounded: BENCH_FEED_SECONDS (default 10) per endpoint, in BENCH_FEED_ROUNDS (5)
# alternating rounds.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MEADOW=${MEADOW:-$PWD/$BUILD/meadow}
TOOLS=${TOOLS:-$PWD/$BUILD/tools}
SECS=${BENCH_FEED_SECONDS:-10}
POSTS=${BENCH_FEED_POSTS:-100000}
CONNS=${BENCH_FEED_CONNECTIONS:-64}
T=$(mktemp -d "${TMPDIR:-/tmp}/meadow-bench-feed-XXXXXX")
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

# The distribution's python starts in 0.2 s; a pyenv shim may take seconds.
py() { if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"; else python3 "$@"; fi; }
command -v wrk >/dev/null || { echo "bench_feed: wrk missing (scripts/deps.sh)"; exit 1; }
OWNER=did:plc:benchfeedowner000000000
ID=be11c4ed
FEED="at://$OWNER/app.bsky.feed.generator/$ID"
mkdir -p "$T/data/index"
t0=$(date +%s.%N)
"$TOOLS/feedgen_fill" "$T/data/index" --owner $OWNER --id $ID --posts "$POSTS" --members 20 \
  --step-ms 500 >/dev/null || exit 1
printf 'filled %d posts in %.1f s\n' "$POSTS" "$(py -c "print($(date +%s.%N) - $t0)")"

PORT=$(py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$MEADOW" feedgen --data "$T/data" --port "$PORT" --http_threads 2 --log_level warn \
  2>"$T/server.log" &
SERVER=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
BASE="http://127.0.0.1:$PORT"
FQ=$(py -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$FEED")
FPATH="/xrpc/app.bsky.feed.getFeedSkeleton?feed=$FQ&limit=50"

# Cursors across the whole feed: walk it with limit 100, keep every 5th
# cursor (~200 positions, every ~500 posts), plus the first page.
py - "$BASE$FPATH" "$T/cursors" <<'EOF' || exit 1
import json, sys, urllib.request
base, out = sys.argv[1].replace("limit=50", "limit=100"), sys.argv[2]
cursors, cursor, n, pages = [""], None, 0, 0
while True:
    url = base + ("&cursor=" + cursor if cursor else "")
    j = json.load(urllib.request.urlopen(url))
    n += len(j["feed"])
    pages += 1
    cursor = j.get("cursor")
    if not cursor:
        break
    if pages % 5 == 0:
        cursors.append(cursor)
open(out, "w").write("\n".join(cursors) + "\n")
print(f"walked {n} posts; {len(cursors)} cursors for wrk")
EOF

# Requests are formatted once at start (wrk.format per request and the
# cursor concatenation cost wrk ~0.5 us that the health side did not pay).
cat >"$T/feed.lua" <<EOF
local reqs = {}
for line in io.lines("$T/cursors") do
  if line == "" then reqs[#reqs + 1] = wrk.format("GET", "$FPATH")
  else reqs[#reqs + 1] = wrk.format("GET", "$FPATH&cursor=" .. line) end
end
local i = math.random(#reqs)
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
EOF

# The baseline goes through a Lua request() too, so wrk (sharing the 2 cores
# with the server) spends the same per request on both sides.
cat >"$T/health.lua" <<EOF
local req = wrk.format("GET", "/xrpc/_health")
request = function() return req end
EOF

# The server's CPU time so far, in clock ticks (utime + stime).
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
TCK=$(getconf CLK_TCK)

# wrk's text -> "req_per_s p99_ms non2xx server_cpu_us_per_request"
run_wrk() {
  local t0 t1
  t0=$(server_ticks)
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$@" >"$T/wrk.out" 2>&1
  t1=$(server_ticks)
  py -c '
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
n = int(re.search(r"(\d+) requests in", t).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", t)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6 / max(n, 1)
print(f"{rps:.0f} {p99:.3f} {bad.group(1) if bad else 0} {cpu:.1f}")
' "$T/wrk.out" "$t0" "$t1" "$TCK"
}

curl -sf "$BASE$FPATH" | py -c 'import json,sys; j=json.load(sys.stdin); assert len(j["feed"]) == 50 and j["cursor"]' \
  || { echo "bench_feed: feed does not answer 50 posts"; exit 1; }
# Alternating short rounds, so the load other processes put on this shared
# machine hits both sides alike; the figures are the medians of the rounds.
ROUNDS=${BENCH_FEED_ROUNDS:-5}
HALF=$(( (SECS + ROUNDS - 1) / ROUNDS ))
SECS=$HALF
: >"$T/h.txt"; : >"$T/f.txt"
for _ in $(seq 1 "$ROUNDS"); do
  run_wrk -s "$T/health.lua" "$BASE/xrpc/_health" >>"$T/h.txt"
  run_wrk -s "$T/feed.lua" "$BASE$FPATH" >>"$T/f.txt"
done
med() { # file column -> median
  py -c "import sys,statistics; print(statistics.median(float(l.split()[$2]) for l in open('$1')))"
}
h_rps=$(med "$T/h.txt" 0); h_p99=$(med "$T/h.txt" 1)
f_rps=$(med "$T/f.txt" 0); f_p99=$(med "$T/f.txt" 1)
h_cpu=$(med "$T/h.txt" 3); f_cpu=$(med "$T/f.txt" 3)
h_bad=$(awk '{s += $3} END {print s + 0}' "$T/h.txt"); f_bad=$(awk '{s += $3} END {print s + 0}' "$T/f.txt")
# Per round also the server's CPU per request: above wrk's own (~12-17 us
# here) the workers never sleep and requests wait for scheduler ticks
# (docs/feedgen.md, "Session 3"), which is what the p99 shows.
echo "rounds (req/s p99_ms server_us): health $(awk '{printf "%s/%s/%s ", $1, $2, $4}' "$T/h.txt")"
echo "                                 feed   $(awk '{printf "%s/%s/%s ", $1, $2, $4}' "$T/f.txt")"
kill -INT "$SERVER"; wait "$SERVER"; SERVER=

printf '%-44s %12.0f %-10s | baseline %-30s %12.0f %-10s | ratio %.2f (goal >= 0.80)\n' \
  "getFeedSkeleton limit 50, 100k-post feed" "$f_rps" "req/s" "/xrpc/_health" "$h_rps" "req/s" \
  "$(py -c "print($f_rps / $h_rps)")"
printf '%-44s %12.2f %-10s | baseline %-30s %12.2f %-10s | ratio %.2f (goal <= 1.50)\n' \
  "getFeedSkeleton p99 latency" "$f_p99" "ms" "/xrpc/_health p99" "$h_p99" "ms" \
  "$(py -c "print($f_p99 / $h_p99)")"
printf '%-44s %12.1f %-10s | baseline %-30s %12.1f %-10s | ratio %.2f (not a goal: the server alone, whatever wrk and other load do)\n' \
  "server CPU per feed request" "$f_cpu" "us" "server CPU per health request" "$h_cpu" "us" \
  "$(py -c "print($f_cpu / $h_cpu)")"
echo "non-2xx responses: feed $f_bad, health $h_bad; wrk -t2 -c$CONNS, $ROUNDS alternating rounds of ${HALF}s per endpoint (medians), server --http_threads 2"
[ "$f_bad" -eq 0 ] && [ "$h_bad" -eq 0 ]
