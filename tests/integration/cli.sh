#!/usr/bin/env bash
# The meadow binary's command line: version, help, unknown commands and
# options, settings; --help on every command and subcommand (the table is
# walked from `meadow help`, then each parent's "subcommands:" list).
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
"$MEADOW" --help >"$T/out" 2>"$T/err"; rc=$?
expect_eq "meadow --help exits 0" "$rc" 0
expect_contains "meadow --help usage on stdout" "$(cat "$T/out")" "usage: meadow"
"$MEADOW" --no-such-flag version 2>"$T/err"; rc=$?
expect_eq "unknown top-level option exits 2" "$rc" 2
expect_contains "unknown top-level option named" "$(cat "$T/err")" "unknown option --no-such-flag"

# Every command and subcommand: --help and -h exit 0 with a usage line on
# stdout and nothing on stderr; an unknown option exits 2, names the option
# and prints the usage on stderr.
commands=$("$MEADOW" help | awk '/^commands:/ {f = 1; next} f && /^  [a-z]/ {print $1} /^$/ {f = 0}')
expect_contains "help lists rebuild" "$commands" "rebuild"
walked=0
walk() { # words of a command path
  local path="$*" h sub
  for h in --help -h; do
    "$MEADOW" "$@" "$h" >"$T/out" 2>"$T/err"; rc=$?
    expect_eq "meadow $path $h exits 0" "$rc" 0
    expect_contains "meadow $path $h prints its usage" "$(head -1 "$T/out")" "usage: meadow $path"
    expect_eq "meadow $path $h: stderr empty" "$(cat "$T/err")" ""
  done
  "$MEADOW" "$@" --no-such-option x >"$T/out" 2>"$T/err"; rc=$?
  expect_eq "meadow $path --no-such-option exits 2" "$rc" 2
  expect_contains "meadow $path: the unknown option is named" "$(cat "$T/err")" \
    "unknown option --no-such-option"
  expect_contains "meadow $path: usage on stderr" "$(cat "$T/err")" "usage: meadow"
  expect_eq "meadow $path: nothing on stdout" "$(cat "$T/out")" ""
  walked=$((walked + 1))
  "$MEADOW" "$@" --help |
    awk '/^subcommands:/ {f = 1; next} f && /^  [a-z]/ {print $1}' >"$T/subs.$walked"
  for sub in $(cat "$T/subs.$walked"); do walk "$@" "$sub"; done
}
for c in $commands; do walk "$c"; done
# 15 commands and their subcommands (queue dead has its own three).
[ "$walked" -ge 35 ] && ok "walked $walked commands and subcommands" ||
  bad "walked only $walked commands and subcommands"

out=$("$MEADOW" help moderate hide); rc=$?
expect_eq "help COMMAND SUB exits 0" "$rc" 0
expect_contains "help COMMAND SUB prints its usage" "$out" "usage: meadow moderate hide <post-uri>"
"$MEADOW" moderate hide at://did:plc:x/app.bsky.feed.post/1 --community C --bogus v 2>"$T/err"
expect_eq "moderate hide --bogus exits 2" "$?" 2
expect_contains "moderate hide --bogus named" "$(cat "$T/err")" \
  "meadow moderate hide: unknown option --bogus"
"$MEADOW" community create 2>"$T/err"; rc=$?
expect_eq "community create without --name exits 2" "$rc" 2
expect_contains "community create names what is missing" "$(cat "$T/err")" "--name is required"
finish
