#!/usr/bin/env bash
# Runs the suite (tests/run.sh, same reporting) under Debian's faketime at each
# offset given, default '+800 days' then '-365 days', so a test that reads the
# real date fails here long before that date comes. Every process the tests
# start (meadow, the tools, openssl, node) sees the shifted time, so
# certificates and tokens minted by the tests are minted for it.
#   tests/run_dated.sh ['+800 days' ...]     BUILD, TEST_ONLY as for tests/run.sh
set -u
cd "$(dirname "$0")/.."
command -v faketime >/dev/null || { echo "run_dated: faketime missing (scripts/deps.sh)" >&2; exit 1; }
[ $# -gt 0 ] || set -- '+800 days' '-365 days'
# libfaketime is preloaded ahead of the ASan runtime; ASan refuses that unless told.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}:verify_asan_link_order=0
status=0
for off in "$@"; do
  start=$SECONDS
  echo "== faketime '$off' (date: $(faketime "$off" date -u +%F))"
  faketime "$off" tests/run.sh || status=1
  echo "== faketime '$off': $((SECONDS - start))s"
done
exit $status
