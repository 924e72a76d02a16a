#!/usr/bin/env bash
# The whole test suite, on a fresh machine that has the .NET SDK: installs what the tests need and runs them.
#   - PostgreSQL's server binaries (Debian `postgresql`): the PostgreSQL tests start their own throwaway cluster
#     (initdb in a temp directory, a free loopback port), never a system database;
#   - Node.js and the npm package `s3rver` (into .tools/, pinned): the S3 tests start their own s3rver on a free port.
# Arguments are passed to `dotnet test` (e.g. --filter).
set -euo pipefail
cd "$(dirname "$0")"

s3rver_version=3.7.1

missing=()
find_initdb() { command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1; }
[ -n "$(find_initdb)" ] || missing+=(postgresql)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} ..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export WHARF_TEST_INITDB; WHARF_TEST_INITDB="$(find_initdb)"

tools="$PWD/.tools/s3rver-$s3rver_version"
if [ ! -x "$tools/node_modules/.bin/s3rver" ]; then
  echo "installing s3rver $s3rver_version ..."
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error "s3rver@$s3rver_version" >/dev/null)
fi
export WHARF_TEST_S3RVER="$tools/node_modules/.bin/s3rver"

dotnet test Wharf.slnx "$@"
