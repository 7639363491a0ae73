# Sourced by end-to-end scripts (after tests/lib.sh): a REAL @atproto/pds
# 0.5.35 with an in-memory PLC directory (@did-plc/server Database.mock()),
# both on 127.0.0.1, started from the packages installed in tests/node.
#
#   pds_start [name ...]   starts PLC + PDS, creates <name>.test accounts (each
#                          with an app password), waits for readiness; sets
#                          PDS_URL, PDS_PUBLIC_URL, PLC_URL, PDS_PID, PDS_STATE,
#                          PDS_JWT_SECRET, NODE. Returns non-zero on failure.
#   pds_account NAME       creates one more account; prints its JSON.
#   pds_field NAME KEY     a field of a start-time account (did, handle,
#                          password, appPassword).
#   json_get FILE|- EXPR   evaluates a JS expression on the parsed JSON `j`.
#   pds_stop               SIGTERM by PID, waits; also run at exit.
#
# One PDS per script: starting takes a few seconds, so scripts reuse it
# across their cases. The PDS logs to $T/pds/pds.log.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODE_DIR=$(cd "$E2E_DIR/../node" && pwd)
PDS_PID=""

json_get() { # file-or-dash, JS expression over j
  local src=$1 expr=$2
  if [ "$src" = - ]; then src=/dev/stdin; fi
  "$NODE" -e '
    const fs = require("fs");
    const j = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const v = (0, eval)("(j) => (" + process.argv[2] + ")")(j);
    if (v === undefined || v === null) process.exit(3);
    console.log(typeof v === "string" ? v : JSON.stringify(v));
  ' "$src" "$expr"
}

# json_fields FILE|- EXPR...: one line per expression (one node run); use
#   mapfile -t f < <(json_fields "$file" j.a j.b)
json_fields() {
  local src=$1; shift
  if [ "$src" = - ]; then src=/dev/stdin; fi
  "$NODE" -e '
    const fs = require("fs");
    const j = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    for (const e of process.argv.slice(2)) {
      let v; try { v = (0, eval)("(j) => (" + e + ")")(j); } catch (err) { v = undefined; }
      console.log(v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v));
    }
  ' "$src" "$@"
}

pds_start() {
  NODE=$("$NODE_DIR/setup.sh") || { echo "pds.sh: tests/node/setup.sh failed" >&2; return 1; }
  local dir="$T/pds"
  mkdir -p "$dir/data" "$dir/blobs"
  PDS_STATE="$dir/state.json"
  PDS_JWT_SECRET=$(openssl rand -hex 32)
  local port
  port=$(free_port)
  local names
  names=$(IFS=,; echo "$*")
  (
    export PDS_HOSTNAME=localhost PDS_PORT="$port"
    export PDS_DATA_DIRECTORY="$dir/data" PDS_BLOBSTORE_DISK_LOCATION="$dir/blobs"
    export PDS_JWT_SECRET PDS_ADMIN_PASSWORD
    PDS_ADMIN_PASSWORD=$(openssl rand -hex 16)
    export PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX=$(openssl rand -hex 32)
    export PDS_INVITE_REQUIRED=false PDS_DEV_MODE=true PDS_SERVICE_HANDLE_DOMAINS=.test
    export PDS_CRAWLERS= LOG_ENABLED=true LOG_DESTINATION="$dir/pds.log"
    cd "$NODE_DIR" && exec "$NODE" pds-start.mjs --state "$PDS_STATE" --accounts "$names"
  ) >"$dir/stdout" 2>"$dir/stderr" &
  PDS_PID=$!
  PIDS+=("$PDS_PID")
  local i=0
  while ! grep -q '^READY ' "$dir/stdout" 2>/dev/null; do
    if ! kill -0 "$PDS_PID" 2>/dev/null; then
      echo "pds.sh: the PDS exited during start:" >&2
      tail -20 "$dir/stderr" >&2
      PDS_PID=""
      return 1
    fi
    i=$((i + 1))
    if [ $i -gt 1800 ]; then
      echo "pds.sh: the PDS was not ready within 180 s" >&2
      pds_stop
      return 1
    fi
    sleep 0.1
  done
  # One node run reads the whole state (node starts slowly on a busy machine).
  declare -gA PDS_ACCT=()
  local k v
  while IFS='=' read -r k v; do
    case "$k" in
      pds) PDS_URL=$v ;; publicUrl) PDS_PUBLIC_URL=$v ;; plc) PLC_URL=$v ;;
      *) PDS_ACCT[$k]=$v ;;
    esac
  done < <(json_get "$PDS_STATE" '[`pds=${j.pds}`, `publicUrl=${j.publicUrl}`, `plc=${j.plc}`,
    ...Object.entries(j.accounts).flatMap(([n, a]) =>
      Object.entries(a).map(([k, v]) => `${n}.${k}=${v}`))].join("\n")')
  export PDS_URL PDS_PUBLIC_URL PLC_URL PDS_JWT_SECRET NODE
}

