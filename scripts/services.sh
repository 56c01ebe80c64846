#!/usr/bin/env bash
# Start or install what the test suite needs beyond Python packages.
# Idempotent; CI (CI=true) runs it on a clean clone before the tests.
set -euo pipefail
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
