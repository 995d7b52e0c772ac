#!/usr/bin/env bash
# The one place that pins Deno: prints the path of a suitable deno, installing the
# pinned version from the npm registry into .tools/ when none is on PATH.
# Usage: DENO=$(scripts/deno.sh)
set -euo pipefail
DENO_VERSION=2.9.6
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
local_deno="$root/.tools/node_modules/.bin/deno"

suitable() { # a deno 2.9.x
  "$1" --version 2>/dev/null | head -n1 | grep -qE '^deno 2\.9\.'
}

if command -v deno >/dev/null 2>&1 && suitable "$(command -v deno)"; then
  command -v deno
  exit 0
fi
if [ -x "$local_deno" ] && suitable "$local_deno"; then
  echo "$local_deno"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "scripts/deno.sh: need npm (Node.js) to install deno $DENO_VERSION" >&2; exit 1; }
echo "scripts/deno.sh: installing deno $DENO_VERSION into .tools/" >&2
npm install --silent --no-audit --no-fund --prefix "$root/.tools" "deno@$DENO_VERSION" >&2
suitable "$local_deno" || { echo "scripts/deno.sh: deno $DENO_VERSION did not install" >&2; exit 1; }
echo "$local_deno"