pds_field() { # account name, key (did, handle, password, appPassword)
  if [ -n "${PDS_ACCT[$1.$2]:-}" ]; then
    echo "${PDS_ACCT[$1.$2]}"
  else
    json_get "$PDS_STATE" "j.accounts[\"$1\"].$2"
  fi
}

pds_account() { # name: creates <name>.test on the running PDS, prints its JSON
  "$NODE" "$NODE_DIR/pds-account.mjs" "$PDS_URL" "$1"
}

pds_stop() {
  [ -n "$PDS_PID" ] || return 0
  kill -TERM "$PDS_PID" 2>/dev/null
  local i=0
  while kill -0 "$PDS_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$PDS_PID" 2>/dev/null
  wait "$PDS_PID" 2>/dev/null
  PDS_PID=""
}

# responder_start STATUS COUNT RESET_IN [LOSE]: an HTTP responder on 127.0.0.1
# that answers the first COUNT requests with STATUS (429 carries
# ratelimit-reset RESET_IN s ahead), then forwards to the PDS. With LOSE (a
# path part, e.g. com.atproto.repo.createRecord) it instead forwards the first
# COUNT matching requests but answers them with STATUS: the PDS acted, the
# answer was lost. With RESP_RELAY_SHIM=1 it also answers
# com.atproto.sync.listReposByCollection as a relay would (from the PDS's
# listRepos + listRecords). Sets RESP_URL and RESP_LOG (one line per request seen).
# Stopped at exit like the PDS.
responder_start() {
  local n=${RESP_N:-0}
  RESP_N=$((n + 1))
  RESP_LOG="$T/responder-$n.log"
  : >"$RESP_LOG"
  "$NODE" "$NODE_DIR/e2e-responder.mjs" --upstream "$PDS_URL" --status "$1" --count "$2" \
    --reset-in "$3" --log "$RESP_LOG" ${4:+--lose "$4"} ${RESP_RELAY_SHIM:+--relay-shim} \
    ${RESP_DID_WEB:+--did-web "$RESP_DID_WEB"} \
    >"$T/responder-$n.out" 2>&1 &
  PIDS+=("$!")
  local i=0
  while ! grep -q '^READY ' "$T/responder-$n.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 600 ] && { echo "pds.sh: responder did not start in 60 s" >&2; return 1; }
    sleep 0.1
  done
  RESP_URL="http://127.0.0.1:$(sed -n 's/^READY //p' "$T/responder-$n.out")"
}

# mint_expired_jwt DID: an access JWT signed with PDS_JWT_SECRET, expired a minute ago.
mint_expired_jwt() {
  PDS_JWT_SECRET=$PDS_JWT_SECRET "$NODE" "$NODE_DIR/pds-mint-jwt.mjs" "$1"
}

# xrpc_get NSID QUERY: GET on the PDS, body on stdout.
xrpc_get() {
  curl -s "$PDS_URL/xrpc/$1?$2"
}

# pds_post NAME TEXT: a post by <name>.test through @atproto/api; prints {"uri","cid"}.
pds_post() {
  "$NODE" "$NODE_DIR/e2e-post.mjs" "$PDS_URL" "$(pds_field "$1" handle)" \
    "$(pds_field "$1" appPassword)" post "$2"
}
# pds_delete_post NAME URI
pds_delete_post() {
  "$NODE" "$NODE_DIR/e2e-post.mjs" "$PDS_URL" "$(pds_field "$1" handle)" \
    "$(pds_field "$1" appPassword)" delete "$2"
}

# pds_capture_frames CURSOR FILE: the PDS's subscribeRepos frames from CURSOR
# until 1 s of quiet, in the corpus format; prints the frame count.
pds_capture_frames() {
  "$NODE" "$NODE_DIR/e2e-firehose.mjs" "ws://127.0.0.1:${PDS_URL##*:}" "$1" "$2" 1000
}
