#!/usr/bin/env bash
# The whole test suite, on a fresh machine that has the .NET SDK: installs what the tests need and runs them.
#   - PostgreSQL's server binaries (Debian `postgresql`): the PostgreSQL tests start their own throwaway cluster
#     (initdb in a temp directory, a free loopback port), never a system database;
#   - Node.js and the npm package `s3rver` (into .tools/, pinned): the S3 tests start their own s3rver on a free port;
#   - Chromium (Debian `chromium`): the console tests drive it headless (screenshots in TestResults/console-screenshots/).
# (scripts/services.sh finds or installs them; bench/scaleout.sh uses it too.)
# Arguments are passed to `dotnet test` (e.g. --filter).
set -euo pipefail
cd "$(dirname "$0")"

source scripts/services.sh
install_test_services

dotnet test Wharf.slnx "$@"
