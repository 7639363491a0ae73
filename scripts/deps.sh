#!/usr/bin/env bash
# Installs the Debian packages Meadow builds and tests with. Idempotent: silent
# and fast when everything is present; as root it apt-get installs what is
# missing; otherwise it names the missing packages and fails.
set -euo pipefail

PKGS=(
  build-essential pkg-config
  libwebsockets-dev libcurl4-openssl-dev libcbor-dev liblmdb-dev libpcre2-dev
  libcjson-dev libssl-dev libmicrohttpd-dev libsecp256k1-dev libutf8proc-dev
  libzstd-dev zstd
  clang-14 libclang-rt-14-dev clang-format
  curl wrk lmdb-utils openssl ca-certificates
  python3 util-linux procps iproute2
  faketime
)
# Node.js + npm run the cross-checks (@atproto/lexicon, @atproto/api) and the
# end-to-end PDS. A machine that already has a node on PATH keeps it.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "meadow: missing Debian packages: ${missing[*]}" >&2
  echo "meadow: install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "meadow: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || apt-get update
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
