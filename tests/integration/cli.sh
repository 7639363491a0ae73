#!/usr/bin/env bash
# The meadow binary's command line: version, help, unknown commands, settings.
. "$(dirname "$0")/../lib.sh"
cd "$T"

out=$("$MEADOW" version); expect_contains "version prints" "$out" "meadow "
out=$("$MEADOW" help); expect_contains "help lists serve" "$out" "serve"
"$MEADOW" nosuch 2>"$T/err"; rc=$?
expect_eq "unknown command exits 2" "$rc" 2
expect_contains "unknown command named" "$(cat "$T/err")" 'unknown command "nosuch"'

echo 'port = 4001' > meadow.conf
out=$(MEADOW_HOSTNAME=h.example "$MEADOW" --print-config --log_level warn)
expect_contains "file setting" "$out" 'port = 4001  # source: file'
expect_contains "env setting" "$out" 'hostname = "h.example"  # source: env'
expect_contains "flag setting" "$out" 'log_level = "warn"  # source: flag'

"$MEADOW" --port 0 version 2>"$T/err"; rc=$?
expect_eq "bad value exits 2" "$rc" 2
expect_contains "bad value message" "$(cat "$T/err")" 'invalid value for port: "0"'
finish
