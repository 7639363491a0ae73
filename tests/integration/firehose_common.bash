# Helpers shared by tests/integration/firehose_*.sh (sourced after ../lib.sh).
# Fixed stream start time: tests never depend on the wall clock.
START_US=1779719009000000
DATA="$T/data"
QDIR="$DATA/queue"

# start_replay FILE [replay flags...]: sets RP_PID and RP_PORT (reuses RP_PORT if set).
start_replay() {
  local file=$1; shift
  local portflag=()
  [ -n "${RP_PORT:-}" ] && portflag=(--port "$RP_PORT")
  "$TOOLS/jetstream_replay" --file "$file" "${portflag[@]}" --max-seconds 300 "$@" \
    >"$T/replay.port" 2>>"$T/replay.log" &
  RP_PID=$!
  PIDS+=("$RP_PID")
  local i=0
  while ! grep -q '^port=' "$T/replay.port" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "replay did not start"; return 1; }; sleep 0.05
  done
  RP_PORT=$(sed -n 's/^port=//p' "$T/replay.port")
}

# start_meadow [setting flags...]: `meadow firehose` against the replay server.
start_meadow() {
  local want=$(($(count_starts) + 1)) i=0
  "$MEADOW" --data "$DATA" --jetstream_urls "ws://127.0.0.1:$RP_PORT/subscribe" \
    --backoff_min_ms 50 --backoff_max_ms 400 "$@" firehose 2>>"$T/meadow.log" &
  MD_PID=$!
  PIDS+=("$MD_PID")
  # Until its signal handlers are installed (it logs "starting"), SIGTERM would kill it.
  while [ "$(count_starts)" -lt "$want" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
}

count_starts() {
  local c
  c=$(grep -c 'msg="starting"' "$T/meadow.log" 2>/dev/null)
  echo "${c:-0}"
}

stop_meadow() { # SIGTERM and wait; the exit code goes to MD_RC
  kill -TERM "$MD_PID" 2>/dev/null
  wait "$MD_PID"
  MD_RC=$?
}

qcursor() { "$TOOLS/fh_qtool" cursor "$QDIR" 2>/dev/null || echo none; }
qdepth() { "$TOOLS/fh_qtool" depth "$QDIR" 2>/dev/null || echo 0; }

# wait_cursor WANT SECONDS: until the stored cursor equals WANT.
wait_cursor() {
  local want=$1 max=$2 i=0
  while [ "$(qcursor)" != "$want" ]; do
    i=$((i + 1)); [ $i -gt $((max * 10)) ] && return 1; sleep 0.1
  done
}

max_time() { # largest time_us of the events a server sends for Meadow's wantedCollections
  grep -E '"kind":"(identity|account)"|"collection":"(app\.bsky\.feed\.post|net\.atrarium\.[^"]*)"' "$1" |
    grep -o '"time_us":[0-9]*' | cut -d: -f2 | sort -n | tail -1
}
