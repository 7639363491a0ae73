# Sourced by the pipeline_*.sh tests: writing Jetstream events stamped near
# now (bash + printf only: python is not guaranteed on CI), running the
# replay server and `meadow serve`, and reading feeds with curl.
#
# Event clock: EV (µs). Each event advances it by 1 ms; a phase starts at
# max(EV, now). time_us = EV, rev = TID(EV) (so revs grow per repository),
# record keys = TID(EV + 1 ms) and createdAt = that instant, as an honest client.

CID=bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5lclrqnbwzq6tp4
EV=0
STREAM=${STREAM:-$T_DIR/stream.jsonl}

now_us() { date +%s%6N; }
clock_now() { local n; n=$(now_us); [ "$n" -gt "$EV" ] && EV=$n; return 0; }

# TID of (µs, clock id) into TID: 13 base32-sortable characters.
tid() {
  local v=$((($1 << 10) | ($2 & 1023))) s="" a=234567abcdefghijklmnopqrstuvwxyz i
  for ((i = 0; i < 13; i++)); do
    s=${a:$((v & 31)):1}$s
    v=$((v >> 5))
  done
  TID=$s
}
# RFC 3339 of µs into ISO (millisecond precision, Z).
iso() {
  local s ms
  TZ=UTC printf -v s '%(%Y-%m-%dT%H:%M:%S)T' $(($1 / 1000000))
  printf -v ms %03d $((($1 / 1000) % 1000))
  ISO=$s.${ms}Z
}
# A did:plc-shaped DID from a short lowercase name (padded to 24 characters).
mkdid() { local p=${1}aaaaaaaaaaaaaaaaaaaaaaaa; printf 'did:plc:%s' "${p:0:24}"; }

# commit DID COLLECTION OP RKEY [RECORD_JSON]
commit() {
  EV=$((EV + 1000))
  tid "$EV" 7
  local body=""
  [ -n "${5:-}" ] && body=",\"record\":$5,\"cid\":\"$CID\""
  printf '{"did":"%s","time_us":%d,"kind":"commit","commit":{"rev":"%s","operation":"%s","collection":"%s","rkey":"%s"%s}}\n' \
    "$1" "$EV" "$TID" "$3" "$2" "$4" "$body" >>"$STREAM"
}
# Prepares the record key and createdAt of the next record: RK, ISO.
next_rec() { tid $((EV + 1000)) 3; RK=$TID; iso $((EV + 1000)); }

