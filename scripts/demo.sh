#!/usr/bin/env bash
# `make demo`: a sample workspace (kept between runs unless RESET=1), every example segment
# evaluated with its size printed and saved into the workspace as a live segment (so the web
# builder lists them after sign-in), then the REST service and the builder on HOST:PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
WS="${DEMO_WS:-demo-workspace}"
CONTACTS="${CONTACTS:-100000}"
seg() { "$BIN/segmenta" --workspace "$WS" "$@"; }

if [ "${RESET:-0}" = "1" ] && [ -e "$WS" ]; then
  echo "RESET=1: removing $WS"
  rm -rf "$WS"
fi
if [ -e "$WS/model.yaml" ]; then
  echo "using the existing workspace $WS (RESET=1 make demo rebuilds it)"
else
  seg init --sample --contacts "$CONTACTS" --seed 42
fi

existing=$(seg segment list --json)
for f in examples/*.json; do
  name=$("$BIN/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$f")
  printf '%-48s ' "$(basename "$f" .json)"
  seg segment evaluate "$f" | tail -n 1
  if ! NAME="$name" "$BIN/python" -c 'import json,os,sys; sys.exit(0 if any(s["name"] == os.environ["NAME"] for s in json.load(sys.stdin)) else 1)' <<<"$existing"; then
    seg segment create "$f" >/dev/null
    seg segment publish "$name" >/dev/null
  fi
done

[ "${SERVE:-1}" = "1" ] || exit 0  # SERVE=0: prepare the workspace only
exec "$BIN/segmenta" --workspace "$WS" serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
