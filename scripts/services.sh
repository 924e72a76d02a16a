# Finds, or installs when missing, the services that the PostgreSQL and S3 tests and the scale-out benchmark start
# for themselves, and exports where they are (sourced by ./test.sh and bench/scaleout.sh):
#   WHARF_TEST_INITDB   PostgreSQL's initdb, from Debian's `postgresql` (pg_ctl and psql are in the same directory);
#   WHARF_TEST_S3RVER   the s3rver executable, npm `s3rver` pinned below, installed into .tools/ of the repository;
#   WHARF_TEST_CHROMIUM Chromium, from Debian's `chromium`, which the console tests drive headless through Playwright's
#                       own driver (in its NuGet package): no browser is downloaded.
# A variable that already names an existing file is kept, so a machine that has them elsewhere installs nothing.
# Nothing here starts a service: each user starts its own throwaway instance on a free loopback port.

wharf_s3rver_version=3.7.1

install_test_services() {
  local root tools missing=()
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  find_initdb() { command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1; }

  if [ -z "${WHARF_TEST_INITDB:-}" ] || [ ! -x "$WHARF_TEST_INITDB" ]; then
    [ -n "$(find_initdb)" ] || missing+=(postgresql)
  fi
  if [ -z "${WHARF_TEST_S3RVER:-}" ] || [ ! -x "$WHARF_TEST_S3RVER" ]; then
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
  fi
  find_chromium() { command -v chromium || command -v chromium-browser || true; }
  if [ -z "${WHARF_TEST_CHROMIUM:-}" ] || [ ! -x "$WHARF_TEST_CHROMIUM" ]; then
    [ -n "$(find_chromium)" ] || missing+=(chromium)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} ..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi

  if [ -z "${WHARF_TEST_INITDB:-}" ] || [ ! -x "$WHARF_TEST_INITDB" ]; then
    WHARF_TEST_INITDB="$(find_initdb)"
  fi
  export WHARF_TEST_INITDB

  if [ -z "${WHARF_TEST_CHROMIUM:-}" ] || [ ! -x "$WHARF_TEST_CHROMIUM" ]; then
    WHARF_TEST_CHROMIUM="$(find_chromium)"
  fi
  export WHARF_TEST_CHROMIUM

  if [ -z "${WHARF_TEST_S3RVER:-}" ] || [ ! -x "$WHARF_TEST_S3RVER" ]; then
    tools="$root/.tools/s3rver-$wharf_s3rver_version"
    if [ ! -x "$tools/node_modules/.bin/s3rver" ]; then
      echo "installing s3rver $wharf_s3rver_version ..."
      mkdir -p "$tools"
      (cd "$tools" && npm install --no-audit --no-fund --loglevel=error "s3rver@$wharf_s3rver_version" >/dev/null)
    fi
    WHARF_TEST_S3RVER="$tools/node_modules/.bin/s3rver"
  fi
  export WHARF_TEST_S3RVER
}
