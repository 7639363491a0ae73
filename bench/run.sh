#!/usr/bin/env bash
# `make bench`: runs every build/bench/bench_* binary (optimized, no
# sanitizers) and then every bench/*.sh. Each prints its figures beside a
# baseline measured in the same run, with the ratio. BENCH_ONLY=substr
# selects some.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD MEADOW="$PWD/$BUILD/meadow" TOOLS="$PWD/$BUILD/tools" BENCH="$PWD/$BUILD/bench"
status=0
echo "meadow bench — $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
for b in "$BUILD"/bench/bench_* bench/*.sh; do
  [ -e "$b" ] || continue
  case "$b" in bench/run.sh) continue ;; esac
  if [ -n "${BENCH_ONLY:-}" ] && [[ "$b" != *"$BENCH_ONLY"* ]]; then continue; fi
  echo
  echo "== $(basename "$b")"
  if [[ "$b" == *.sh ]]; then bash "$b" || status=1; else "$b" || status=1; fi
done
exit $status