# post VAR DID TEXT [EXTRA_FIELDS]: creates a post, its URI into VAR.
post() {
  next_rec
  commit "$2" app.bsky.feed.post create "$RK" \
    "{\"\$type\":\"app.bsky.feed.post\",\"text\":\"$3\",\"createdAt\":\"$ISO\"${4:-}}"
  printf -v "$1" 'at://%s/app.bsky.feed.post/%s' "$2" "$RK"
}
# edit URI TEXT: updates a post (same record key, newer rev).
edit() {
  local did=${1#at://} rk=${1##*/}
  did=${did%%/*}
  iso $((EV + 1000))
  commit "$did" app.bsky.feed.post update "$rk" \
    "{\"\$type\":\"app.bsky.feed.post\",\"text\":\"$2\",\"createdAt\":\"$ISO\"}"
}
# del URI: deletes any record.
del() {
  local rest=${1#at://}
  local did=${rest%%/*} coll rk=${1##*/}
  coll=${rest#*/}
  coll=${coll%%/*}
  commit "$did" "$coll" delete "$rk"
}
# config VAR OWNER TAG [EXTRA_FIELDS] [RKEY]: a community config, its URI into VAR.
config() {
  next_rec
  [ -n "${5:-}" ] && RK=$5
  commit "$2" net.atrarium.community.config create "$RK" \
    "{\"\$type\":\"net.atrarium.community.config\",\"name\":\"community $3\",\"hashtag\":\"#atr_$3\",\"stage\":\"theme\",\"createdAt\":\"$ISO\"${4:-}}"
  printf -v "$1" 'at://%s/net.atrarium.community.config/%s' "$2" "$RK"
}
# join VAR DID CONFIG_URI [ROLE] [ACTIVE]: a membership, its URI into VAR.
join() {
  next_rec
  commit "$2" net.atrarium.community.membership create "$RK" \
    "{\"\$type\":\"net.atrarium.community.membership\",\"community\":\"$3\",\"role\":\"${4:-member}\",\"joinedAt\":\"$ISO\",\"active\":${5:-true}}"
  printf -v "$1" 'at://%s/net.atrarium.community.membership/%s' "$2" "$RK"
}
# modact VAR BY CONFIG_URI ACTION TARGET (post URI or DID): a moderation action.
modact() {
  next_rec
  local target
  case "$5" in
  at://*) target="{\"\$type\":\"net.atrarium.moderation.action#postTarget\",\"uri\":\"$5\",\"cid\":\"$CID\"}" ;;
  *) target="{\"\$type\":\"net.atrarium.moderation.action#userTarget\",\"did\":\"$5\"}" ;;
  esac
  commit "$2" net.atrarium.moderation.action create "$RK" \
    "{\"\$type\":\"net.atrarium.moderation.action\",\"action\":\"$4\",\"target\":$target,\"community\":\"$3\",\"createdAt\":\"$ISO\"}"
  printf -v "$1" 'at://%s/net.atrarium.moderation.action/%s' "$2" "$RK"
}
# account DID ACTIVE(true|false) STATUS SEQ
account() {
  EV=$((EV + 1000))
  iso "$EV"
  local st=""
  [ -n "$3" ] && st=",\"status\":\"$3\""
  printf '{"did":"%s","time_us":%d,"kind":"account","account":{"active":%s,"did":"%s","seq":%d%s,"time":"%s"}}\n' \
    "$1" "$EV" "$2" "$1" "$4" "$st" "$ISO" >>"$STREAM"
}

# The replay server on a fixed port (RPORT), serving STREAM; RPID.
replay_start() {
  "$TOOLS/jetstream_replay" --file "$STREAM" --port "$RPORT" --max-seconds 300 "$@" \
    >>"$T_DIR/replay.out" 2>>"$T_DIR/replay.log" &
  RPID=$!
  PIDS+=("$RPID")
  wait_port "$RPORT" 30
}
replay_stop() {
  [ -n "${RPID:-}" ] || return 0
  kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; return 0; }

# serve_start DATA_DIR HTTP_PORT LOG [more flags]: `meadow serve` on the replay server; SPID.
serve_start() {
  local data=$1 port=$2 log=$3
  shift 3
  "$MEADOW" serve --data "$data" --port "$port" --log_level "${SERVE_LOG_LEVEL:-info}" \
    --jetstream_urls "ws://127.0.0.1:$RPORT/subscribe" --backoff_min_ms 20 --backoff_max_ms 200 \
    --rewind_s 1 --index_map_mb 256 --queue_map_mb 256 "$@" >>"$log" 2>&1 &
  SPID=$!
  PIDS+=("$SPID")
  wait_port "$port" 60
}

# feed_get PORT OWNER TAG [LIMIT] [CURSOR]: raw getFeedSkeleton body.
feed_get() {
  curl -s --max-time 5 "http://127.0.0.1:$1/xrpc/app.bsky.feed.getFeedSkeleton?feed=at://$2/app.bsky.feed.generator/$3&limit=${4:-100}${5:+&cursor=$5}"
}
# feed_all PORT OWNER TAG [LIMIT]: every URI of the feed, newest first, one
# space between, paging with LIMIT; "ERR:<error>" on an XRPC error. Uses
# pipeline_feed (one keep-alive connection); curl and grep when it is missing.
feed_all() {
  if [ -x "$TOOLS/pipeline_feed" ]; then
    local r
    r=$("$TOOLS/pipeline_feed" --port "$1" --feed "at://$2/app.bsky.feed.generator/$3" --limit "${4:-100}")
    printf '%s' "$r"
    return
  fi
  local port=$1 owner=$2 tag=$3 limit=${4:-100} cursor="" body out="" pages=0 err
  while :; do
    body=$(feed_get "$port" "$owner" "$tag" "$limit" "$cursor")
    err=$(printf '%s' "$body" | grep -o '"error":"[^"]*"' | head -1)
    if [ -n "$err" ] || [ -z "$body" ]; then
      err=${err#\"error\":\"}
      printf 'ERR:%s' "${err%\"}"
      return
    fi
    out+=$(printf '%s' "$body" | grep -o '"post":"[^"]*"' | sed 's/^"post":"//; s/"$//' | tr '\n' ' ')
    cursor=$(printf '%s' "$body" | grep -o '"cursor":"[^"]*"' | sed 's/^"cursor":"//; s/"$//')
    pages=$((pages + 1))
    [ -z "$cursor" ] || [ $pages -ge 1000 ] && break
  done
  out=${out% }
  printf '%s' "$out"
}
# wait_feed NAME PORT OWNER TAG WANT [SECONDS]: polls until the feed equals
# WANT (bounded), then asserts it.
# The sentinel post (the stream's last, in $OWNER0's community $TAG0) is in
# the feed served on port $1: everything before it was indexed.
sentinel_seen() { # port
  case "$(feed_get "$1" "$OWNER0" "$TAG0" 1)" in *"\"$SENTINEL\""*) return 0 ;; esac
  return 1
}
wait_sentinel() { # port seconds
  local i=0
  while ! sentinel_seen "$1"; do
    i=$((i + 1))
    [ $i -gt $(($2 * 10)) ] && return 1
    sleep 0.1
  done
}
wait_feed() {
  local name=$1 port=$2 owner=$3 tag=$4 want=$5 max=${6:-10} got i=0
  while :; do
    got=$(feed_all "$port" "$owner" "$tag")
    [ "$got" == "$want" ] && break
    i=$((i + 1))
    [ $i -ge $((max * 10)) ] && break
    sleep 0.1
  done
  expect_eq "$name" "$got" "$want"
}
