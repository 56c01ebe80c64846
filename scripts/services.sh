#!/usr/bin/env bash
# Start or install what the test suite needs beyond Python packages: the local
# PostgreSQL server (metadata-store and SQL tests) and Debian's chromium (browser
# tests, driven by Playwright with executable_path; no browser is downloaded by a
# test tool). Idempotent; `make test` and CI (CI=true) run it before the tests.
set -euo pipefail
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed (browser tests will skip outside CI)" >&2
  fi
fi
