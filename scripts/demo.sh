#!/usr/bin/env bash
# The local demo: the program's main job on a machine with no AWS account. Installs what it needs
# (scripts/setup.sh), then runs scripts/demo.ts with the pinned Deno: moto as the EC2 API and, as
# root, MariaDB with its data on a frozen XFS loop mount. Everything it starts it also removes.
# Usage: bash scripts/demo.sh [--moto-only] [--help]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
DENO=$(scripts/deno.sh)
# Fetch the program's npm packages and bundle it (as it ships) now, so that no download or
# build lands inside the measured run.
"$DENO" cache --quiet src/main.ts scripts/demo.ts
"$DENO" run --allow-all tests/support/bundle.ts >/dev/null
# exec: Ctrl-C, SIGTERM and SIGHUP go straight to the driver, which cleans up in `finally`.
exec "$DENO" run --allow-all scripts/demo.ts "$@"
