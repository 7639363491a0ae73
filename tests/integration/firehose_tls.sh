#!/usr/bin/env bash
# wss:// through our TLS (OpenSSL over memory BIOs on an lws raw socket):
# against the replay server serving TLS with a test CA's certificate for
# "localhost", `meadow firehose` with SSL_CERT_FILE=<test CA> stores exactly
# the reference candidates (fragments and garbage frames included); the same
# server is refused when the client trusts only the system store (unknown
# issuer), and when the URL names a host the certificate does not (wrong name).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/firehose_common.bash"

# A test CA and a server certificate it signs, for localhost and 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 \
  -subj "/CN=meadow test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
  -out "$T/srv.pem" -days 2 -extfile "$T/ext.cnf" 2>/dev/null
check "test certificates made" test -s "$T/srv.pem"

"$TOOLS/gen_stream" --start-us $START_US --count 8000 --seed 17 >"$T/s.jsonl"
"$TOOLS/ref_filter" <"$T/s.jsonl" >"$T/want.jsonl"
want_n=$(wc -l <"$T/want.jsonl")
maxt=$(max_time "$T/s.jsonl")
check "stream has candidates" test "$want_n" -gt 20
start_replay "$T/s.jsonl" --tls-cert "$T/srv.pem" --tls-key "$T/srv.key" --garbage-every 2000 --fragment-every 5

run_tls() { # URL, extra env...: meadow firehose for a few seconds at most
  local url=$1; shift
  env "$@" "$MEADOW" --data "$DATA" --jetstream_urls "$url" --backoff_min_ms 50 --backoff_max_ms 200 \
    firehose 2>>"$T/meadow.log" &
  MD_PID=$!; PIDS+=("$MD_PID")
}

# Trusting only the system store: the test CA is unknown, nothing connects.
run_tls "wss://localhost:$RP_PORT/subscribe"
sleep 1.5
stop_meadow
expect_eq "untrusted: SIGTERM exits 0" "$MD_RC" 0
expect_contains "untrusted: refused" "$(cat "$T/meadow.log")" "TLS handshake failed: unable to get local issuer certificate"
expect_eq "untrusted: nothing queued" "$(qdepth)" 0
cat "$T/meadow.log" >>"$T/all.log"; : >"$T/meadow.log"

# Trusting the test CA, but a name the certificate does not carry.
run_tls "wss://127.0.0.2:$RP_PORT/subscribe" SSL_CERT_FILE="$T/ca.pem"
sleep 1.5
stop_meadow
expect_contains "wrong name: refused" "$(cat "$T/meadow.log")" "TLS handshake failed: IP address mismatch"
expect_eq "wrong name: nothing queued" "$(qdepth)" 0
cat "$T/meadow.log" >>"$T/all.log"; : >"$T/meadow.log"

# Trusting the test CA: the whole stream arrives.
run_tls "wss://localhost:$RP_PORT/subscribe" SSL_CERT_FILE="$T/ca.pem"
if wait_cursor "$maxt" 30; then ok "wss: cursor reaches the last time_us"; else bad "wss: cursor reaches the last time_us" "cursor $(qcursor) want $maxt"; fi
stop_meadow
expect_eq "wss: SIGTERM exits 0" "$MD_RC" 0
"$TOOLS/fh_qtool" dump "$QDIR" >"$T/got.jsonl"
if cmp -s "$T/got.jsonl" "$T/want.jsonl"; then ok "wss: queue == reference, in order"; else
  bad "wss: queue == reference, in order" "$(diff "$T/got.jsonl" "$T/want.jsonl" | head -5)"; fi
log=$(cat "$T/meadow.log")
expect_contains "wss: connected" "$log" "jetstream connected"
expect_contains "wss: garbage counted" "$log" "reason=not_json"
finish
